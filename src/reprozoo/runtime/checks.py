"""Shared validators for the public numeric entry points of the method packages.

Every check raises a :mod:`reprozoo.errors` error whose one-line message names the argument, so a
library call with a NaN, an infinity, a negative count or a float label fails where it is made
instead of turning into a silent NaN (or a plausible-looking 0.0) further down.

* scalars (settings such as a threshold or a temperature) raise :class:`ConfigError`;
* arrays and tensors (scores, features, labels, model outputs) raise :class:`DataError`.

>>> finite("threshold", 0.5)
0.5
>>> finite("threshold", float("nan"))
Traceback (most recent call last):
...
reprozoo.errors.ConfigError: threshold must be a finite number, got nan
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from reprozoo.errors import ConfigError, DataError


def _number(name: str, x: Any) -> float:
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, (numbers.Real, np.generic)) and not _scalar_tensor(x):
        raise ConfigError(f"{name} must be a number, got {type(x).__name__} {x!r:.60}")
    try:
        return float(x)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number, got {x!r:.60}") from None


def _scalar_tensor(x: Any) -> bool:
    return hasattr(x, "detach") and hasattr(x, "numel") and x.numel() == 1


def finite(name: str, x: Any, *, lo: float | None = None, hi: float | None = None,
           lo_open: bool = False, hi_open: bool = False) -> float:
    """``x`` as a float, refused when not a finite number or outside ``[lo, hi]`` (open ends with
    ``lo_open`` / ``hi_open``)."""
    v = _number(name, x)
    if not math.isfinite(v):
        raise ConfigError(f"{name} must be a finite number, got {v}")
    if lo is not None and (v < lo or (lo_open and v == lo)):
        raise ConfigError(f"{name} must be {'>' if lo_open else '>='} {lo}, got {v}")
    if hi is not None and (v > hi or (hi_open and v == hi)):
        raise ConfigError(f"{name} must be {'<' if hi_open else '<='} {hi}, got {v}")
    return v


def integer(name: str, x: Any, *, lo: int | None = None, hi: int | None = None) -> int:
    """``x`` as an int (a float with an integral value is accepted), refused outside ``[lo, hi]``."""
    if isinstance(x, (bool, np.bool_)):
        raise ConfigError(f"{name} must be an integer, got {x!r}")
    if isinstance(x, (numbers.Integral, np.integer)):
        v = int(x)
    else:
        f = _number(name, x)
        if not math.isfinite(f) or f != int(f):
            raise ConfigError(f"{name} must be an integer, got {f}")
        v = int(f)
    if lo is not None and v < lo:
        raise ConfigError(f"{name} must be >= {lo}, got {v}")
    if hi is not None and v > hi:
        raise ConfigError(f"{name} must be <= {hi}, got {v}")
    return v


def _numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):  # torch tensor
        x = x.detach().cpu().float().numpy() if x.is_floating_point() else x.detach().cpu().numpy()
    return np.asarray(x)


def _first_bad(arr: np.ndarray, mask: np.ndarray) -> str:
    idx = np.argwhere(mask)[0]
    where = int(idx[0]) if idx.size == 1 else tuple(int(i) for i in idx)
    return f"index {where} is {float(arr[tuple(idx)])}"


def finite_array(name: str, x: Any, *, dtype: Any = np.float64, ndim: int | None = None,
                 allow_empty: bool = True) -> np.ndarray:
    """``x`` (list, array or tensor) as a numpy array of ``dtype``, refused when it holds a value
    that is not a number, NaN or +-inf, has the wrong number of dimensions, or is empty when
    ``allow_empty`` is false."""
    raw = _numpy(x)
    if raw.dtype == object or raw.dtype.kind in "USV":
        try:
            raw = raw.astype(np.float64)
        except (TypeError, ValueError):
            raise DataError(f"{name} must hold numbers only, got {raw.reshape(-1)[:3].tolist()}...") from None
    if raw.dtype.kind not in "biuf":
        raise DataError(f"{name} must hold real numbers, got dtype {raw.dtype}")
    if ndim is not None and raw.ndim != ndim:
        raise DataError(f"{name} must be {ndim}-dimensional, got shape {tuple(raw.shape)}")
    if not allow_empty and raw.size == 0:
        raise DataError(f"{name} is empty")
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow becomes inf and is named below
        arr = raw.astype(dtype, copy=False)
    if arr.dtype.kind == "f":
        bad = ~np.isfinite(arr)
        if bad.any():
            raise DataError(f"{name} must be finite; {_first_bad(arr, bad)} ({int(bad.sum())} non-finite in all)")
    return arr


def finite_tensor(name: str, t: Any) -> Any:
    """A torch tensor returned unchanged, refused when it holds NaN or +-inf (model outputs, noise,
    features); ``t`` must already be a tensor."""
    import torch

    if not isinstance(t, torch.Tensor):
        raise DataError(f"{name} must be a torch tensor, got {type(t).__name__}")
    if t.is_floating_point() or t.is_complex():
        bad = ~torch.isfinite(t)
        if bool(bad.any()):
            idx = tuple(int(i) for i in bad.nonzero()[0])
            where = idx[0] if len(idx) == 1 else idx
            raise DataError(f"{name} must be finite; index {where} is {float(t[idx])} "
                            f"({int(bad.sum())} non-finite in all)")
    return t


def integer_labels(name: str, x: Any, *, lo: int | None = None, hi: int | None = None,
                   ndim: int | None = 1) -> np.ndarray:
    """``x`` as an int64 array; float labels are refused unless every value is integral, and so is
    any label outside ``[lo, hi]``."""
    raw = _numpy(x)
    if raw.dtype == bool:
        raise DataError(f"{name} must be integer labels, got booleans")
    if raw.dtype.kind not in "iuf" and raw.size:
        raise DataError(f"{name} must be integer labels, got dtype {raw.dtype}")
    if ndim is not None and raw.ndim != ndim:
        raise DataError(f"{name} must be {ndim}-dimensional, got shape {tuple(raw.shape)}")
    if raw.dtype.kind == "f":
        bad = ~np.isfinite(raw) | (raw != np.round(raw))
        if bad.any():
            raise DataError(f"{name} must be integer labels; {_first_bad(raw, bad)}")
    lab = raw.astype(np.int64)
    if lo is not None and lab.size and lab.min() < lo:
        raise DataError(f"{name} must be >= {lo}; index {int(np.argmin(lab))} is {int(lab.min())}")
    if hi is not None and lab.size and lab.max() > hi:
        raise DataError(f"{name} must be <= {hi}; index {int(np.argmax(lab))} is {int(lab.max())}")
    return lab


def one_line(err: BaseException, limit: int = 160) -> str:
    """``"<ErrorType>: <first non-empty line of its message>"`` cut to ``limit`` characters, for
    wrapping a third-party error (torch.load, safetensors, json) into a one-line reprozoo error."""
    text = next((ln.strip() for ln in str(err).splitlines() if ln.strip()), "")
    if len(text) > limit:
        text = text[: limit - 3].rstrip() + "..."
    return f"{type(err).__name__}: {text}" if text else type(err).__name__
