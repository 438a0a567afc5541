"""Dataclass configs with presets and typed ``key=value`` overrides.

An experiment config subclasses :class:`ExperimentConfig` and lists its presets::

    @dataclass
    class MyConfig(ExperimentConfig):
        epochs: int = 10
        lr: float = 0.1
        PRESETS: ClassVar[dict] = {"smoke": {"epochs": 1}, "quick": {}, "paper": {"epochs": 300}}

``MyConfig.from_preset("smoke", overrides=["lr=0.01"])`` resolves a config. Nested dataclass
fields are addressed with dots (``optim.lr=0.1``).
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import types
import typing
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, ClassVar

import yaml

from reprozoo.errors import ConfigError, UnknownNameError
from reprozoo.runtime.trials import ExecutorConfig


@dataclass
class ExperimentConfig:
    """Fields every experiment has. Subclasses add their own and define ``PRESETS``."""

    seeds: list[int] = field(default_factory=lambda: [0])
    device: str = "auto"  # auto | cpu | cuda | cuda:1 ...; Accelerate picks under `accelerate launch`
    threads: int = 0  # torch CPU threads per trial (0 = 1 per trial; the main process keeps torch's default)
    data_root: str = ""  # where the `paper` preset finds real datasets
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)  # how independent trials run

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {"smoke": {}, "quick": {}, "paper": {}}
    # keys a command-line override may not change, with the reason printed when one tries: rule
    # constants (margins, thresholds) and settings that would change what the claim means
    LOCKED: ClassVar[dict[str, str]] = {}
    # presets that need real data: data_root must be given and exist
    NEEDS_DATA_ROOT: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def from_preset(cls, preset: str, overrides: list[str] | None = None, *, locked: bool = False,
                    **values: Any):
        """``locked=True`` (the CLI) refuses overrides of :attr:`LOCKED` keys."""
        if preset not in cls.PRESETS:
            raise UnknownNameError(
                f"unknown preset '{preset}' for {cls.__name__}; choose one of: {', '.join(cls.PRESETS)}"
            )
        cfg = cls()
        for key, value in cls.PRESETS[preset].items():
            set_field(cfg, key, value)
        for key, value in values.items():
            set_field(cfg, key, value)
        if locked:
            for item in overrides or []:
                key = item.split("=", 1)[0].strip()
                for lk, reason in cls.LOCKED.items():
                    if key == lk or key.startswith(lk + "."):
                        raise ConfigError(f"'{key}' cannot be overridden: {reason}")
        return apply_overrides(cfg, overrides or [])

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def validate(self) -> None:
        """Override to check ranges; raise :class:`ConfigError` with a fix-it message."""


def field_names(cfg: Any, prefix: str = "") -> list[str]:
    out = []
    for f in fields(cfg):
        value = getattr(cfg, f.name)
        if is_dataclass(value):
            out += field_names(value, prefix + f.name + ".")
        else:
            out.append(prefix + f.name)
    return out


def _resolve_type(owner: Any, name: str) -> Any:
    hints = typing.get_type_hints(type(owner))
    return hints[name]


def _is_union(tp: Any) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType)


def coerce(value: Any, tp: Any, key: str) -> Any:
    """Convert ``value`` (a string from the command line, or a YAML value) to type ``tp``."""
    if tp is Any:
        return value
    if _is_union(tp):
        args = typing.get_args(tp)
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            if type(None) in args:
                return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return coerce(value, arg, key)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(errors[0] if errors else f"bad value for '{key}'")
    origin = typing.get_origin(tp)
    if origin is typing.Literal:
        choices = typing.get_args(tp)
        for c in choices:
            if str(c) == str(value):
                return c
        raise ConfigError(f"'{key}' must be one of {list(choices)}, got '{value}'")
    if origin in (list, tuple):
        (item_tp, *rest) = typing.get_args(tp) or (Any,)
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("[") and text.endswith("]"):
                text = text[1:-1]
            items = [v.strip() for v in text.split(",") if v.strip()]
        elif isinstance(value, (list, tuple)):
            items = list(value)
        else:
            items = [value]
        converted = [coerce(v, item_tp, key) for v in items]
        return tuple(converted) if origin is tuple else converted
    if origin is dict:
        if isinstance(value, dict):
            return value
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError as err:
            raise ConfigError(f"'{key}' expects a mapping like {{a: 1}}, got '{value}'") from err
        if not isinstance(parsed, dict):
            raise ConfigError(f"'{key}' expects a mapping like {{a: 1}}, got '{value}'")
        return parsed
    if tp is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"'{key}' expects true/false, got '{value}'")
    if tp in (int, float, str):
        if tp is int and isinstance(value, float) and not value.is_integer():
            raise ConfigError(f"'{key}' expects an integer, got '{value}'")
        if tp is int and isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                try:
                    as_float = float(value)
                except ValueError:
                    as_float = None
                if as_float is not None and as_float.is_integer():
                    return int(as_float)
                raise ConfigError(f"'{key}' expects an integer, got '{value}'") from None
        if isinstance(value, bool) and tp is not str:
            raise ConfigError(f"'{key}' expects {tp.__name__}, got '{value}'")
        try:
            out = tp(value)
        except (TypeError, ValueError):
            raise ConfigError(f"'{key}' expects {tp.__name__}, got '{value}'") from None
        if tp is float and not math.isfinite(out):
            raise ConfigError(f"'{key}' expects a finite number, got '{value}'")
        return out
    return value


def set_field(cfg: Any, key: str, value: Any) -> None:
    """Set a (dotted) field with type coercion; unknown keys raise :class:`ConfigError`."""
    owner, parts = cfg, key.split(".")
    for part in parts[:-1]:
        child = getattr(owner, part, None)
        if not is_dataclass(child):
            raise ConfigError(_unknown_key_msg(cfg, key))
        owner = child
    name = parts[-1]
    names = {f.name for f in fields(owner)}
    if name not in names:
        raise ConfigError(_unknown_key_msg(cfg, key))
    current = getattr(owner, name)
    if is_dataclass(current):
        if not isinstance(value, dict):
            raise ConfigError(f"'{key}' is a group; set its fields with {key}.<field>=...")
        for k, v in value.items():
            set_field(cfg, f"{key}.{k}", v)
        return
    setattr(owner, name, coerce(value, _resolve_type(owner, name), key))


def _unknown_key_msg(cfg: Any, key: str) -> str:
    return f"unknown config key '{key}'; valid keys: {', '.join(field_names(cfg))}"


def apply_overrides(cfg: Any, overrides: list[str]):
    """Apply ``key=value`` strings in order; returns ``cfg`` (modified in place)."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override '{item}' must look like key=value")
        key, value = item.split("=", 1)
        set_field(cfg, key.strip(), value.strip())
    validate = getattr(cfg, "validate", None)
    if callable(validate):
        validate()
    return cfg


def to_yaml(cfg: Any) -> str:
    return yaml.safe_dump(to_plain_dict(cfg), sort_keys=False)


def to_plain_dict(cfg: Any) -> dict[str, Any]:
    return _plain(dataclasses.asdict(cfg))


_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?|mps)$")


def check_device(device: str) -> None:
    """A device that is requested must exist: ``cuda`` on a machine without CUDA is an error."""
    import torch

    if not _DEVICE.match(device):
        raise ConfigError(f"device must be auto, cpu, cuda, cuda:N or mps, got '{device}'")
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"device '{device}' requested but CUDA is not available here; use device=cpu or auto")
        index = int(device.split(":")[1]) if ":" in device else 0
        if index >= torch.cuda.device_count():
            raise ConfigError(f"device '{device}' requested but only {torch.cuda.device_count()} GPU(s) are visible")
    if device == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError("device 'mps' requested but MPS is not available here; use device=cpu or auto")


def check_common(cfg: Any, preset: str) -> None:
    """Checks every experiment config gets, before any work: device, threads, data_root."""
    if hasattr(cfg, "device"):
        check_device(str(cfg.device))
    executor = getattr(cfg, "executor", None)
    if executor is not None:
        executor.validate()
    threads = getattr(cfg, "threads", 0)
    if not isinstance(threads, int) or threads < 0:
        raise ConfigError(f"threads must be an integer >= 0 (0 = one per trial), got {threads}")
    most = 4 * (os.cpu_count() or 1)
    if threads > most:
        raise ConfigError(f"threads must be at most {most} (4 x this machine's {os.cpu_count()} CPUs), got {threads}")
    root = str(getattr(cfg, "data_root", "") or "")
    if root and not Path(root).expanduser().exists():
        raise ConfigError(f"data_root {root} does not exist; give the folder that holds the dataset")
    if preset in getattr(type(cfg), "NEEDS_DATA_ROOT", ()) and not root:
        raise ConfigError(f"the '{preset}' preset runs on the real dataset: pass --set data_root=PATH")


def _plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj


def load_yaml(path: str | Path, cls: type):
    """Rebuild a config of class ``cls`` from a ``config.yaml`` written by :func:`to_yaml`."""
    data = yaml.safe_load(Path(path).read_text()) or {}
    cfg = cls()
    for key, value in data.items():
        set_field(cfg, key, value)
    return cfg
