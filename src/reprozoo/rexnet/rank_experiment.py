"""Experiment ``rexnet-rank``: the paper's random-network rank study on CPU, with one verdict per
claim decided by the rules below (fixed before the numbers of a run exist)."""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import ClassVar

import numpy as np

from reprozoo.errors import ConfigError
from reprozoo.rexnet.blocks import ACTIVATIONS
from reprozoo.rexnet.rank import KINDS, RankRecord, cell_means, rank_sweep
from reprozoo.runtime.config import ExperimentConfig
from reprozoo.runtime.figures import save_figure
from reprozoo.runtime.report import ExperimentResult
from reprozoo.runtime.trials import Trial
from reprozoo.runtime.verdict import HELD, INCONCLUSIVE, NOT_HELD, claim, combine, superiority

ALL_ACTS = ["identity", "relu", "relu6", "leaky_relu", "elu", "silu", "gelu", "hardswish", "softplus"]
VARIANTS = {"relative": "relative, uncentred", "relative_centred": "relative, centred"}

PAPER = "Han et al., Rethinking Channel Dimensions for Efficient Model Design (ReXNet), CVPR 2021"
CLAIM = ("A linear layer's output rank is capped by its input width (rank ratio = d_in/d_out), drastic "
         "expansion lowers the rank ratio, an elementwise nonlinearity after an expansion layer lifts it "
         "(notably SiLU/ELU over ReLU6), and an inverted bottleneck with t=6 only collapses below DR ~ 1/7.")

# rule parameters, fixed in code before any run
EXACT_FRACTION = 0.95  # share of draws that must satisfy an exact (numerical-rank) statement
TREND_MARGIN = 0.05  # rank-ratio rise from the lowest to the highest DR that counts as "lowered"
TREND_SHARE = 1.0  # share of nonlinearities that must show the trend: the claim is about all of them
IB_TOLERANCE = 0.02  # |ratio - min((t+1) d_in, d_out) / d_out|
LOW_DR = 0.5  # "low-to-mid DR" cells for the SiLU/ELU vs ReLU6 comparison
ORDER_MARGIN = 0.0  # "a higher rank ratio": the paired mean gain over ReLU6 must be > 0 (one-sided 95% bound)


@dataclass
class RankConfig(ExperimentConfig):
    kinds: list[str] = field(default_factory=lambda: ["conv1x1", "conv3x3", "ib_dw"])
    acts: list[str] = field(default_factory=lambda: list(ALL_ACTS))
    ratios: list[float] = field(default_factory=lambda: [round(0.1 * i, 1) for i in range(1, 11)])
    draws: int = 5  # random networks per (kind, act, ratio) cell and seed
    d_out_min: int = 128
    d_out_max: int = 256
    rows: int = 1024  # samples (or spatial positions) per feature matrix; > d_out_max
    expansion: int = 6  # t of the inverted bottlenecks
    threshold: float = 0.1  # relative criterion: singular values above threshold * S_max
    per_block: bool = True  # exploratory: per-block rank of untrained ReXNet-1.0 vs a stage-wise schedule
    per_block_batch: int = 16
    per_block_size: int = 224  # 16 x 7 x 7 = 784 rows at the last stage, ~2x the widest block (379)

    PRESETS: ClassVar[dict] = {
        "smoke": {"kinds": ["conv1x1", "ib_dw"], "acts": ["identity", "relu6", "elu", "silu"],
                  "ratios": [0.1, 0.5, 1.0], "draws": 2, "d_out_min": 32, "d_out_max": 48, "rows": 256,
                  "per_block_batch": 2, "per_block_size": 64},
        # the defaults: d_out ~ U[128, 256], 1024 rows, 5 draws -> 1350 networks; one thread (~46 CPU-s)
        "quick": {"threads": 1},
        # the paper's scale: ~10k random networks (4 kinds x 9 acts x 10 DRs x 30 draws)
        "paper": {"kinds": list(KINDS), "draws": 30},
    }

    def validate(self) -> None:
        bad = [k for k in self.kinds if k not in KINDS]
        if bad or not self.kinds:
            raise ConfigError(f"kinds must be a non-empty subset of {list(KINDS)}, got {self.kinds}")
        bad = [a for a in self.acts if a not in ACTIVATIONS]
        if bad or not self.acts:
            raise ConfigError(f"acts must be a non-empty subset of {list(ACTIVATIONS)}, got {self.acts}")
        if not self.ratios or any(not 0 < r <= 1 for r in self.ratios):
            raise ConfigError(f"ratios must be dimension ratios in (0, 1], got {self.ratios}")
        if self.draws < 1:
            raise ConfigError(f"draws must be >= 1, got {self.draws}")
        if not 1 <= self.d_out_min <= self.d_out_max < self.rows:
            raise ConfigError("need 1 <= d_out_min <= d_out_max < rows so the rank is not capped by rows; "
                              f"got {self.d_out_min}, {self.d_out_max}, {self.rows}")
        if not 0 < self.threshold < 1:
            raise ConfigError(f"threshold must be in (0, 1), got {self.threshold}")
        if self.expansion < 1:
            raise ConfigError(f"expansion must be >= 1, got {self.expansion}")
        if self.per_block and (self.per_block_batch < 1 or self.per_block_size < 32):
            raise ConfigError("per_block needs per_block_batch >= 1 and per_block_size >= 32 (five stride-2 "
                              f"stages), got {self.per_block_batch} and {self.per_block_size}")


# ---------------------------------------------------------------- claim rules
def _share(flags: Sequence[bool]) -> float:
    return float(np.mean(flags)) if len(flags) else float("nan")


def claim_linear_cap(records: list[RankRecord]) -> dict:
    rec = [r for r in records if r.kind == "conv1x1" and r.act == "identity"]
    text = "A linear 1x1 layer's output rank equals its input width d_in (capped by d_in/d_out)."
    if not rec:
        return {"claim": text, "verdict": INCONCLUSIVE, "evidence": "no conv1x1/identity cells in this run"}
    exact = [round(r.numerical * r.d_out) == r.d_in for r in rec]
    dev = max(abs(r.numerical - r.actual_ratio) for r in rec)
    share = _share(exact)
    verdict = HELD if share >= EXACT_FRACTION else NOT_HELD
    return {"claim": text, "verdict": verdict,
            "evidence": f"numerical rank == d_in in {sum(exact)}/{len(exact)} linear draws "
                        f"(required >= {EXACT_FRACTION:.0%}); max |ratio - d_in/d_out| = {dev:.3g}"}


def claim_nonlinearity_lifts(records: list[RankRecord], acts: list[str]) -> dict:
    text = ("An elementwise nonlinearity after a 1x1 expansion layer lifts the output rank above the "
            "linear cap d_in (numerical rank).")
    nonlin = [a for a in acts if a != "identity"]
    rec = [r for r in records if r.kind == "conv1x1" and r.act in nonlin and r.d_in < r.d_out]
    if not rec:
        return {"claim": text, "verdict": INCONCLUSIVE, "evidence": "no nonlinear conv1x1 cells with d_in < d_out"}
    per_act = {a: _share([r.numerical * r.d_out > r.d_in for r in rec if r.act == a]) for a in nonlin}
    worst = min(per_act, key=per_act.get)
    verdict = HELD if min(per_act.values()) >= EXACT_FRACTION else NOT_HELD
    means = cell_means(records, "relative")
    lo = min(r.ratio for r in rec)
    rel = ", ".join(f"{a} {means[('conv1x1', a, lo)]:.2f}" for a in ["identity"] + nonlin
                    if ("conv1x1", a, lo) in means)
    return {"claim": text, "verdict": verdict,
            "evidence": f"rank > d_in in >= {per_act[worst]:.0%} of draws for every nonlinearity (lowest: {worst}; "
                        f"required >= {EXACT_FRACTION:.0%}); relative-criterion ratio at DR {lo}: {rel}"}


def _variant_trend(records: list[RankRecord], field_name: str, acts: list[str]) -> tuple[bool | None, str]:
    means = cell_means(records, field_name)
    ratios = sorted({r.ratio for r in records if r.kind == "conv1x1"})
    nonlin = [a for a in acts if a != "identity"]
    if len(ratios) < 2 or not nonlin:
        return None, "needs conv1x1 cells at >= 2 ratios"
    lo, hi = ratios[0], ratios[-1]
    rises = {a: means[("conv1x1", a, hi)] - means[("conv1x1", a, lo)] for a in nonlin}
    share = _share([v > TREND_MARGIN for v in rises.values()])
    exceptions = [a for a, v in rises.items() if v <= TREND_MARGIN]
    ok = share >= TREND_SHARE
    return ok, (f"{VARIANTS[field_name]}: ratio rises DR {lo}->{hi} by > {TREND_MARGIN} for {share:.0%} of "
                f"nonlinearities (need {TREND_SHARE:.0%})" + (f", not for {'/'.join(exceptions)}" if exceptions else ""))


def _by_variants(results: list[tuple[bool | None, str]]) -> str:
    flags = [r[0] for r in results]
    if any(f is None for f in flags):
        return INCONCLUSIVE
    if all(flags):
        return HELD
    if not any(flags):
        return NOT_HELD
    return INCONCLUSIVE  # the two rank criteria disagree: criterion-dependent


def claim_expansion_lowers(records: list[RankRecord], acts: list[str]) -> dict:
    text = ("Drastic expansion (low DR = d_in/d_out) lowers the rank ratio of a nonlinear 1x1 layer "
            "(relative criterion; held only if it holds with and without centring).")
    parts = [_variant_trend(records, v, acts) for v in VARIANTS]
    ib = [r for r in records if r.kind.startswith("ib")]
    extra = ""
    if ib:
        m = cell_means(ib, "numerical")
        lo, hi = min(r.ratio for r in ib), max(r.ratio for r in ib)
        extra = (f"; inverted bottleneck numerical ratio DR {lo}: "
                 f"{np.mean([v for (k, a, r), v in m.items() if r == lo]):.2f} vs DR {hi}: "
                 f"{np.mean([v for (k, a, r), v in m.items() if r == hi]):.2f}")
    return {"claim": text, "verdict": _by_variants(parts), "evidence": "; ".join(p[1] for p in parts) + extra}


def claim_ib_cap(records: list[RankRecord], expansion: int) -> dict:
    text = (f"An inverted bottleneck with t={expansion} and a linear projection has rank ratio "
            f"min((t+1) d_in, d_out) / d_out: it collapses only when DR < 1/{expansion + 1}.")
    rec = [r for r in records if r.kind.startswith("ib")]
    if not rec:
        return {"claim": text, "verdict": INCONCLUSIVE, "evidence": "no inverted-bottleneck cells in this run"}
    ok = [abs(r.numerical - min((expansion + 1) * r.d_in, r.d_out) / r.d_out) <= IB_TOLERANCE for r in rec]
    lo = min(r.ratio for r in rec)
    mean_lo = np.mean([r.numerical for r in rec if r.ratio == lo])
    above = [r.numerical for r in rec if r.ratio >= 1.0 / expansion]
    verdict = HELD if _share(ok) >= EXACT_FRACTION else NOT_HELD
    return {"claim": text, "verdict": verdict,
            "evidence": f"{sum(ok)}/{len(ok)} IB draws within {IB_TOLERANCE} of the cap (need {EXACT_FRACTION:.0%}); "
                        f"mean numerical ratio {mean_lo:.3f} at DR {lo}, "
                        f"min {min(above) if above else float('nan'):.3f} at DR >= 1/{expansion}"}


def _variant_ordering(records: list[RankRecord], field_name: str) -> tuple[bool | None, str]:
    """SiLU and ELU vs ReLU6 under one criterion: a superiority test of the paired rank ratios (same
    ratio, draw and seed, hence the same shapes and inputs) at DR <= LOW_DR, margin ``ORDER_MARGIN``.
    True when both are held, False when both are not held, None otherwise."""
    cells = [r for r in records if r.kind == "conv1x1" and r.ratio <= LOW_DR]
    # records come seed by seed, so the k-th record of a (ratio, draw) cell is seed k's for every act
    base: dict[tuple[float, int], list[float]] = defaultdict(list)
    for r in cells:
        if r.act == "relu6":
            base[(r.ratio, r.draw)].append(getattr(r, field_name))
    parts, verdicts = [], []
    for act in ("silu", "elu"):
        mine: dict[tuple[float, int], list[float]] = defaultdict(list)
        for r in cells:
            if r.act == act and (r.ratio, r.draw) in base:
                mine[(r.ratio, r.draw)].append(getattr(r, field_name))
        pairs = [(m, b) for key, ms in mine.items() for m, b in zip(ms, base[key])]
        if not pairs:
            return None, f"{VARIANTS[field_name]}: needs relu6, silu and elu conv1x1 cells at DR <= {LOW_DR}"
        m, b = np.array(pairs).T
        test = superiority(m, b, margin=ORDER_MARGIN, name=f"{act} vs relu6 rank ratio", other_name="relu6")
        verdicts.append(test.verdict)
        parts.append(f"{act}: {test.evidence} -> {test.verdict}")
    verdict = combine(verdicts)
    flag = True if verdict == HELD else False if verdict == NOT_HELD else None
    return flag, f"{VARIANTS[field_name]}: " + "; ".join(parts)


def claim_silu_beats_relu6(records: list[RankRecord]) -> dict:
    text = (f"SiLU and ELU after a 1x1 expansion layer give a higher rank ratio than ReLU6 at DR <= {LOW_DR} "
            "(relative criterion, paired draws, one-sided 95% t-interval of the mean gain above 0; held only "
            "if it holds with and without centring, inconclusive if the criteria disagree).")
    parts = [_variant_ordering(records, v) for v in VARIANTS]
    return {"claim": text, "verdict": _by_variants(parts), "evidence": "; ".join(p[1] for p in parts)}


# ---------------------------------------------------------------- exploratory: per-block rank
def per_block_ranks(cfg: RankConfig, seed: int) -> dict:
    """Rank ratio of every block output of untrained ReXNet-1.0 and of the equal-MAC stage-wise model
    (same blocks, SiLU/SE/shortcuts, only the widths differ) on N(0,1) inputs, BN in training mode."""
    import torch

    from reprozoo.rexnet.models import ReXNet
    from reprozoo.rexnet.rank import feature_rank
    from reprozoo.rexnet.schedule import rexnet_schedule, schedule_macs, stagewise_channels

    target = schedule_macs(rexnet_schedule(1.0))
    chans, macs = stagewise_channels(target)
    out = {"rexnet_macs": target, "stagewise_macs": macs, "stagewise_channels": chans}
    torch.manual_seed(seed)
    x = torch.randn(cfg.per_block_batch, 3, cfg.per_block_size, cfg.per_block_size)
    for name, model in (("rexnet", ReXNet(num_classes=0)), ("stagewise", ReXNet(num_classes=0, block_channels=chans))):
        model.train()
        with torch.no_grad():
            out[name] = list(feature_rank(model, x, criterion="relative", threshold=cfg.threshold).values())
            out[name + "_channels"] = model.schedule.out_channels
    return out


# ---------------------------------------------------------------- figures and tables
def _figure(records: list[RankRecord], field_name: str, cfg: RankConfig, title: str):
    from reprozoo.runtime.figures import pyplot

    plt = pyplot()
    means = cell_means(records, field_name)
    fig, axes = plt.subplots(1, len(cfg.kinds), figsize=(4.2 * len(cfg.kinds), 3.8), squeeze=False, sharey=True)
    ratios = sorted(set(cfg.ratios))
    for ax, kind in zip(axes[0], cfg.kinds):
        for act in cfg.acts:
            ax.plot(ratios, [means[(kind, act, r)] for r in ratios], marker="o", ms=3, label=act,
                    ls="--" if act == "identity" else "-")
        ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls=":", label="d_in/d_out")
        ax.set_title(kind)
        ax.set_xlabel("dimension ratio d_in / d_out")
        ax.set_ylim(0, 1.05)
    axes[0][0].set_ylabel("rank(Y) / d_out")
    axes[0][-1].legend(fontsize=7, loc="lower right")
    fig.suptitle(f"{title} ({cfg.draws} draws/cell/seed, d_out~U[{cfg.d_out_min},{cfg.d_out_max}], rows={cfg.rows})",
                 fontsize=9)
    fig.tight_layout()
    return fig


def run_one(trial: Trial, tctx) -> list[dict]:
    """One seed's sweep over every (kind, nonlinearity, DR) cell, as plain records."""
    cfg: RankConfig = tctx.config
    records = rank_sweep(cfg.kinds, cfg.acts, cfg.ratios, cfg.draws, (cfg.d_out_min, cfg.d_out_max), cfg.rows,
                         cfg.expansion, cfg.threshold, seed=trial.seed)
    return [asdict(r) for r in records]


def run_rank(cfg: RankConfig, ctx) -> ExperimentResult:
    results = ctx.run_trials(run_one, [Trial("sweep", s) for s in cfg.seeds], description="rank sweeps (one per seed)")
    records = [RankRecord(**r) for per_seed in results for r in per_seed]
    with open(ctx.out_dir / "rank_records.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(asdict(records[0])) + ["seed_index"])
        writer.writeheader()
        per_seed = len(records) // len(cfg.seeds)
        for i, r in enumerate(records):
            writer.writerow({**asdict(r), "seed_index": i // per_seed})

    claims = [claim_linear_cap(records), claim_nonlinearity_lifts(records, cfg.acts),
              claim_expansion_lowers(records, cfg.acts), claim_ib_cap(records, cfg.expansion),
              claim_silu_beats_relu6(records)]
    # every one is a claim of the paper's rank study, and the experiment's verdict combines all five
    claims = [claim(c["claim"], c["verdict"], c["evidence"], headline=True) for c in claims]
    verdict = combine([c["verdict"] for c in claims])
    labels = ("linear cap", "nonlinearity lifts rank", "expansion lowers rank", "IB cap", "SiLU/ELU > ReLU6")
    evidence = "; ".join(f"{label}: {c['verdict']}" for label, c in zip(labels, claims))
    evidence += f" (SiLU/ELU vs ReLU6 - {claims[-1]['evidence']})"

    crit = {"numerical": "numerical rank (s > S_max * max(M, N) * eps_float32)",
            "relative": f"relative rank (s > {cfg.threshold} * S_max), uncentred",
            "relative_centred": f"relative rank (s > {cfg.threshold} * S_max), centred"}
    figures = []
    for key, title in crit.items():
        figures.append(save_figure(_figure(records, key, cfg, title), ctx.out_dir, f"rank_ratio_{key}"))

    notes_extra = ""
    if cfg.per_block:
        from reprozoo.runtime.figures import pyplot

        plt = pyplot()
        pb = per_block_ranks(cfg, cfg.seeds[0])
        fig, ax = plt.subplots(figsize=(6, 3.6))
        for name in ("rexnet", "stagewise"):
            ax.plot(range(len(pb[name])), pb[name], marker="o", label=f"{name} ({pb[name + '_macs'] / 1e6:.0f}M MACs)")
        ax.set_xlabel("block index")
        ax.set_ylabel(f"rank ratio (s > {cfg.threshold} S_max)")
        ax.set_ylim(0, 1.05)
        ax.legend()
        ax.set_title("exploratory: untrained nets, random inputs", fontsize=9)
        figures.append(save_figure(fig, ctx.out_dir, "per_block_rank"))
        low = {n: min(pb[n]) for n in ("rexnet", "stagewise")}
        notes_extra = (f" Exploratory (no verdict): per-block rank ratio of untrained ReXNet-1.0 vs an equal-MAC "
                       f"stage-wise schedule {pb['stagewise_channels']}: mean {np.mean(pb['rexnet']):.3f} vs "
                       f"{np.mean(pb['stagewise']):.3f}, lowest block {low['rexnet']:.3f} vs {low['stagewise']:.3f} "
                       f"({cfg.per_block_batch}x{cfg.per_block_size}px random inputs).")

    metrics: dict[str, float] = {}
    if cfg.per_block:
        metrics["explore/rexnet_mean_block_rank"] = float(np.mean(pb["rexnet"]))
        metrics["explore/stagewise_mean_block_rank"] = float(np.mean(pb["stagewise"]))
        metrics["explore/rexnet_min_block_rank"] = float(low["rexnet"])
        metrics["explore/stagewise_min_block_rank"] = float(low["stagewise"])
    low = [r for r in cfg.ratios if r <= LOW_DR] or list(cfg.ratios)
    for key, group in (("numerical", "numerical"), ("relative", "relative"), ("relative_centred", "centred")):
        means = cell_means(records, key)
        for kind in cfg.kinds:
            for act in cfg.acts:
                metrics[f"{group}/{kind}_{act}_low_dr"] = float(np.mean([means[(kind, act, r)] for r in low]))
    rel = cell_means(records, "relative")
    if "conv1x1" in cfg.kinds and {"silu", "relu6"} <= set(cfg.acts):
        metrics["method/silu_conv1x1_low_dr"] = float(np.mean([rel[("conv1x1", "silu", r)] for r in low]))
        metrics["baseline/relu6_conv1x1_low_dr"] = float(np.mean([rel[("conv1x1", "relu6", r)] for r in low]))
    table = []
    for kind in cfg.kinds:
        for act in cfg.acts:
            row = {"kind": kind, "act": act}
            row.update({f"DR {r:g}": round(rel[(kind, act, r)], 3) for r in sorted(cfg.ratios)})
            table.append(row)
    notes = (f"{len(records)} random networks. Table: mean rank ratio under the relative criterion "
             f"(threshold {cfg.threshold}, uncentred). Inputs X ~ N(0,1), He-normal weights, BN in training "
             "mode over the rows; 3x3 kinds use 8x8 maps and count every spatial position as a row, so a "
             "linear 3x3 conv is capped by 9*d_in, not d_in. Exact numerical rank makes every nonlinear single "
             "layer full-rank, so orderings between nonlinearities are read from the relative criterion, "
             "reported with and without centring. Per-network numbers: rank_records.csv." + notes_extra)
    return ExperimentResult(verdict, evidence, metrics, claims=claims, table=table, figures=figures, notes=notes)
