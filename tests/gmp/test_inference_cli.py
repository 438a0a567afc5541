import functools

import numpy as np
import pytest
import torch

from reprozoo.cli import main
from reprozoo.errors import CheckpointError, DataError
from reprozoo.gmp.data import ToyConfig, make_split, make_world
from reprozoo.gmp.inference import Grounder, load_grounder, save_grounder
from reprozoo.gmp.models import GMP, GrounderConfig


@pytest.fixture
def trained(tmp_path):
    torch.manual_seed(0)
    world = make_world(ToyConfig(), seed=0)
    cfg = GrounderConfig(vocab_size=len(world.vocab), word_dim=32, frame_dim=32, d_model=16, heads=2, layers=1,
                         ffn=16, grid=16, components=[1, 2, 3], n_neg=2)
    model = GMP(cfg, torch.as_tensor(world.vocab.vectors)).eval()
    path = save_grounder(model, tmp_path / "grounder.safetensors", world.vocab, clips=64)
    return path, model, world


def test_checkpoint_roundtrip_is_bit_identical(trained):
    path, model, world = trained
    loaded, vocab, state = load_grounder(path)
    assert vocab.words == world.vocab.words and state["clips"] == 64
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values()))
    data = make_split(world, 2, seed=5)
    g1, g2 = Grounder(model, world.vocab, 64), Grounder.from_checkpoint(path)
    r1 = g1.ground(data.features[0], data.sentences[0], duration=32.0)
    r2 = g2.ground(data.features[0], data.sentences[0], duration=32.0)
    assert r1 == r2 and len(r1["proposals"]) == 3
    s, e = r1["segment"]
    assert 0 <= s < e <= 32.0
    # features of another length are resampled to the training clip count; the default unit is rows
    r3 = g2.ground(data.features[0][::2], data.sentences[0])
    assert r3["length"] == 32.0


def test_bad_inputs_name_the_problem(trained, tmp_path):
    path, _, world = trained
    g = Grounder.from_checkpoint(path)
    feats = make_split(world, 1, seed=1).features[0]
    with pytest.raises(DataError, match="no word of the model"):
        g.ground(feats, "zebra crossing")
    with pytest.raises(DataError, match="dimension 5, the model expects 32"):
        g.ground(np.zeros((10, 5)), "person v1 o1")
    with pytest.raises(DataError, match="non-empty"):
        g.ground(np.zeros((0, 32)), "person v1 o1", name="clip.npy")
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        Grounder.from_checkpoint(tmp_path / "none.pt")
    junk = tmp_path / "junk.pt"
    torch.save({"a": torch.zeros(1)}, junk)
    with pytest.raises(CheckpointError, match="not a reprozoo.checkpoint/1 file"):
        Grounder.from_checkpoint(junk)


def test_ground_command_prints_segment_and_top5(trained, tmp_path, capsys):
    path, _, world = trained
    feats = tmp_path / "video.npy"
    np.save(feats, make_split(world, 1, seed=2).features[0])
    rc = main(["ground", "--checkpoint", str(path), "--features", str(feats), "--query", "person v1 o2",
               "--duration", "30"])
    out = capsys.readouterr().out
    assert rc == 0 and "segment:" in out and "of 30.00s" in out and "top-3 proposals" in out
    rc = main(["ground", "--checkpoint", str(path), "--features", str(feats), "--query", "zebra"])
    assert rc == 2 and "no word of the model" in capsys.readouterr().err


BENCH_ARCH = {"d_model": 8, "ffn": 8, "layers": 1, "grid": 8, "pps_mixtures": 3, "cpl_proposals": 3}


@functools.lru_cache(maxsize=1)
def _quick_bench():
    """One quick run shared by the benchmark tests (called inside a test: one torch thread)."""
    from reprozoo.gmp.benchmark import run

    return run(quick=True, batch_size=4, arch=BENCH_ARCH)


def test_benchmark_reports_ratios_from_one_run():
    out = _quick_bench()
    assert set(out["ratios"]) == {"train_step pps/cpl", "inference pps/cpl", "importance batched/loop",
                                 "importance batched/loop batch1", "seed trials per CPU-s current/former"}
    assert all(v > 0 for v in out["ratios"].values())
    seed = next(r for r in out["rows"] if r.get("what") == "seed trials per CPU-s")
    # the ratio is the quotient of the two rates measured in this run; PPS with 5 mixtures costs more
    assert seed["ratio"] == pytest.approx(seed["current_trials_per_cpu_s"] / seed["former_trials_per_cpu_s"])
    assert seed["former_step_cpu_ms"]["cpl"] > 0 and set(seed["current_step_cpu_ms"]) == {"pps", "cpl", "pps1g"}
    seqs = {r["model"]: r["reconstructor_sequences_per_sample"] for r in out["rows"] if "model" in r}
    assert seqs == {"pps": 3 + (2 + 3) + 1 + 1, "cpl": 3 + 1 + 2}


def test_benchmark_reports_flops_and_fraction_of_peak():
    from reprozoo.gmp.benchmark import _setup
    from reprozoo.runtime.profile import count_flops

    out = _quick_bench()
    assert out["peak_flops"] > 0 and out["threads"] == 1
    train, infer, imp, imp1 = out["rows"][:4]
    models, batch = _setup(4, BENCH_ARCH)  # the same models, built again: an independent count
    for arm in ("pps", "cpl"):
        assert infer[f"{arm}_flops"] == count_flops(models[arm], batch) > 0
        # forward (with the extra reconstructions of the losses) + backward: more than 2x inference
        assert train[f"{arm}_flops"] > 2 * infer[f"{arm}_flops"]
    assert infer["pps_flops"] > infer["cpl_flops"]  # 10 vs 6 reconstructor sequences per sample
    c = models["pps"].config
    d, multi, single = c.d_model, sum(k for k in c.components if k > 1), sum(1 for k in c.components if k == 1)
    for row, b in ((imp, 4), (imp1, 1)):
        # the loop and the batched pass do the same reconstructor arithmetic; the batched pass adds
        # the attention pool over its b x sum(k) Gaussians (d x d + d x 1) and the single-Gaussian heads
        extra = 2 * b * multi * d * (d + 1) + 2 * b * single * d * 2
        assert row["batched_flops"] - row["one_pass_per_mixture_flops"] == row["importance_extra_flops"] == extra
        assert row["one_pass_per_mixture_flops"] > 0
    assert imp["batched_flops"] > imp1["batched_flops"]
    cols = [(train, "pps"), (train, "cpl"), (infer, "pps"), (infer, "cpl")]
    cols += [(r, k) for r in (imp, imp1) for k in ("batched", "one_pass_per_mixture")]
    for row, key in cols:  # limit_fraction is rounded to 4 digits (and ms to 1-2 decimals): compare loosely
        achieved = row[f"{key}_flops"] / (row[f"{key}_ms"] / 1000) / out["peak_flops"]
        assert row[f"{key}_limit_fraction"] == pytest.approx(achieved, rel=0.1, abs=1e-4) and 0 < achieved < 1.5
