"""Registries for models, experiments and benchmarks (timm-like ``create_model``).

Method packages register themselves on import. :func:`discover` imports every method
package's ``models``/``experiment``/``benchmark`` modules without naming any paper, so the
runtime never imports a method package by name. Looking up one name imports only the module that
:mod:`reprozoo.runtime.registry_index` lists for it (a generated table, checked by a test), so an
unknown name or ``reprozoo list`` answers without importing any method package.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from reprozoo.errors import ConfigError, UnknownNameError

_MODELS: dict[str, Callable[..., Any]] = {}
_EXPERIMENTS: dict[str, ExperimentSpec] = {}
_BENCHMARKS: dict[str, BenchmarkSpec] = {}
_SHARED_PACKAGES = {"runtime", "data"}
_DISCOVERED = False


@dataclass(frozen=True)
class ExperimentSpec:
    """A registered reproduction: ``run(cfg, ctx) -> ExperimentResult``."""

    name: str
    paper: str
    claim: str
    config_cls: type
    run: Callable[..., Any]
    package: str = ""

    @property
    def presets(self) -> list[str]:
        return list(getattr(self.config_cls, "PRESETS", {}).keys())


@dataclass(frozen=True)
class BenchmarkSpec:
    name: str
    description: str
    run: Callable[..., Any]
    package: str = ""
    options: dict[str, Any] = field(default_factory=dict)


def _unknown(kind: str, name: str, known: list[str]) -> UnknownNameError:
    listing = ", ".join(sorted(known)) if known else "(none registered yet)"
    return UnknownNameError(f"unknown {kind} '{name}'; known {kind}s: {listing}")


def method_packages() -> list[str]:
    """Names of the method subpackages of ``reprozoo`` (everything but the shared ones)."""
    import reprozoo

    return [m.name for m in pkgutil.iter_modules(reprozoo.__path__) if m.ispkg and m.name not in _SHARED_PACKAGES]


def import_optional(module: str):
    """Import ``module`` if it exists; an import error *inside* it still raises."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as err:
        if err.name != module:
            raise
        return None


def _import_package(name: str) -> None:
    for module in (f"reprozoo.{name}", f"reprozoo.{name}.experiment", f"reprozoo.{name}.benchmark"):
        if import_or_warn(module) is False:
            break


def discover() -> None:
    """Import every method subpackage of ``reprozoo`` so its registrations run (idempotent)."""
    global _DISCOVERED
    if _DISCOVERED:
        return
    _DISCOVERED = True
    for name in method_packages():
        _import_package(name)


def unindexed_packages() -> list[str]:
    """Method packages the static index does not cover (a package added since it was generated)."""
    from reprozoo.runtime.registry_index import PACKAGES

    return [p for p in method_packages() if p not in PACKAGES]


def _load(kind: str, name: str, table: dict[str, Any], module: str | None) -> None:
    """Import what registers ``name``: its indexed module, or else every unindexed package.
    A module listed for ``name`` that fails to import is a one-line error, not "unknown name"."""
    if module is None:
        _import_unindexed()
        return
    if import_or_warn(module) is False and name not in table:
        from reprozoo.errors import MissingDependencyError

        raise MissingDependencyError(f"{kind} '{name}' is unavailable: {module} failed to import "
                                     f"({BROKEN[module]})")


def _import_unindexed() -> None:
    for package in unindexed_packages():
        _import_package(package)


def index_names(kind: str) -> list[str]:
    """Names of one kind (experiment | benchmark | model): the static index's and those registered in
    this process (packages the index does not cover are imported)."""
    from reprozoo.runtime import registry_index as index

    _import_unindexed()
    table = {"experiment": (index.EXPERIMENTS, _EXPERIMENTS), "benchmark": (index.BENCHMARKS, _BENCHMARKS),
             "model": (index.MODELS, _MODELS)}[kind]
    return sorted(set(table[0]) | set(table[1]))


BROKEN: dict[str, str] = {}  # module -> the import error that made it unavailable


def import_or_warn(module: str):
    """Import ``module`` if it exists (None if it does not). When it exists but fails to import
    (a missing optional dependency, a broken install), warn once on stderr and return False, so one
    broken method package does not take every command down with it."""
    import sys

    try:
        return import_optional(module)
    except ImportError as err:
        if module not in BROKEN:
            BROKEN[module] = f"{type(err).__name__}: {err}"
            print(f"warning: {module} is unavailable ({BROKEN[module]})", file=sys.stderr)
        return False


# ---------------------------------------------------------------- models
def register_model(fn: Callable[..., Any] | None = None, *, name: str | None = None):
    """Decorator: register a model constructor under ``name`` (default: the function name)."""

    def wrap(f: Callable[..., Any]) -> Callable[..., Any]:
        key = name or f.__name__
        if key in _MODELS and _MODELS[key] is not f:
            raise ValueError(f"model '{key}' registered twice")
        _MODELS[key] = f
        return f

    return wrap(fn) if fn is not None else wrap


def create_model(name: str, pretrained: bool = False, checkpoint_path: Any = None, **kwargs: Any):
    """Build a registered model (timm's contract): ``create_model("rexnet_100", num_classes=10)``.

    - a keyword the constructor does not take raises :class:`~reprozoo.errors.ConfigError` naming it;
    - ``pretrained=True`` goes to constructors that ship weights; for the others it is a ConfigError;
    - ``checkpoint_path``: a file written by :func:`reprozoo.runtime.checkpoint.save_checkpoint` is
      loaded strictly (its stored kwargs are the defaults, ``kwargs`` override them); any other file
      goes to a constructor that takes ``checkpoint_path`` (an official layout reader) or else is
      read as a plain state dict and loaded strictly.

    The model remembers its name and kwargs (``model.reprozoo_spec``) so that ``save_checkpoint``
    can write them."""
    if name not in _MODELS:
        from reprozoo.runtime.registry_index import MODELS

        _load("model", name, _MODELS, MODELS.get(name))
    if name not in _MODELS:
        raise _unknown("model", name, index_names("model"))
    fn = _MODELS[name]
    meta = None
    if checkpoint_path is not None:
        from reprozoo.runtime.checkpoint import checkpoint_meta

        meta = checkpoint_meta(checkpoint_path)
        if meta is not None:
            if meta["model"] != name:
                from reprozoo.errors import CheckpointError

                raise CheckpointError(f"{checkpoint_path} holds model '{meta['model']}', not '{name}'")
            kwargs = {**meta["kwargs"], **kwargs}
    model = _construct(name, fn, kwargs, pretrained, None if meta is not None else checkpoint_path)
    if checkpoint_path is not None and (meta is not None or "checkpoint_path" not in _parameters(fn)):
        from reprozoo.runtime.checkpoint import load_strict, read_state_dict, unwrap_state_dict

        load_strict(model, unwrap_state_dict(read_state_dict(checkpoint_path)), what=f"model '{name}'")
    try:
        model.reprozoo_spec = {"name": name, "kwargs": dict(kwargs)}
    except AttributeError:  # a class that computes its own (a read-only property)
        pass
    return model


def _parameters(fn: Callable[..., Any]) -> dict[str, Any]:
    import inspect

    return dict(inspect.signature(fn).parameters)


def _construct(name: str, fn: Callable[..., Any], kwargs: dict[str, Any], pretrained: bool, path: Any):
    """``fn(**kwargs)`` with unknown keywords refused as a ConfigError naming them."""
    import re

    params = _parameters(fn)
    named = {k for k, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    takes_any = any(p.kind == p.VAR_KEYWORD for p in params.values())
    call = dict(kwargs)
    for key, value in (("pretrained", pretrained), ("checkpoint_path", path)):
        if key in named:
            call[key] = value
        elif value and key == "pretrained":
            raise ConfigError(f"model '{name}' has no pretrained weights (none ship with reprozoo); drop "
                              "pretrained=True or load your own with checkpoint_path=...")
    accepted = sorted(named - {"pretrained", "checkpoint_path"})
    unknown = [k for k in kwargs if k not in named and not takes_any]
    if unknown:
        raise ConfigError(f"model '{name}' does not take {unknown[0]}=...; it takes: "
                          f"{', '.join(accepted) or 'no keyword arguments'}")
    try:
        return fn(**call)
    except TypeError as err:  # a **kwargs constructor passing a key on to a class that refuses it
        hit = re.search(r"unexpected keyword argument '(\w+)'", str(err))
        if hit and hit.group(1) in kwargs:
            raise ConfigError(f"model '{name}' does not take {hit.group(1)}=...") from None
        raise


def list_models(pattern: str = "*") -> list[str]:
    import fnmatch

    discover()
    return sorted(m for m in _MODELS if fnmatch.fnmatch(m, pattern))


# ---------------------------------------------------------------- experiments
def register_experiment(name: str, *, paper: str, claim: str, config: type):
    """Decorator for ``run(cfg, ctx) -> ExperimentResult``; ``config`` is a config dataclass
    (subclass of :class:`reprozoo.runtime.config.ExperimentConfig`) with a ``PRESETS`` dict."""

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        if name in _EXPERIMENTS and _EXPERIMENTS[name].run is not fn:
            raise ValueError(f"experiment '{name}' registered twice")
        _EXPERIMENTS[name] = ExperimentSpec(name, paper, claim, config, fn, fn.__module__.split(".")[1])
        return fn

    return wrap


def get_experiment(name: str) -> ExperimentSpec:
    if name not in _EXPERIMENTS:
        from reprozoo.runtime.registry_index import EXPERIMENTS

        _load("experiment", name, _EXPERIMENTS, EXPERIMENTS.get(name, {}).get("module"))
    if name not in _EXPERIMENTS:
        raise _unknown("experiment", name, index_names("experiment"))
    return _EXPERIMENTS[name]


def experiment_infos() -> list[dict[str, Any]]:
    """name, paper, claim, presets, package and module of every experiment, from the static index
    (and this process's registrations) without importing the indexed packages."""
    from reprozoo.runtime.registry_index import EXPERIMENTS

    _import_unindexed()
    infos = {k: {"name": k, **v} for k, v in EXPERIMENTS.items()}
    for k, s in _EXPERIMENTS.items():
        infos[k] = {"name": k, "module": s.run.__module__, "package": s.package, "paper": s.paper,
                    "claim": s.claim, "presets": s.presets}
    return [infos[k] for k in sorted(infos)]


def list_experiments() -> list[ExperimentSpec]:
    discover()
    return [_EXPERIMENTS[k] for k in sorted(_EXPERIMENTS)]


# ---------------------------------------------------------------- benchmarks
def register_benchmark(name: str, *, description: str):
    """Decorator for ``run(quick: bool) -> dict`` returning printable rows/ratios."""

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        _BENCHMARKS[name] = BenchmarkSpec(name, description, fn, fn.__module__.split(".")[1])
        return fn

    return wrap


def get_benchmark(name: str) -> BenchmarkSpec:
    if name not in _BENCHMARKS:
        from reprozoo.runtime.registry_index import BENCHMARKS

        _load("benchmark", name, _BENCHMARKS, BENCHMARKS.get(name, {}).get("module"))
    if name not in _BENCHMARKS:
        raise _unknown("benchmark", name, index_names("benchmark"))
    return _BENCHMARKS[name]


def list_benchmarks() -> list[BenchmarkSpec]:
    discover()
    return [_BENCHMARKS[k] for k in sorted(_BENCHMARKS)]


# ---------------------------------------------------------------- the static index
def scan() -> dict[str, Any]:
    """What importing every method package registers, in the shape of :mod:`registry_index`
    (without the commands, which the CLI adds)."""
    discover()
    ours = lambda fn: fn.__module__.startswith("reprozoo.")  # noqa: E731  (not test registrations)
    return {
        "PACKAGES": sorted(method_packages()),
        "EXPERIMENTS": {k: {"module": s.run.__module__, "package": s.package, "paper": s.paper, "claim": s.claim,
                            "presets": s.presets} for k, s in sorted(_EXPERIMENTS.items()) if ours(s.run)},
        "BENCHMARKS": {k: {"module": s.run.__module__, "package": s.package, "description": s.description}
                       for k, s in sorted(_BENCHMARKS.items()) if ours(s.run)},
        "MODELS": {k: f.__module__ for k, f in sorted(_MODELS.items()) if ours(f)},
    }
