"""Experiment ``gmp-grounding``: Gaussian-mixture proposals with pull-push learning (PPS) vs
CPL's single-Gaussian proposals on the synthetic grounding benchmark, per event type.

Arms (all trained on the same data per seed, the same epochs and the same validation-based
epoch selection -- the tuning budget is identical; every arm's segments come from the same
density rule, under which a single Gaussian's segment is the paper's ``c +- w/2``):

* ``pps``   -- K mixtures of 1..K Gaussians, learned easy negatives, pull + intra/inter push;
* ``cpl``   -- the paper's named baseline: single Gaussians, left/right complement negatives,
  diversity loss (CPL, CVPR 2022);
* ``pps1g`` -- the same PPS training with every proposal a single Gaussian (no mixture): it tells
  whether a gain comes from the mixture or from the rest of the scheme;
* ``whole`` -- negative control (no training): the whole video as the prediction;
* oracle splice -- positive control (no training): CPL's predictions with a planted two-Gaussian
  mixture on a fixed share of the two-part test events.

The rule, its plans, gates and margins are in :mod:`reprozoo.gmp.experiment_rule`.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from reprozoo.errors import ConfigError
from reprozoo.gmp.arms import ARM_NAMES, ARMS, GmpConfig, arm_config
from reprozoo.gmp.data import EVENT_TYPES, make_split, make_world
from reprozoo.gmp.experiment_rule import (
    METRIC,
    ORACLE_SHARE,
    SINGLE_MARGIN,
    SINGLE_PLAN,
    TWO_PART_MARGIN,
    TWO_PART_PLAN,
    decide_headline,
)
from reprozoo.gmp.inference import save_grounder
from reprozoo.gmp.metrics import recall_table, summarise, vote_top1
from reprozoo.gmp.models import build_grounder
from reprozoo.gmp.segment_rules import mixture_usage, planted_mixture, segments_by_rule
from reprozoo.gmp.training import fit, loader_for, predict
from reprozoo.runtime.accel import resolve_device
from reprozoo.runtime.figures import pyplot, save_figure
from reprozoo.runtime.registry import register_experiment
from reprozoo.runtime.report import ExperimentResult
from reprozoo.runtime.trials import Trial


def run_one(trial: Trial, tctx) -> dict[str, Any]:
    """Train one arm on one seed's data; evaluate on that seed's test split, per event type. PPS
    trials add the mechanism measures and the paper's centre rule on the same model; CPL trials add
    the oracle splice (the positive control)."""
    cfg: GmpConfig = tctx.config
    world = make_world(cfg.data, seed=trial.seed)
    train = make_split(world, cfg.n_train, seed=1000 * trial.seed + 1)
    val = make_split(world, cfg.n_val, seed=1000 * trial.seed + 2)
    test = make_split(world, cfg.n_test, seed=1000 * trial.seed + 3)
    mcfg = arm_config(cfg, trial.arm, len(world.vocab), cfg.data.dim)
    kind = "cpl" if trial.arm == "cpl" else "gmp"
    model = build_grounder(kind, mcfg, torch.as_tensor(world.vocab.vectors))
    device = resolve_device(tctx.device if tctx.device != "auto" else cfg.device)
    t0 = time.perf_counter()
    history = fit(model.to(device), train, val, world.vocab, cfg.fit, out_dir=tctx.workdir, resume=tctx.resume,
                  device=device, progress=False)
    train_s = time.perf_counter() - t0
    save_grounder(model, tctx.workdir / "grounder.safetensors", world.vocab, cfg.data.clips, cfg.fit.vote)
    pred = predict(model, loader_for(test, world.vocab, cfg.fit.eval_batch_size), cfg.fit.vote, keep=True)
    types = np.asarray(test.types)
    out = {**_scored(pred["top1"], pred["ranked"], pred["gt"], types), "train_s": train_s, "epochs": len(history),
           "val_curve": [float(h.get(f"val_{cfg.fit.select}", float("nan"))) for h in history],
           "selected_epoch": int(np.argmax([h.get(f"val_{cfg.fit.select}", -1) for h in history])) + 1}
    parts = _mixtures(pred["extra"])
    top = vote_top1(pred["segments"], pred["loss"], cfg.fit.vote)
    two = types == "two-part"
    if trial.arm == "pps":
        out["mechanism"] = _mechanism(parts, top, two, mcfg.segment_fraction)
        centre = torch.stack([segments_by_rule("centre", c, w, a) for c, w, a in
                              zip(parts["centres"], parts["widths"].unbind(1), parts["importance"])], 1)
        top_c = vote_top1(centre, pred["loss"], cfg.fit.vote)
        ranked_c = centre.gather(1, pred["loss"].argsort(-1)[..., None].expand(-1, -1, 2))
        out["centre_rule"] = _scored(centre[torch.arange(len(top_c)), top_c], ranked_c, pred["gt"], types)
    if trial.arm == "cpl":
        out["oracle"] = _scored(oracle_splice(pred["top1"], pred["gt"], two, trial.seed, mcfg.segment_fraction),
                                pred["ranked"], pred["gt"], types)
    examples = []
    for i in _example_indices(test.types, cfg.examples):
        k = int(top[i])
        ex = {"index": i, "type": test.types[i], "sentence": test.sentences[i], "gt": test.gt[i].tolist(),
              "segment": pred["segments"][i, k].tolist(), "mask": parts["masks"][i, k].tolist()}
        if kind == "gmp":
            ex["components"] = [{"centre": float(c), "width": float(parts["widths"][i, k]), "importance": float(a)}
                                for c, a in zip(parts["centres"][k][i], parts["importance"][k][i])]
        examples.append(ex)
    out["examples"] = examples
    return out


def _scored(top1, ranked, gt, types) -> dict[str, Any]:
    hits = recall_table(top1, ranked, gt)
    return {"overall": summarise(hits), "types": {t: summarise(hits, types == t) for t in EVENT_TYPES}}


def _mixtures(extra: list[dict]) -> dict[str, Any]:
    """The kept per-batch predictions joined over the test split."""
    k = len(extra[0]["centres"])
    return {"masks": torch.cat([e["masks"] for e in extra]), "widths": torch.cat([e["widths"] for e in extra]),
            "centres": [torch.cat([e["centres"][j] for e in extra]) for j in range(k)],
            "importance": [torch.cat([e["importance"][j] for e in extra]) for j in range(k)]}


def _mechanism(parts: dict[str, Any], top: torch.Tensor, two: np.ndarray, fraction: float) -> dict[str, float]:
    """Means over the two-part test events of :func:`mixture_usage` of each query's top-1 mixture."""
    n, width = len(top), max(c.shape[1] for c in parts["centres"])
    centres, imp = torch.zeros(n, width), torch.zeros(n, width)
    for j, (c, a) in enumerate(zip(parts["centres"], parts["importance"])):
        rows = top == j
        centres[rows, : c.shape[1]], imp[rows, : a.shape[1]] = c[rows], a[rows]
    use = mixture_usage(centres, parts["widths"][torch.arange(n), top], imp, fraction)
    sel = torch.as_tensor(two)
    k = torch.as_tensor([parts["centres"][int(j)].shape[1] for j in top])
    return {"nondominant": float(use["nondominant"][sel].mean()), "centre_span": float(use["centre_span"][sel].mean()),
            "rule_changed": float((use["rule_iou"][sel] < 0.9).float().mean()),
            "multi_gaussian_top1": float((k[sel] > 1).float().mean())}


def oracle_splice(top1: torch.Tensor, gt: torch.Tensor, two: np.ndarray, seed: int, fraction: float = 0.5,
                  share: float = ORACLE_SHARE) -> torch.Tensor:
    """The positive control: ``top1`` with a planted two-Gaussian mixture (its density-rule segment)
    on ``round(share x n)`` of the n two-part events, drawn from the seed; other queries unchanged."""
    idx = np.flatnonzero(two)
    pick = np.random.default_rng([seed, 77]).choice(idx, size=int(round(share * idx.size)), replace=False)
    out = top1.clone()
    if pick.size:
        c, w, a = planted_mixture(gt[pick])
        out[pick] = segments_by_rule("density", c, w, a, fraction=fraction)
    return out


def _example_indices(types: list[str], n: int) -> list[int]:
    """Two-part events first (the interesting ones), then the other types."""
    order = [i for i, t in enumerate(types) if t == "two-part"] + [i for i, t in enumerate(types) if t != "two-part"]
    per = [i for i in order[: max(n - n // 3, 0)]] + [i for i in order if types[i] == "single"][: n // 3]
    return sorted(set(per))[:n]


def whole_video_control(cfg: GmpConfig, seed: int) -> dict[str, Any]:
    """The negative control: predict [0, 1] for every test query (no model)."""
    world = make_world(cfg.data, seed=seed)
    test = make_split(world, cfg.n_test, seed=1000 * seed + 3)
    gt = torch.as_tensor(test.gt)
    whole = torch.tensor([[0.0, 1.0]]).expand(len(gt), 2)
    hits = recall_table(whole, whole[:, None], gt)
    types = np.asarray(test.types)
    return {"overall": summarise(hits), "types": {t: summarise(hits, types == t) for t in EVENT_TYPES}}


def planted_mixture_scores(cfg: GmpConfig, seed: int) -> dict[str, float]:
    """Two-part R@1 IoU 0.5 of the planted two-Gaussian mixture on every two-part test event, under
    the density rule and under the paper's centre rule (model-free: the rules' check)."""
    world = make_world(cfg.data, seed=seed)
    test = make_split(world, cfg.n_test, seed=1000 * seed + 3)
    gt = torch.as_tensor(test.gt)[torch.as_tensor(np.asarray(test.types) == "two-part")]
    if not len(gt):
        return {"density": float("nan"), "centre": float("nan")}
    c, w, a = planted_mixture(gt)
    out = {}
    for rule in ("density", "centre"):
        seg = segments_by_rule(rule, c, w, a, fraction=cfg.arch.segment_fraction)
        out[rule] = float(recall_table(seg, seg[:, None], gt)[METRIC].mean())
    return out


# ------------------------------------------------------------------ decision
def decide(scores: dict[str, dict[str, list[float]]], **gates: Any):
    """The headline and the claims (see :func:`reprozoo.gmp.experiment_rule.decide_headline`)."""
    return decide_headline(scores, **gates)


# ------------------------------------------------------------------ figures
def _figures(ctx, results: dict[str, list[dict]], control: list[dict], cfg: GmpConfig) -> list[str]:
    plt = pyplot()
    figs = []
    arms = [a for a in ("cpl", "pps1g", "pps") if a in results] + ["whole"]
    table = {**results, "whole": control}
    fig, ax = plt.subplots(figsize=(7, 3.6))
    width = 0.8 / len(arms)
    for j, arm in enumerate(arms):
        vals = np.array([[r["types"][t][METRIC] for t in EVENT_TYPES] for r in table[arm]])
        mean, std = vals.mean(0), vals.std(0, ddof=1) if len(vals) > 1 else np.zeros(len(EVENT_TYPES))
        ax.bar(np.arange(3) + (j - (len(arms) - 1) / 2) * width, 100 * mean, width, yerr=100 * std, capsize=3,
               label=ARM_NAMES[arm])
    ax.set_xticks(np.arange(3), EVENT_TYPES)
    ax.set_ylabel("test R@1, IoU 0.5 (%)")
    ax.set_title(f"R@1 IoU 0.5 per event type (mean ± std over {len(cfg.seeds)} seeds)")
    ax.legend(fontsize=8)
    figs.append(save_figure(fig, ctx.out_dir, "r1_per_type"))
    if "pps" in results and "cpl" in results and results["pps"][0]["examples"]:
        exs = list(zip(results["cpl"][0]["examples"], results["pps"][0]["examples"]))
        fig, axes = plt.subplots(len(exs), 1, figsize=(8, 1.5 * len(exs)), squeeze=False)
        for ax, (c, p) in zip(axes[:, 0], exs):
            t = np.linspace(0, 1, len(p["mask"]))
            ax.axvspan(*p["gt"], color="0.85", label="ground truth")
            ax.plot(t, c["mask"], "C0-", label="CPL top-1 proposal")
            ax.plot(t, p["mask"], "C3-", label="PPS top-1 mixture")
            for comp in p.get("components", []):
                ax.axvline(comp["centre"], color="C3", ls=":", alpha=min(1.0, 0.3 + comp["importance"]))
            ax.plot(p["segment"], [1.08, 1.08], "C3|-", lw=2)
            ax.plot(c["segment"], [1.16, 1.16], "C0|-", lw=2)
            ax.set_ylim(0, 1.25)
            ax.set_xlim(0, 1)
            ax.set_title(f"{p['type']}: \"{p['sentence']}\"", fontsize=8)
            ax.tick_params(labelsize=7)
        axes[0, 0].legend(fontsize=7, loc="lower center", bbox_to_anchor=(0.5, 1.25), ncol=3)
        axes[-1, 0].set_xlabel("normalised time (bars: predicted segments)")
        fig.tight_layout()
        figs.append(save_figure(fig, ctx.out_dir, "examples"))
    return figs


# ------------------------------------------------------------------ the experiment
@register_experiment(
    "gmp-grounding",
    paper="Kim, Ko, Kim, Jeon, Kim: Gaussian Mixture Proposals with Pull-Push Learning Scheme to Capture Diverse "
          "Events for Weakly Supervised Temporal Video Grounding, AAAI 2024 (arXiv 2312.16388)",
    claim="Gaussian-mixture proposals trained with pull-push learning ground queries whose moment is not one "
          "Gaussian-shaped block (two-part events) better than single-Gaussian proposals (CPL), and are no worse "
          "on single-block events",
    config=GmpConfig,
)
def run(cfg: GmpConfig, ctx) -> ExperimentResult:
    cfg.validate()
    if "pps" not in cfg.arms:
        raise ConfigError("arms must include 'pps' (the method)")
    trials = [Trial(arm, s) for arm in cfg.arms for s in cfg.seeds]
    out = ctx.run_trials(run_one, trials, description="gmp-grounding trials")
    results: dict[str, list[dict]] = {arm: [] for arm in cfg.arms}
    for t, r in zip(trials, out):
        results[t.arm].append(r)
    control = [whole_video_control(cfg, s) for s in cfg.seeds]
    scores = {arm: {t: [r["types"][t][METRIC] for r in rs] for t in EVENT_TYPES} for arm, rs in results.items()}
    scores["whole"] = {t: [r["types"][t][METRIC] for r in control] for t in EVENT_TYPES}
    gates: dict[str, Any] = {}
    if "pps" in results:
        gates["nondominant"] = [r["mechanism"]["nondominant"] for r in results["pps"]]
        gates["centre_span"] = [r["mechanism"]["centre_span"] for r in results["pps"]]
        gates["centre_rule"] = [r["centre_rule"]["types"]["two-part"][METRIC] for r in results["pps"]]
    if "cpl" in results:
        gates["oracle"] = [r["oracle"]["types"]["two-part"][METRIC] for r in results["cpl"]]
    gates["val_curves"] = {arm: [r["val_curve"] for r in rs] for arm, rs in results.items()}
    head, claims = decide(scores, **gates)
    metrics: dict[str, float] = {}
    for r, seed in zip(results["pps"], cfg.seeds):  # the mechanism, per trial
        for k, v in r["mechanism"].items():
            metrics[f"mechanism/pps_seed{seed}_{k}"] = v
    for k in results["pps"][0]["mechanism"]:
        metrics[f"mechanism/pps_{k}"] = float(np.mean([r["mechanism"][k] for r in results["pps"]]))
    for key, arm in (("centre_rule", "pps"), ("oracle", "cpl")):
        if arm in results:
            for scope in EVENT_TYPES:
                metrics[f"{key}/{arm}_{scope}_{METRIC}"] = float(np.mean([r[key]["types"][scope][METRIC]
                                                                          for r in results[arm]]))
    planted = [planted_mixture_scores(cfg, s) for s in cfg.seeds]
    for rule in ("density", "centre"):
        metrics[f"control/planted_mixture_two-part_{METRIC}_{rule}_rule"] = float(np.mean([p[rule] for p in planted]))
    table = []
    for arm, rs in {**results, "whole": control}.items():
        group = "method" if arm == "pps" else ("control" if arm == "whole" else "baseline")
        for scope in ("overall",) + EVENT_TYPES:
            rows = [r["overall"] if scope == "overall" else r["types"][scope] for r in rs]
            row = {"arm": ARM_NAMES[arm], "events": scope}
            for k in rows[0]:
                vals = [x[k] for x in rows]
                metrics[f"{group}/{arm}_{scope}_{k}"] = float(np.mean(vals))
                row[k] = f"{100 * np.mean(vals):.1f}±{100 * np.std(vals, ddof=1) if len(vals) > 1 else 0:.1f}"
            table.append(row)
        if arm != "whole":
            metrics[f"time/{arm}_train_s"] = float(np.mean([r["train_s"] for r in rs]))
    figures = _figures(ctx, results, control, cfg)
    notes = ("Numbers are test R@n at IoU m and mIoU in %, mean ± std over seeds; every arm trains on the same "
             "data per seed for the same epochs and keeps its best validation epoch "
             f"({cfg.fit.select}). Top-1 by IoU voting ({cfg.fit.vote}); R@5 = best of the 5 lowest-loss "
             "proposals. Evaluation masks words with fixed per-sample seeds. Selected epochs: "
             + ", ".join(f"{ARM_NAMES[a]} {[r['selected_epoch'] for r in rs]}" for a, rs in results.items()))
    return ExperimentResult.from_headline(head, metrics, claims=claims, table=table, figures=figures, notes=notes)


__all__ = ["ARMS", "GmpConfig", "SINGLE_MARGIN", "SINGLE_PLAN", "TWO_PART_MARGIN", "TWO_PART_PLAN", "arm_config",
           "decide", "oracle_splice", "planted_mixture_scores", "run", "run_one", "whole_video_control"]
