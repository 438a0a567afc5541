"""Every python block of the README, of the pages whose examples are runnable and of every experiment page
(docs/experiments/*.md) runs as written (tiny inputs defined in the block, a fresh process, one thread).
Pages join ``PAGES`` once their blocks run."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = ["README.md", "docs/index.md", "docs/verdicts.md", "docs/running.md", "docs/cli.md",
         "docs/development.md", "docs/activeasr.md", "docs/eclips.md", "docs/genas.md", "docs/gmp.md",
         "docs/nara.md", "docs/pflayer.md", "docs/rainbow.md", "docs/sinet.md", "docs/tvqvae.md",
         *sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "docs" / "experiments").glob("*.md"))]
MIN_BLOCKS = {"README.md": 1, "docs/activeasr.md": 1, "docs/eclips.md": 1, "docs/genas.md": 1, "docs/gmp.md": 2,
              "docs/nara.md": 2, "docs/pflayer.md": 3, "docs/rainbow.md": 2, "docs/sinet.md": 4, "docs/tvqvae.md": 2}


def _python_blocks(page: str) -> list[str]:
    text = (ROOT / page).read_text()
    return [m.group(1) for m in re.finditer(r"^```python\n(.*?)^```", text, re.S | re.M)]


CASES = [(page, i, block) for page in PAGES for i, block in enumerate(_python_blocks(page))]


def test_every_package_has_a_user_guide_and_an_experiment_page():
    """The experiment pages are collected (a package's results block lives there, not in its guide)."""
    experiments = [p for p in PAGES if p.startswith("docs/experiments/")]
    assert len(experiments) >= 10
    for page in experiments:
        assert (ROOT / "docs" / page.rsplit("/", 1)[1]).is_file(), f"{page} has no user guide"


@pytest.mark.parametrize(("page", "least"), sorted(MIN_BLOCKS.items()))
def test_the_page_keeps_its_examples(page, least):
    assert len(_python_blocks(page)) >= least


@pytest.mark.parametrize(("page", "index", "block"), CASES, ids=[f"{p}#{i}" for p, i, _ in CASES])
def test_python_block_runs(page, index, block, tmp_path):
    script = tmp_path / "block.py"
    script.write_text("import torch\ntorch.set_num_threads(1)\n" + block)
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, f"{page} block {index} failed:\n{done.stderr[-2000:]}"
    if page == "docs/tvqvae.md":
        assert done.stdout.strip(), "the block prints its result"
    if page == "README.md" and "superiority" in block:
        assert done.stdout.splitlines()[0] == "held"  # 4 paired gains of about 1.3 against a margin of 0.5
