"""Layout of the gmp and nara packages: benchmarks build on library modules, not on the experiments;
user device strings go through the runtime's one resolver."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from reprozoo.errors import ConfigError
from reprozoo.runtime.accel import resolve_device

SRC = Path(__file__).resolve().parents[2] / "src" / "reprozoo"


@pytest.mark.parametrize("package", ["gmp", "nara"])
def test_benchmark_does_not_import_the_experiment(package):
    code = (f"import sys, reprozoo.{package}.benchmark\n"
            f"print('reprozoo.{package}.experiment' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "False"


@pytest.mark.parametrize("package", ["gmp", "nara"])
def test_no_module_over_400_lines(package):
    long = {p.name: n for p in (SRC / package).glob("*.py") if (n := len(p.read_text().splitlines())) > 400}
    assert not long


def test_resolve_device():
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ConfigError, match="device must be"):
        resolve_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA GPU"):
            resolve_device("cuda:0")


@pytest.mark.parametrize("package", ["gmp", "nara"])
def test_every_module_imports_first(package):
    """Each module imported first (the package's other modules unloaded): an import cycle hidden
    behind a lucky import order fails here."""
    code = f"""
import importlib, pkgutil, sys
import torch  # noqa: F401  (kept loaded: only reprozoo's modules are unloaded)
import reprozoo.{package} as pkg
names = [f"reprozoo.{package}." + m.name for m in pkgutil.iter_modules(pkg.__path__)]
for name in names:
    for loaded in [m for m in sys.modules if m.startswith("reprozoo")]:
        del sys.modules[loaded]
    importlib.import_module(name)
print(len(names))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(done.stdout.strip()) >= 10
