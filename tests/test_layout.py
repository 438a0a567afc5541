"""The library's layout: every module imports first in a fresh import state (no import cycle hidden
behind a lucky import order or a lazy import), and no module is over ~400 lines."""

import subprocess
import sys
from pathlib import Path

import reprozoo

SRC = Path(reprozoo.__file__).parent
MAX_LINES = 400


def test_every_module_imports_first():
    """Each of the library's modules is imported first, with every reprozoo module unloaded before it
    (third-party packages stay loaded, so this costs one interpreter): a cycle that only works in one
    import order fails here, with the module's name."""
    code = """
import importlib, pkgutil, sys, traceback
import torch  # noqa: F401  (kept loaded: only reprozoo's modules are unloaded)
import reprozoo
names = sorted(m.name for m in pkgutil.walk_packages(reprozoo.__path__, "reprozoo.")
               if not m.name.endswith(".__main__"))  # __main__ runs the CLI
failed = []
for name in names:
    for loaded in [m for m in sys.modules if m == "reprozoo" or m.startswith("reprozoo.")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception:
        failed.append(name + ": " + traceback.format_exc(limit=3).strip().splitlines()[-1])
print(len(names))
print("\\n".join(failed))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    count, *failed = done.stdout.strip().splitlines()
    assert [f for f in failed if f] == []
    assert int(count) >= 150


def test_no_module_is_over_400_lines():
    long = {str(p.relative_to(SRC)): n for p in SRC.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}


def test_experiments_are_registered_from_experiment_modules():
    """Each package registers its experiments from ``experiment.py`` (or an ``experiments/`` folder)."""
    from reprozoo.runtime.registry_index import EXPERIMENTS

    elsewhere = {name: e["module"] for name, e in EXPERIMENTS.items()
                 if not (e["module"].endswith(".experiment") or ".experiments." in e["module"])}
    assert not elsewhere, elsewhere
    for path in SRC.rglob("*.py"):
        if path.name != "experiment.py" and "experiments" not in path.parts and path.parent.name != "runtime":
            assert "@register_experiment" not in path.read_text(), path
