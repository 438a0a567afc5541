"""The package's layout: every module imports first in a fresh process (no import cycle hidden
behind a lucky import order or a lazy import), and no module is over ~400 lines."""

import subprocess
import sys
from pathlib import Path


def test_every_module_imports_first():
    """Each module imported first (the package's other modules unloaded): an import cycle hidden
    behind a lucky import order fails here."""
    code = """
import importlib, pkgutil, sys
import torch  # noqa: F401  (kept loaded: only reprozoo's modules are unloaded)
import reprozoo.sinet as pkg
names = ["reprozoo.sinet." + m.name for m in pkgutil.iter_modules(pkg.__path__)]
for name in names:
    for loaded in [m for m in sys.modules if m.startswith("reprozoo")]:
        del sys.modules[loaded]
    importlib.import_module(name)
print(len(names))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(done.stdout.strip()) >= 20


def test_no_module_of_the_package_is_over_400_lines():
    import reprozoo.sinet as pkg

    long = {p.name: n for p in Path(pkg.__path__[0]).glob("*.py") if (n := len(p.read_text().splitlines())) > 400}
    assert long == {}
