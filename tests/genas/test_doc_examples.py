"""Every python block of docs/genas.md runs as written (tiny inputs, a fresh process, one thread)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

PAGE = Path(__file__).resolve().parents[2] / "docs" / "genas.md"
BLOCKS = [m.group(1) for m in re.finditer(r"^```python\n(.*?)^```", PAGE.read_text(), re.S | re.M)]


def test_the_page_has_examples():
    assert BLOCKS


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_python_block_runs(index, tmp_path):
    script = tmp_path / "block.py"
    script.write_text("import torch\ntorch.set_num_threads(1)\n" + BLOCKS[index])
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"docs/genas.md block {index} failed:\n{done.stderr[-2000:]}"
