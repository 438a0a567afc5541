"""Input validation shared by the samplers: causality of the parallel call, thresholds, lengths."""

from __future__ import annotations

import torch

from reprozoo.errors import ConfigError, DataError, ReproZooError
from reprozoo.nara.protocol import Bernoulli, Categorical, ParallelAR
from reprozoo.runtime.checks import finite_tensor


class CausalityError(ReproZooError, ValueError):
    """The model's parallel call lets position t see x_t or later positions."""


def check_threshold(tau: float, name: str = "threshold") -> float:
    tau = float(tau)
    if not (0.0 < tau <= 1.0):
        raise ConfigError(f"{name} must lie in (0, 1], got {tau}; use method='jacobi' for the exact sampler")
    return tau


def check_model(model: ParallelAR) -> int:
    """Return ``model.length`` after checking it is a usable AR model."""
    for attr in ("length", "family", "conditionals"):
        if not hasattr(model, attr):
            raise ConfigError(f"the model has no '{attr}'; wrap it with reprozoo.nara.BernoulliAR / GaussianAR "
                              "or implement the ParallelAR protocol")
    n = int(model.length)
    if n < 1:
        raise DataError(f"sequence length is {n}; sampling needs sequences of length >= 1")
    return n


def check_context(context: torch.Tensor | None, batch: int | None, length: int) -> tuple[int, int]:
    """Return ``(batch, prefix_length)``; the context is ``(B, P0)`` observed values."""
    if context is None:
        if batch is None or batch < 1:
            raise DataError(f"batch must be >= 1 when no context is given, got {batch}")
        return int(batch), 0
    if context.dim() != 2:
        raise DataError(f"context must have shape (batch, prefix_length), got {tuple(context.shape)}")
    if context.shape[0] < 1:
        raise DataError("context has batch size 0; pass at least one sequence")
    if batch is not None and batch != context.shape[0]:
        raise DataError(f"batch={batch} disagrees with the context's batch size {context.shape[0]}")
    if context.shape[1] > length:
        raise DataError(f"context has {context.shape[1]} positions but the model generates only {length}")
    return int(context.shape[0]), int(context.shape[1])


@torch.no_grad()
def check_causality(model: ParallelAR, *, batch: int = 2, pivots: int = 4, atol: float = 1e-5,
                    generator: torch.Generator | None = None, device: torch.device | str = "cpu") -> None:
    """Cheap check that ``conditionals`` is causal: for a few pivots ``t``, changing ``x_t..x_N-1``
    must leave the parameters of positions ``0..t`` unchanged. Raises :class:`CausalityError`.

    Costs ``pivots + 1`` parallel calls.
    """
    n = check_model(model)
    fam = model.family
    gen = generator if generator is not None else torch.Generator().manual_seed(1234)
    x = _random_canvas(fam, (batch, n), gen).to(device)
    base = model.conditionals(x)
    if base.dim() != 3 or base.shape[:2] != (batch, n):
        raise ConfigError(f"conditionals must return (batch, {n}, params), got {tuple(base.shape)}")
    ts = sorted({0, n - 1, *torch.randint(0, n, (pivots,), generator=gen).tolist()})[: pivots + 1]
    scale = base.abs().max().clamp_min(1.0)
    for t in ts:
        y = x.clone()
        y[:, t:] = _perturb(fam, x[:, t:])
        out = model.conditionals(y)
        diff = (out[:, : t + 1] - base[:, : t + 1]).abs().max()
        if diff > atol * scale:
            raise CausalityError(
                f"the model is not causal: changing positions >= {t} changed the conditional of a position "
                f"<= {t} by {diff.item():.3g}; position t may only depend on x_<t (use masks / causal padding)"
            )


def _levels(fam) -> int:
    return 2 if fam.param_size == 1 else int(fam.param_size)


def _random_canvas(fam, shape, gen) -> torch.Tensor:
    if fam.discrete:
        return torch.randint(0, _levels(fam), shape, generator=gen).float()
    return torch.randn(shape, generator=gen)


def _perturb(fam, x: torch.Tensor) -> torch.Tensor:
    """A different valid value at every position."""
    if fam.discrete:
        return (x + 1) % _levels(fam)
    return x + 1.0


def check_noise(noise: torch.Tensor, family) -> torch.Tensor:
    """Shared noise given by the caller: finite, and in [0, 1] for the uniform-noise families
    (Bernoulli, Categorical), whose inverse CDF is undefined outside it."""
    finite_tensor("noise", noise)
    if isinstance(family, (Bernoulli, Categorical)) and noise.numel():
        lo, hi = float(noise.min()), float(noise.max())
        if lo < 0 or hi > 1:
            raise DataError(f"noise of the {family.name} family must be uniform draws in [0, 1], got values in "
                            f"[{lo:.4g}, {hi:.4g}]; draw it with reprozoo.nara.draw_noise")
    return noise


def check_context_values(context: torch.Tensor | None) -> None:
    if context is not None:
        finite_tensor("context", context)


def param_tally(device: torch.device) -> torch.Tensor:
    """A 0-d running sum of every parameter the model returns (float64 except on MPS): one extra
    kernel per call and no host sync; it is finite iff every parameter was (a float32 value times
    any realistic count cannot overflow float64)."""
    dtype = torch.float32 if torch.device(device).type == "mps" else torch.float64
    return torch.zeros((), dtype=dtype, device=device)


def tally(acc: torch.Tensor, params: torch.Tensor) -> None:
    acc.add_(params.sum(dtype=acc.dtype))


def check_outputs(acc: torch.Tensor, x: torch.Tensor) -> None:
    """After sampling: ``acc`` (see :func:`param_tally`) is not finite when some call of
    ``model.conditionals`` returned NaN/inf; ``x`` holds the samples. Either is a DataError: a
    discrete family would otherwise turn NaN logits into silent zeros, a Gaussian into NaN samples."""
    if bool(torch.isfinite(acc + x.sum(dtype=acc.dtype))):  # the one host sync of the common case
        return
    if not bool(torch.isfinite(acc)):
        raise DataError("model.conditionals returned non-finite parameters (NaN or inf); "
                        "check the model's weights and inputs")
    if not bool(torch.isfinite(x).all()):
        raise DataError("sampling produced non-finite values (NaN or inf) from finite parameters; "
                        "the model's scales overflow")
