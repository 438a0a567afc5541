"""Two CPU processes (gloo, via torchrun) must train the same model as one process with the
same global batch: DDP averages the two half-batch gradients, which equals the full-batch mean."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
TOL = 1e-5  # float32 sums in a different order (two half-batch means averaged vs one mean)


def _run(cmd, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), "REPROZOO_PROGRESS": "0"}
    env.pop("PYTEST_XDIST_WORKER", None)
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_two_process_ddp_matches_single_process(tmp_path):
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or "torchrun"
    _run([sys.executable, "-m", "tests.runtime.ddp_train", str(tmp_path / "one.pt")], tmp_path)
    _run([torchrun, "--standalone", "--nproc_per_node", "2", "-m", "tests.runtime.ddp_train",
          str(tmp_path / "two.pt")], tmp_path)
    one = torch.load(tmp_path / "one.pt", weights_only=True)
    two = torch.load(tmp_path / "two.pt", weights_only=True)
    assert one["processes"] == 1 and two["processes"] == 2
    for key, value in one["state"].items():
        diff = (value - two["state"][key]).abs().max().item()
        assert diff < TOL, f"{key}: max |diff| {diff}"
    assert abs(one["history"][-1]["val_acc"] - two["history"][-1]["val_acc"]) < 1e-6
    assert abs(one["history"][-1]["train_loss"] - two["history"][-1]["train_loss"]) < 1e-4
