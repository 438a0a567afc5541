"""``reprozoo bench gmp``: the cost of Gaussian-mixture proposals relative to CPL, measured in
one process (interleaved): training-step time at equal batch, and inference throughput
(queries/s), for the architecture of the ``gmp-grounding`` experiment and, in the full run,
the paper's Charades-STA size. Also: the batched importance pass vs one reconstructor pass per
mixture (the naive loop)."""

from __future__ import annotations

from typing import Any

import torch

from reprozoo.gmp.data import GroundingDataset, ToyConfig, collate, make_split, make_world
from reprozoo.gmp.experiment import GmpConfig, arm_config
from reprozoo.gmp.models import build_grounder, num_reconstructor_passes
from reprozoo.runtime.profile import count_params, latency_ratio
from reprozoo.runtime.registry import register_benchmark


def _setup(batch_size: int, arch_overrides: dict | None = None):
    cfg = GmpConfig()
    for k, v in (arch_overrides or {}).items():
        setattr(cfg.arch, k, v)
    world = make_world(ToyConfig(), seed=0)
    data = make_split(world, batch_size, seed=0)
    batch = collate([GroundingDataset(data, world.vocab)[i] for i in range(batch_size)])
    models = {}
    for arm in ("pps", "cpl"):
        torch.manual_seed(0)
        mcfg = arm_config(cfg, arm, len(world.vocab), 32)
        models[arm] = build_grounder("cpl" if arm == "cpl" else "gmp", mcfg, torch.as_tensor(world.vocab.vectors))
    return models, batch


def _train_step(model, batch):
    def step():
        model.zero_grad(set_to_none=True)
        model.training_loss(batch)["loss"].backward()

    return step


def _infer(model, batch):
    def run():
        with torch.no_grad():
            model(batch)

    return run


def _naive_importance(model, batch):
    """One reconstructor pass per mixture (what the batched pass replaces)."""
    def run():
        with torch.no_grad():
            h = model._generator_state(batch)
            inputs = model._recon_inputs(batch)
            for fc, k in zip(model.fc_mask, model.config.components):
                if k > 1:
                    cw = torch.sigmoid(fc(h)).view(h.shape[0], k, 2)
                    from reprozoo.gmp.proposals import gaussian_masks

                    g = gaussian_masks(cw[..., 0], cw[..., 1][:, :1].expand(-1, k), model.config.grid,
                                       model.config.sigma)
                    model.reconstruct(inputs, g, need_loss=False)
    return run


def _batched_importance(model, batch):
    def run():
        with torch.no_grad():
            h = model._generator_state(batch)
            model.proposals(h, model._recon_inputs(batch))
    return run


@register_benchmark("gmp", description="PPS vs CPL: training step time at equal batch, inference queries/s")
def run(quick: bool = False, batch_size: int = 64, arch: dict | None = None) -> dict[str, Any]:
    """``arch`` overrides fields of the experiment's architecture (``ArchConfig``)."""
    kw = {"rounds": 2, "warmup": 1, "repeats": 3} if quick else {"rounds": 5, "warmup": 2, "repeats": 8}
    models, batch = _setup(batch_size, arch)
    for m in models.values():
        m.train()
    train = latency_ratio(_train_step(models["pps"], batch), _train_step(models["cpl"], batch), **kw)
    for m in models.values():
        m.eval()
    infer = latency_ratio(_infer(models["pps"], batch), _infer(models["cpl"], batch), **kw)
    imp = latency_ratio(_batched_importance(models["pps"], batch), _naive_importance(models["pps"], batch), **kw)
    one = {k: v[:1] for k, v in batch.items()}
    one["words"], one["weights"] = one["words"][:, :int(one["lengths"][0])], one["weights"][:, :int(one["lengths"][0])]
    imp1 = latency_ratio(_batched_importance(models["pps"], one), _naive_importance(models["pps"], one), **kw)
    rows = [{"what": "training step", "batch": batch_size, "pps_ms": round(train["method_ms"], 1),
             "cpl_ms": round(train["baseline_ms"], 1), "ratio pps/cpl": round(train["ratio"], 3)},
            {"what": "inference", "batch": batch_size,
             "pps_queries_per_s": round(1000 * batch_size / infer["method_ms"], 1),
             "cpl_queries_per_s": round(1000 * batch_size / infer["baseline_ms"], 1),
             "ratio pps/cpl time": round(infer["ratio"], 3)},
            {"what": "importance pass", "batched_ms": round(imp["method_ms"], 1),
             "one_pass_per_mixture_ms": round(imp["baseline_ms"], 1), "ratio": round(imp["ratio"], 3),
             "batch": batch_size},
            {"what": "importance pass", "batched_ms": round(imp1["method_ms"], 2),
             "one_pass_per_mixture_ms": round(imp1["baseline_ms"], 2), "ratio": round(imp1["ratio"], 3), "batch": 1}]
    for arm, m in models.items():
        kind = "cpl" if arm == "cpl" else "gmp"
        rows.append({"model": arm, "params": count_params(m),
                     "reconstructor_sequences_per_sample": num_reconstructor_passes(m.config, kind)})
    ratios = {"train_step pps/cpl": train["ratio"], "inference pps/cpl": infer["ratio"],
              "importance batched/loop": imp["ratio"], "importance batched/loop batch1": imp1["ratio"]}
    return {"rows": rows, "ratios": ratios, "threads": int(train["threads"]),
            "goal": "batched importance pass faster than one pass per mixture (ratio < 1) at both batch sizes",
            "met": bool(imp["ratio"] < 1.0 and imp1["ratio"] < 1.0)}
