"""``reprozoo bench gmp``: the cost of Gaussian-mixture proposals relative to CPL, measured in
one process (interleaved): training-step time at equal batch, and inference throughput
(queries/s), for the architecture of the ``gmp-grounding`` experiment and, in the full run,
the paper's Charades-STA size. Also: the batched importance pass vs one reconstructor pass per
mixture (the naive loop).

How far from the machine's limit (issue #11): ``peak_flops`` is the float32 throughput of a
1024x1024 ``torch.mm`` measured in the same run right after the timings, with the same thread
count (``threads``). Each timed column ``X_ms`` gets ``X_flops``, the arithmetic work of one timed
call from the runtime's FLOP counter (matrix products, a multiply-add = 2 FLOPs; elementwise ops
not counted), and ``X_limit_fraction``, its achieved FLOP/s over ``peak_flops``:

- training step: per step on the whole batch, forward + backward (counted on a deep copy of the
  model, so the timed model's gradients are untouched);
- inference: per forward of the whole batch;
- importance pass: per pass over the batch (64 or 1 queries). The reconstructor work of the
  batched pass and of the loop is the same; the batched pass also scores the Gaussians
  (attention pool) and runs the single-Gaussian heads, which the loop leaves out, so it carries
  slightly more FLOPs (``importance_extra_flops``).

Affordable seeds: the ``seed trials per CPU-s`` row measures, in the same run, the CPU time
(``process_time``) of one training step of each of the experiment's three trained arms (PPS, CPL,
PPS-1G) at the former PPS size (``FORMER_PPS_MIXTURES`` = 5 mixtures of 1..5 Gaussians, 21
reconstructor sequences per sample) and at the current one (``ArchConfig.pps_mixtures``),
interleaved, and turns each into trials per CPU-second at the ``full`` preset's training budget
(updates per trial; evaluation not counted); their ratio is the gain."""

from __future__ import annotations

import copy
import math
import time
from typing import Any

import torch

from reprozoo.gmp.arms import GmpConfig, arm_config
from reprozoo.gmp.data import GroundingDataset, ToyConfig, collate, make_split, make_world
from reprozoo.gmp.models import build_grounder, num_reconstructor_passes
from reprozoo.runtime.profile import (
    count_call_flops,
    count_params,
    latency_ratio,
    limit_fraction,
    matmul_peak_flops,
)
from reprozoo.runtime.registry import register_benchmark


def _setup(batch_size: int, arch_overrides: dict | None = None, arms: tuple[str, ...] = ("pps", "cpl")):
    """Each arm's grounder (weights seeded from 0) and one toy batch."""
    cfg = GmpConfig()
    for k, v in (arch_overrides or {}).items():
        setattr(cfg.arch, k, v)
    world = make_world(ToyConfig(), seed=0)
    data = make_split(world, batch_size, seed=0)
    batch = collate([GroundingDataset(data, world.vocab)[i] for i in range(batch_size)])
    models = {}
    for arm in arms:
        mcfg = arm_config(cfg, arm, len(world.vocab), 32)
        with torch.random.fork_rng(devices=[]):  # seeded weights; the caller's global RNG untouched
            torch.manual_seed(0)
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


FORMER_PPS_MIXTURES = 5  # the experiment's PPS before the redesign (mixtures of 1..5 Gaussians)
SEED_ARMS = ("pps", "cpl", "pps1g")


def _seed_models(arch: dict | None, batch_size: int):
    models, batch = _setup(batch_size, arch, SEED_ARMS)
    steps = {}
    for arm, model in models.items():
        steps[arm] = _train_step(model.train(), batch)
        steps[arm]()  # warm-up
    return steps


def _cpu_s(step) -> float:
    t0 = time.process_time()
    step()
    return time.process_time() - t0


def seed_throughput(batch_size: int, arch: dict | None = None, rounds: int = 5) -> dict[str, Any]:
    """Trials per CPU-second of the former and the current trial (training updates only, at the
    ``full`` preset's budget), on one torch thread (as every trial runs), each arm's former and
    current step timed alternately ``rounds`` times (median); ``ratio`` = current / former."""
    full = GmpConfig.from_preset("full")
    updates = math.ceil(full.n_train / full.fit.batch_size) * full.fit.epochs
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        former = _seed_models({**(arch or {}), "pps_mixtures": FORMER_PPS_MIXTURES}, batch_size)
        current = _seed_models(arch, batch_size)
        times: dict[str, dict[str, list[float]]] = {"former": {a: [] for a in SEED_ARMS},
                                                    "current": {a: [] for a in SEED_ARMS}}
        for _ in range(rounds):
            for arm in SEED_ARMS:  # alternate: a slow spell of the machine hits both
                times["former"][arm].append(_cpu_s(former[arm]))
                times["current"][arm].append(_cpu_s(current[arm]))
    finally:
        torch.set_num_threads(threads)
    cpu = {k: {a: sorted(v)[len(v) // 2] for a, v in per.items()} for k, per in times.items()}
    scale = updates * full.fit.batch_size / batch_size  # steps of this batch size per trial
    rate = {k: len(SEED_ARMS) / (sum(v.values()) * scale) for k, v in cpu.items()}
    return {"what": "seed trials per CPU-s", "batch": batch_size, "updates_per_trial": updates, "threads": 1,
            "former_step_cpu_ms": {a: round(1000 * v, 2) for a, v in cpu["former"].items()},
            "current_step_cpu_ms": {a: round(1000 * v, 2) for a, v in cpu["current"].items()},
            "former_trials_per_cpu_s": rate["former"], "current_trials_per_cpu_s": rate["current"],
            "ratio": rate["current"] / rate["former"]}


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
    peak = matmul_peak_flops(min_time_s=0.2 if quick else 0.5)  # same run, same thread count
    work = {}
    for arm, m in models.items():  # one timed call each
        replica = copy.deepcopy(m).train()
        work[f"train_{arm}"] = count_call_flops(_train_step(replica, batch))
        work[f"infer_{arm}"] = count_call_flops(_infer(m, batch))
    for tag, b in (("", batch), ("1", one)):
        work[f"batched{tag}"] = count_call_flops(_batched_importance(models["pps"], b))
        work[f"loop{tag}"] = count_call_flops(_naive_importance(models["pps"], b))
    frac = lambda f, ms: round(limit_fraction(f, ms, peak), 4)  # noqa: E731
    rows = [{"what": "training step", "batch": batch_size, "pps_ms": round(train["method_ms"], 1),
             "cpl_ms": round(train["baseline_ms"], 1), "ratio pps/cpl": round(train["ratio"], 3),
             "pps_flops": work["train_pps"], "cpl_flops": work["train_cpl"],
             "pps_limit_fraction": frac(work["train_pps"], train["method_ms"]),
             "cpl_limit_fraction": frac(work["train_cpl"], train["baseline_ms"])},
            {"what": "inference", "batch": batch_size,
             "pps_queries_per_s": round(1000 * batch_size / infer["method_ms"], 1),
             "cpl_queries_per_s": round(1000 * batch_size / infer["baseline_ms"], 1),
             "ratio pps/cpl time": round(infer["ratio"], 3),
             "pps_ms": round(infer["method_ms"], 2), "cpl_ms": round(infer["baseline_ms"], 2),
             "pps_flops": work["infer_pps"], "cpl_flops": work["infer_cpl"],
             "pps_limit_fraction": frac(work["infer_pps"], infer["method_ms"]),
             "cpl_limit_fraction": frac(work["infer_cpl"], infer["baseline_ms"])},
            {"what": "importance pass", "batched_ms": round(imp["method_ms"], 1),
             "one_pass_per_mixture_ms": round(imp["baseline_ms"], 1), "ratio": round(imp["ratio"], 3),
             "batch": batch_size, "batched_flops": work["batched"], "one_pass_per_mixture_flops": work["loop"],
             "importance_extra_flops": work["batched"] - work["loop"],
             "batched_limit_fraction": frac(work["batched"], imp["method_ms"]),
             "one_pass_per_mixture_limit_fraction": frac(work["loop"], imp["baseline_ms"])},
            {"what": "importance pass", "batched_ms": round(imp1["method_ms"], 2),
             "one_pass_per_mixture_ms": round(imp1["baseline_ms"], 2), "ratio": round(imp1["ratio"], 3), "batch": 1,
             "batched_flops": work["batched1"], "one_pass_per_mixture_flops": work["loop1"],
             "importance_extra_flops": work["batched1"] - work["loop1"],
             "batched_limit_fraction": frac(work["batched1"], imp1["method_ms"]),
             "one_pass_per_mixture_limit_fraction": frac(work["loop1"], imp1["baseline_ms"])}]
    for arm, m in models.items():
        kind = "cpl" if arm == "cpl" else "gmp"
        rows.append({"model": arm, "params": count_params(m),
                     "reconstructor_sequences_per_sample": num_reconstructor_passes(m.config, kind)})
    seeds = seed_throughput(batch_size, arch, rounds=2 if quick else 5)
    rows.append(seeds)
    ratios = {"train_step pps/cpl": train["ratio"], "inference pps/cpl": infer["ratio"],
              "importance batched/loop": imp["ratio"], "importance batched/loop batch1": imp1["ratio"],
              "seed trials per CPU-s current/former": seeds["ratio"]}
    return {"rows": rows, "ratios": ratios, "threads": int(train["threads"]), "peak_flops": peak,
            "goal": "batched importance pass faster than one pass per mixture (ratio < 1) at both batch sizes",
            "met": bool(imp["ratio"] < 1.0 and imp1["ratio"] < 1.0)}
