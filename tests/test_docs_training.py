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
    assert _stdout(ran, "Topic models") == ["3 (2, 3)", "True"]  # saved and loaded back: the same topics
    assert _stdout(ran, "Continual learning") == [str(["A_avg", "A_last", "F_last"])]
    assert _stdout(ran, "Speech recognition") == [str(["kept", "sup", "unsup"]), "2"]
    assert _stdout(ran, "Temporal video grounding") == ["2 True"]
    assert _stdout(ran, "Face anti-spoofing")[0] == "3"
    assert _stdout(ran, "NAS supernets") == ["True"]
    assert _stdout(ran, "Autoregressive samplers") == ["2 True"]


def test_fit_classifier_resumes_an_interrupted_run_bit_for_bit(tmp_path, trainer_epochs):
    """The page's promise for the recipe calls, whose schedule spans the whole run (per-step warm-up +
    cosine): stopped in its third epoch and resumed, a run ends with the weights and history of a run
    never stopped."""
    import torch
    from torch import nn
    from torch.utils.data import TensorDataset

    from reprozoo.runtime.image_classification import ImageRecipe, fit_classifier

    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(22, 3, 8, 8, generator=g), torch.randint(0, 3, (22,), generator=g)
    train, val = TensorDataset(x[:16], y[:16]), TensorDataset(x[16:], y[16:])

    def net():
        torch.manual_seed(0)
        return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Dropout(0.2),
                             nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))

    recipe = ImageRecipe(epochs=4, batch_size=4, lr=0.1, warmup_epochs=1, label_smoothing=0.1, device="cpu")
    straight = net()
    full = fit_classifier(straight, train, val, recipe, seed=3, out_dir=tmp_path / "a")

    trainer_epochs(stop_at=2)  # interrupted in the third epoch
    with pytest.raises(KeyboardInterrupt):
        fit_classifier(net(), train, val, recipe, seed=3, out_dir=tmp_path / "b")
    epochs_run = trainer_epochs()
    resumed = net()  # fresh weights: the checkpoint replaces them
    torch.manual_seed(12345)  # another global RNG state at restart: the checkpoint restores it
    again = fit_classifier(resumed, train, val, recipe, seed=3, out_dir=tmp_path / "b", resume=True)
    assert epochs_run == [2, 3]  # only the epochs the interrupted run had not finished
    assert again == full and len(full) == 4
    for (k, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), k


def test_the_default_devices_are_those_the_page_lists():
    """'Where the calls still differ': every call with a device setting defaults to auto."""
    import dataclasses
    import inspect

    from reprozoo.eclips.training import fit as eclips_fit
    from reprozoo.genas import train_supernet
    from reprozoo.gmp.training import fit as gmp_fit
    from reprozoo.nara import FitConfig
    from reprozoo.rainbow import ContinualLearner
    from reprozoo.runtime.image_classification import ImageRecipe
    from reprozoo.runtime.trainer import TrainConfig
    from reprozoo.sinet.training import train_stage
    from reprozoo.tvqvae import TVQVAE

    def default(fn):
        return inspect.signature(fn).parameters["device"].default

    def field(cls):
        return {f.name: f.default for f in dataclasses.fields(cls)}["device"]

    assert {field(TrainConfig), field(ImageRecipe), field(FitConfig), default(train_stage), default(TVQVAE),
            default(ContinualLearner), default(eclips_fit), default(gmp_fit), default(train_supernet)} == {"auto"}
    text = PAGE.read_text()
    assert "Default device: `auto` for every call that has a device setting" in " ".join(text.split())


def test_every_out_dir_call_refuses_a_folder_that_holds_a_run(tmp_path):
    """The page's rule for output folders, through the trainer every recipe call is built on."""
    import torch
    from torch.utils.data import TensorDataset

    from reprozoo.errors import OutputExistsError
    from reprozoo.runtime.trainer import TrainConfig, Trainer

    def trainer():
        model = torch.nn.Linear(4, 2)
        data = TensorDataset(torch.randn(8, 4), torch.randint(0, 2, (8,)))
        return Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), data,
                       TrainConfig(epochs=1, batch_size=4, device="cpu"), out_dir=tmp_path / "run", progress=False)

    trainer().fit()
    with pytest.raises(OutputExistsError, match="pass resume=True to continue it, or a new out_dir$"):
        trainer().fit()
    assert "refused unless `resume=True`" in " ".join(PAGE.read_text().split())
