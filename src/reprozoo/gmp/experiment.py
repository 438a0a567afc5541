"""Experiment ``gmp-grounding``: Gaussian-mixture proposals with pull-push learning (PPS) vs
CPL's single-Gaussian proposals on the synthetic grounding benchmark, per event type.

Arms (all trained on the same data per seed, the same epochs and the same validation-based
epoch selection -- the tuning budget is identical):

* ``pps``   -- K = 5 mixtures of 1..5 Gaussians, learned easy negatives, pull + intra/inter push;
* ``cpl``   -- the paper's named baseline: K = 8 single Gaussians, left/right complement
  negatives, diversity loss (CPL, CVPR 2022);
* ``pps1g`` -- the same PPS training with every proposal a single Gaussian (no mixture): it tells
  whether a gain comes from the mixture or from the rest of the scheme;
* ``whole`` -- negative control (no training): the whole video as the prediction.

Rules, fixed before the first run (constants below). Every comparison is the one-sided 95%
t-interval [L, U] of the mean paired difference over >= ``MIN_SEEDS`` seeds against a margin:

* headline, part 1 (superiority): on two-part events, PPS's test R@1 at IoU 0.5 beats the
  *strongest* of CPL and PPS-1G: held if L > ``TWO_PART_MARGIN``, not held if U < it, else
  inconclusive; design ``TWO_PART_PLAN``;
* headline, part 2 (non-inferiority): on single-block events PPS is no worse than CPL: held if
  L > -``SINGLE_MARGIN``, not held if U < -``SINGLE_MARGIN``; design ``SINGLE_PLAN``;
* the headline holds when both parts hold; the whole-video control must lose to both PPS and CPL on
  two-part events (same rule), else the headline is "inconclusive";
* sub-claims: PPS vs CPL and PPS vs PPS-1G on two-part events (same rule), ramp events reported.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from reprozoo.errors import ConfigError
from reprozoo.gmp.arms import ARM_NAMES, ARMS, GmpConfig, arm_config
from reprozoo.gmp.data import EVENT_TYPES, make_split, make_world
from reprozoo.gmp.inference import save_grounder
from reprozoo.gmp.metrics import recall_table, summarise, vote_top1
from reprozoo.gmp.models import build_grounder
from reprozoo.gmp.training import fit, loader_for, predict
from reprozoo.runtime.accel import resolve_device
from reprozoo.runtime.figures import pyplot, save_figure
from reprozoo.runtime.registry import register_experiment
from reprozoo.runtime.report import ExperimentResult
from reprozoo.runtime.trials import Trial
from reprozoo.runtime.verdict import (
    Headline,
    Plan,
    claim,
    every_part,
    noninferiority,
    strongest,
    superiority,
)
from reprozoo.runtime.verdict import decide as gate

TWO_PART_MARGIN = 0.03  # R@1 IoU 0.5 (fraction of queries)
SINGLE_MARGIN = 0.03
MIN_SEEDS = 3  # fewer paired seeds -> inconclusive
# the design of the two headline parts, fixed beside their margins
TWO_PART_PLAN = Plan(
    sesoi=0.021,
    sesoi_source=("Kim et al. (AAAI 2024), Charades-STA table of the official README: PPS 51.49 vs CPL 49.24 R@1 "
                  "IoU 0.5, +2.25 points = +4.6% relative; the same relative gain over this benchmark's CPL on "
                  "two-part events (0.455 in the quick run of docs/gmp.md) is 0.021. It is below the margin, so no "
                  "number of seeds gives the rule power at the paper's effect"),
    margin=TWO_PART_MARGIN,
    pilot_sd=0.1025,
    pilot_source=("quick run in docs/gmp.md (3 seeds, PPS vs CPL on two-part events): the old rule's bar 0.205 = "
                  "2 x the SD of the paired differences"),
)
SINGLE_PLAN = Plan(
    sesoi=0.0,
    sesoi_source=("Kim et al. (AAAI 2024) claim no loss where one Gaussian suffices (PPS is on par with or above CPL "
                  "on Charades-STA and ActivityNet Captions, official README tables): a true difference of 0 on "
                  "single-block events"),
    margin=SINGLE_MARGIN,
    pilot_sd=0.191,
    pilot_source=("quick run in docs/gmp.md (3 seeds, single-block PPS vs CPL): the old rule's lower bound -0.43 = "
                  "mean -0.209 - 2 SE, so SE 0.11 and SD = SE x sqrt(3)"),
    kind="noninferiority",
)
METRIC = "R1@0.5"
def run_one(trial: Trial, tctx) -> dict[str, Any]:
    """Train one arm on one seed's data; evaluate on that seed's test split, per event type."""
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
    history = fit(model.to(device), train, val, world.vocab, cfg.fit, workdir=tctx.workdir, resume=tctx.resume,
                  device=device, progress=False)
    train_s = time.perf_counter() - t0
    save_grounder(model, tctx.workdir / "grounder.safetensors", world.vocab, cfg.data.clips, cfg.fit.vote)
    pred = predict(model, loader_for(test, world.vocab, cfg.fit.eval_batch_size), cfg.fit.vote, keep=True)
    hits = recall_table(pred["top1"], pred["ranked"], pred["gt"])
    types = np.asarray(test.types)
    out = {"overall": summarise(hits), "types": {t: summarise(hits, types == t) for t in EVENT_TYPES},
           "train_s": train_s, "epochs": len(history),
           "selected_epoch": int(np.argmax([h.get(f"val_{cfg.fit.select}", -1) for h in history])) + 1}
    top = vote_top1(pred["segments"], pred["loss"], cfg.fit.vote)
    examples, masks = [], torch.cat([e["masks"] for e in pred["extra"]])
    picks = _example_indices(test.types, cfg.examples)
    for i in picks:
        k = int(top[i])
        ex = {"index": i, "type": test.types[i], "sentence": test.sentences[i], "gt": test.gt[i].tolist(),
              "segment": pred["segments"][i, k].tolist(), "mask": masks[i, k].tolist()}
        if kind == "gmp":
            ex["components"] = _components(model, pred, i, k, cfg)
        examples.append(ex)
    out["examples"] = examples
    return out


def _example_indices(types: list[str], n: int) -> list[int]:
    """Two-part events first (the interesting ones), then the other types."""
    order = [i for i, t in enumerate(types) if t == "two-part"] + [i for i, t in enumerate(types) if t != "two-part"]
    per = [i for i in order[: max(n - n // 3, 0)]] + [i for i in order if types[i] == "single"][: n // 3]
    return sorted(set(per))[:n]


def _components(model, pred, i, k, cfg) -> list[dict]:
    """Centres, width and importances of mixture k of test video i."""
    b, j = divmod(i, cfg.fit.eval_batch_size)
    ex = pred["extra"][b]
    centres, imp = ex["centres"][k][j], ex["importance"][k][j]
    return [{"centre": float(c), "width": float(ex["widths"][j, k]), "importance": float(a)}
            for c, a in zip(centres, imp)]


def whole_video_control(cfg: GmpConfig, seed: int) -> dict[str, Any]:
    """The negative control: predict [0, 1] for every test query (no model)."""
    world = make_world(cfg.data, seed=seed)
    test = make_split(world, cfg.n_test, seed=1000 * seed + 3)
    gt = torch.as_tensor(test.gt)
    whole = torch.tensor([[0.0, 1.0]]).expand(len(gt), 2)
    hits = recall_table(whole, whole[:, None], gt)
    types = np.asarray(test.types)
    return {"overall": summarise(hits), "types": {t: summarise(hits, types == t) for t in EVENT_TYPES}}


# ------------------------------------------------------------------ decision

def decide(scores: dict[str, dict[str, list[float]]]) -> tuple[Headline, list[dict]]:
    """``scores[arm][event_type]`` = per-seed R@1 IoU 0.5 (paired seeds). Returns the headline
    (both parts, gated by the whole-video control) and the claims list."""
    two = {arm: scores[arm]["two-part"] for arm in scores}
    alts = {a: two[a] for a in ("cpl", "pps1g") if a in two}
    best = strongest(alts)
    test = superiority(two["pps"], alts[best], margin=TWO_PART_MARGIN, min_seeds=MIN_SEEDS,
                       name="two-part R@1 IoU0.5", other_name=f"strongest alternative {ARM_NAMES[best]}")
    controls = [superiority(two[a], two["whole"], margin=TWO_PART_MARGIN, min_seeds=MIN_SEEDS,
                            name=f"two-part R@1 IoU0.5, {ARM_NAMES[a]}", other_name="whole video")
                for a in ("pps", "cpl") if a in two]
    parts = [gate(test, negative_control=controls, plan=TWO_PART_PLAN)]
    claims = [claim("On two-part events PPS's R@1 at IoU 0.5 beats the strongest single-Gaussian alternative "
                    "(CPL or PPS-1G) by more than the margin (negative control: whole video)", parts[0], headline=True)]
    if "cpl" in scores:
        single = noninferiority(scores["pps"]["single"], scores["cpl"]["single"], margin=SINGLE_MARGIN,
                                min_seeds=MIN_SEEDS, name="single-block R@1 IoU0.5", other_name="CPL")
        parts.append(gate(single, negative_control=controls, plan=SINGLE_PLAN))
        claims.append(claim(f"On single-block events PPS is no worse than CPL beyond {SINGLE_MARGIN:g} R@1 IoU0.5",
                            parts[1], headline=True))
    for alt in alts:
        t = superiority(two["pps"], two[alt], margin=TWO_PART_MARGIN, min_seeds=MIN_SEEDS, name="two-part R@1 IoU0.5",
                        other_name=ARM_NAMES[alt])
        what = ("the paper's named baseline" if alt == "cpl"
                else "the same scheme without mixtures: a gain here comes from the mixture")
        claims.append(claim(f"PPS beats {ARM_NAMES[alt]} on two-part events ({what})", t))
    if "ramp" in scores["pps"] and "cpl" in scores:
        t = superiority(scores["pps"]["ramp"], scores["cpl"]["ramp"], margin=TWO_PART_MARGIN, min_seeds=MIN_SEEDS,
                        name="ramp R@1 IoU0.5", other_name="CPL")
        claims.append(claim("PPS beats CPL on ramp events (a smaller gain is expected)", t))
    return every_part(parts), claims


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
    head, claims = decide(scores)
    metrics: dict[str, float] = {}
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
           "decide", "run", "run_one", "whole_video_control"]
