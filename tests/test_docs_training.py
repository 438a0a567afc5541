"""docs/training.md: every python block runs as written, on a CPU with one thread and tiny data.

The blocks run in one fresh process (one import of torch and the library for all of them), each in
its own empty folder and its own namespace, so a block cannot use a name another block defined; what
each prints is checked where the page states the result (the resume example, the shapes)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "training.md"
KINDS = ["Any model", "Image classification", "Portrait segmentation", "Topic models", "Continual learning",
         "Speech recognition and active learning", "Temporal video grounding", "Face anti-spoofing ensembles",
         "NAS supernets", "Autoregressive samplers"]

RUNNER = r"""
import contextlib, io, json, os, sys, time, traceback
import torch
torch.set_num_threads(1)
blocks, work = json.loads(open(sys.argv[1]).read()), sys.argv[2]
for i, block in enumerate(blocks):
    folder = os.path.join(work, f"block{i}")
    os.makedirs(folder)
    os.chdir(folder)
    out, error, start = io.StringIO(), "", time.perf_counter()
    try:
        with contextlib.redirect_stdout(out):
            exec(compile(block, f"training.md block {i}", "exec"), {"__name__": "__main__"})
    except BaseException:
        error = traceback.format_exc()[-3000:]
    print(json.dumps({"index": i, "stdout": out.getvalue(), "error": error,
                      "seconds": round(time.perf_counter() - start, 2)}), flush=True)
"""


def python_blocks() -> list[str]:
    return [m.group(1) for m in re.finditer(r"^```python\n(.*?)^```", PAGE.read_text(), re.S | re.M)]


@pytest.fixture(scope="module")
def ran(tmp_path_factory) -> list[dict]:
    work = tmp_path_factory.mktemp("training_md")
    (work / "blocks.json").write_text(json.dumps(python_blocks()))
    (work / "runner.py").write_text(RUNNER)
    done = subprocess.run([sys.executable, str(work / "runner.py"), str(work / "blocks.json"), str(work / "run")],
                          cwd=work, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith('{"index"')]


def test_the_page_has_a_section_and_an_example_per_kind_of_task():
    text = PAGE.read_text()
    headings = re.findall(r"^## (.+)$", text, re.M)
    for kind in KINDS:
        assert any(h.startswith(kind) for h in headings), kind
    assert len(python_blocks()) >= len(KINDS) + 1  # + the device resolver


def test_the_page_is_in_the_site_navigation():
    assert re.search(r"^\s+- Training: training\.md$", (ROOT / "mkdocs.yml").read_text(), re.M)


def test_every_block_runs(ran):
    assert len(ran) == len(python_blocks())
    failed = {r["index"]: r["error"] for r in ran if r["error"]}
    assert not failed, "\n".join(f"block {i}:\n{e}" for i, e in failed.items())


def _stdout(ran, heading: str) -> list[str]:
    """The printed lines of the first block under the section whose heading starts with ``heading``."""
    text = PAGE.read_text()
    start = text.index(f"\n## {heading}")
    index = len(re.findall(r"^```python\n", text[:start], re.M))
    return ran[index]["stdout"].splitlines()


def test_what_the_blocks_print(ran):
    assert _stdout(ran, "Choosing the device")[0] in ("cpu", "cuda")
    assert "got 'gpu'" in _stdout(ran, "Choosing the device")[1]
    trainer = _stdout(ran, "Any model")
    assert trainer[0] == str(["epoch", "train_acc", "train_loss", "val_acc", "val_loss"])
    assert trainer[-1] == "True"  # resumed after 2 of 3 epochs == never stopped, bit for bit
    assert _stdout(ran, "Image classification")[0] == str(["val_loss", "val_top1", "val_top5"])
    assert _stdout(ran, "Portrait segmentation")[-1] == "torch.Size([64, 64])"
    assert _stdout(ran, "Topic models") == ["3 (2, 3)"]
    assert _stdout(ran, "Continual learning") == [str(["A_avg", "A_last", "F_last"])]
    assert _stdout(ran, "Speech recognition") == [str(["kept", "sup", "unsup"]), "2"]
    assert _stdout(ran, "Temporal video grounding") == ["2 True"]
    assert _stdout(ran, "Face anti-spoofing")[0] == "3"
    assert _stdout(ran, "NAS supernets") == ["True"]
    assert _stdout(ran, "Autoregressive samplers") == ["2 True"]
