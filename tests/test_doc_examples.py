"""The code blocks a newcomer copies first (README and the site's front pages) run as written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = ["README.md", "docs/index.md", "docs/verdicts.md", "docs/running.md", "docs/cli.md",
         "docs/development.md"]


def _python_blocks(page: str) -> list[str]:
    text = (ROOT / page).read_text()
    return [m.group(1) for m in re.finditer(r"^```python\n(.*?)^```", text, re.S | re.M)]


CASES = [(page, i, block) for page in PAGES for i, block in enumerate(_python_blocks(page))]


def test_readme_has_a_library_example():
    assert any(page == "README.md" for page, _, _ in CASES)


@pytest.mark.parametrize(("page", "index", "block"), CASES, ids=[f"{p}#{i}" for p, i, _ in CASES])
def test_python_block_runs(page, index, block, tmp_path):
    script = tmp_path / "block.py"
    script.write_text("import torch\ntorch.set_num_threads(1)\n" + block)
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=240)
    assert done.returncode == 0, f"{page} block {index} failed:\n{done.stderr[-2000:]}"
    if page == "README.md" and "superiority" in block:
        assert done.stdout.splitlines()[0] == "held"  # 4 paired gains of about 1.3 against a margin of 0.5
