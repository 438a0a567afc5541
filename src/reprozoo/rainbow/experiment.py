"""Experiment ``rainbow-memory``: RM vs ER-reservoir on a Blurry10 online stream.

quick: scikit-learn digits, 5 tasks x 2 classes, Blurry10 (foreign share 10%), online, E=10 memory
epochs, small CNN, K = 20 and 40, 10 seeds. The rule, fixed before any number exists: at the
smallest K, RM (without DA) must beat ER with a reservoir memory in mean final-task accuracy
(A_last) AND win on more than half of the paired seeds (>= 5 seeds needed). Reported beside it:
the same comparison at the larger K, whether the gap shrinks as K grows, RM vs class-balanced
random memory (the stride rule alone), RM with CutMix+AutoAugment, and GDumb / fine-tune / EWC.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch

from reprozoo.errors import ConfigError, UnknownNameError
from reprozoo.rainbow.data import check_available, load_data
from reprozoo.rainbow.scenarios import blurry_split
from reprozoo.rainbow.strategies import CLSettings, ContinualLearner, Normalized, joint_accuracy
from reprozoo.runtime.config import ExperimentConfig
from reprozoo.runtime.progress import track
from reprozoo.runtime.registry import create_model, list_models, register_experiment
from reprozoo.runtime.report import ExperimentResult, save_figure
from reprozoo.runtime.verdict import HELD, INCONCLUSIVE, NOT_HELD, paired_comparison, threshold

# experiment variants: name -> CLSettings overrides
VARIANTS: dict[str, dict[str, Any]] = {
    "rm": {"method": "rm"},
    "er": {"method": "er"},
    "balanced": {"method": "rm", "policy": "balanced"},
    "rm_da": {"method": "rm", "cutmix": True, "aug_policy": "autoaugment"},
    "gdumb": {"method": "gdumb"},
    "finetune": {"method": "finetune"},
    "ewc": {"method": "ewc"},
}
DATASETS = ("digits", "cifar10", "cifar100", "folder")
CLAIM = ("Rainbow Memory (uncertainty-stride, class-balanced memory) beats experience replay with a "
         "reservoir memory in final accuracy on a Blurry10 online stream at a small memory size")
PAPER = "Bang et al., Rainbow Memory: Continual Learning with a Memory of Diverse Samples (CVPR 2021)"


@dataclass
class RainbowConfig(ExperimentConfig):
    dataset: str = "digits"  # digits | cifar10 | cifar100 | folder (ImageFolder at data_root)
    model: str = "rm_cnn_digits"
    image_size: int = 32  # only for dataset=folder
    n_tasks: int = 5
    blur: float = 0.1  # M; 0 = disjoint (Blurry0)
    share: str = "exact"  # exact (foreign share = M) | legacy (M*(T-1)/T, the paper's shipped files)
    memory_sizes: list[int] = field(default_factory=lambda: [20, 40])
    variants: list[str] = field(default_factory=lambda: list(VARIANTS))
    joint_epochs: int = 10
    workers: int = 1  # processes over seeds (CPU)
    cl: CLSettings = field(default_factory=CLSettings)
    seeds: list[int] = field(default_factory=lambda: list(range(10)))
    threads: int = 1  # tiny models: one intra-op thread per process (more threads only add overhead)

    PRESETS: ClassVar[dict] = {
        "smoke": {"seeds": [0], "memory_sizes": [20], "variants": ["rm", "er", "finetune"],
                  "cl": {"epochs": 2}, "joint_epochs": 2},
        "quick": {"seeds": list(range(10)), "workers": 2},
        "paper": {"dataset": "cifar10", "model": "rm_resnet18_cifar", "seeds": [1, 2, 3],
                  "memory_sizes": [200, 500, 1000], "share": "legacy", "joint_epochs": 256,
                  "variants": ["rm", "rm_da", "er", "balanced", "gdumb", "ewc", "finetune"],
                  "threads": 0, "workers": 1,
                  "cl": {"epochs": 256, "schedule": "warm_restarts", "crop_pad": 4, "hflip": True,
                         "perturbation": "randaugment", "score_batch": 1536}},
    }

    def validate(self) -> None:
        unknown = [v for v in self.variants if v not in VARIANTS]
        if unknown:
            raise UnknownNameError(f"unknown variant {unknown}; choose from: {', '.join(VARIANTS)}")
        if "rm" not in self.variants or "er" not in self.variants:
            raise ConfigError("variants must include 'rm' and 'er' (the claim compares them)")
        if not self.memory_sizes or min(self.memory_sizes) < 1:
            raise ConfigError("memory_sizes needs at least one positive K, e.g. memory_sizes=[20,40]")
        if self.workers < 1:
            raise ConfigError(f"workers must be >= 1, got {self.workers}")
        if self.share not in ("exact", "legacy"):
            raise ConfigError(f"share must be exact or legacy, got '{self.share}'")
        if not 0 <= self.blur < 1:
            raise ConfigError(f"blur must be in [0, 1), got {self.blur}")
        self.cl.validate()
        if self.dataset not in DATASETS:
            raise UnknownNameError(f"unknown dataset '{self.dataset}'; choose one of: {', '.join(DATASETS)}")
        if self.model not in list_models("rm_*"):
            raise UnknownNameError(f"unknown model '{self.model}'; choose one of: {', '.join(list_models('rm_*'))}")
        check_available(self.dataset, self.data_root)
        if self.dataset == "digits":
            small = [k for k in self.memory_sizes if k < 10]
            if small:
                raise ConfigError(f"memory size K={small[0]} is smaller than the number of classes (10); "
                                  "use K >= 10")


def _settings(cfg: RainbowConfig, variant: str, k: int) -> CLSettings:
    base = dict(cfg.cl.__dict__)
    base.update(VARIANTS[variant])
    base["memory_size"] = k
    return CLSettings(**base)


def run_seed(cfg_dict: dict, seed: int) -> dict:
    """All variants x memory sizes (+ the joint upper bound) for one seed; plain-data result."""
    cfg = RainbowConfig()
    from reprozoo.runtime.config import set_field

    for key, value in cfg_dict.items():
        if not key.startswith("_"):
            set_field(cfg, key, value)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    from reprozoo.runtime.accel import make_accelerator

    device = make_accelerator(cfg.device).device if cfg.device != "cpu" else torch.device("cpu")
    data = load_data(cfg.dataset, cfg.data_root, seed, cfg.image_size)
    scen = blurry_split(data.y_train, cfg.n_tasks, cfg.blur, seed, share=cfg.share)
    y_test = scen.relabel(data.y_test)

    # MLPs flatten the image: their input width is C*H*W of this dataset (rm_mlp400 defaults to MNIST's 2352)
    shape_kw = {"in_features": int(np.prod(data.x_train.shape[1:]))} if cfg.model.startswith("rm_mlp") \
        else {"in_chans": data.in_chans}

    def model_fn():
        return Normalized(create_model(cfg.model, num_classes=scen.num_classes, **shape_kw), data.mean, data.std)

    joint = joint_accuracy(model_fn, data.x_train, scen.labels, data.x_test, y_test, cfg.cl,
                           epochs=cfg.joint_epochs, device=device, seed=seed)
    out: dict[str, Any] = {"seed": seed, "joint": joint, "runs": {},
                           "foreign_share": [scen.foreign_share(t) for t in range(scen.n_tasks)]}
    cache: dict[str, Any] = {}
    for k in cfg.memory_sizes:
        for v in cfg.variants:
            if v == "finetune" and "finetune" in cache:  # no memory: independent of K
                out["runs"][f"{v}/K{k}"] = cache["finetune"]
                continue
            res = ContinualLearner(model_fn, _settings(cfg, v, k), device, seed).fit(
                scen, data.x_train, data.x_test, y_test)
            row = {"task_acc": res.task_acc, **res.summary(joint),
                   "memory_hist": np.bincount(res.memory_labels[-1], minlength=scen.num_classes).tolist()}
            sel = res.selections[-1]
            if v == "rm" and sel is not None and sel.get("uncertainty") is not None:
                chosen = sel["chosen"]
                row["kept"] = {"keys": sel["keys"][chosen].tolist(), "labels": sel["labels"][chosen].tolist(),
                               "u": np.asarray(sel["uncertainty"])[chosen].tolist(),
                               "u_all_mean": float(np.mean(sel["uncertainty"]))}
            out["runs"][f"{v}/K{k}"] = row
            if v == "finetune":
                cache["finetune"] = row
    return out


def _collect(cfg: RainbowConfig, ctx) -> list[dict]:
    seeds_dir = ctx.subdir("seeds")
    todo, done = [], {}
    for s in cfg.seeds:
        path = seeds_dir / f"seed{s}.json"
        if ctx.resume and path.exists():
            done[s] = json.loads(path.read_text())
        else:
            todo.append(s)
    cfg_dict = {k: v for k, v in cfg.to_dict().items() if k != "seeds"}
    if cfg.workers > 1 and len(todo) > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(min(cfg.workers, len(todo)), mp_context=mp.get_context("spawn")) as pool:
            futures = {s: pool.submit(run_seed, cfg_dict, s) for s in todo}
            for s in track(todo, "rainbow seeds", enabled=ctx.progress):
                done[s] = futures[s].result()
                (seeds_dir / f"seed{s}.json").write_text(json.dumps(done[s]))
    else:
        for s in track(todo, "rainbow seeds", enabled=ctx.progress):
            done[s] = run_seed(cfg_dict, s)
            (seeds_dir / f"seed{s}.json").write_text(json.dumps(done[s]))
    return [done[s] for s in cfg.seeds]


def _vals(results: list[dict], key: str, metric: str = "A_last") -> np.ndarray:
    return np.asarray([100.0 * r["runs"][key][metric] for r in results])


@register_experiment("rainbow-memory", paper=PAPER, claim=CLAIM, config=RainbowConfig)
def run(cfg: RainbowConfig, ctx) -> ExperimentResult:
    results = _collect(cfg, ctx)
    ks = sorted(cfg.memory_sizes)
    k0 = ks[0]
    # ---- the rule (fixed in advance): smallest K, RM vs ER-reservoir, mean and most paired seeds
    verdict, evidence = paired_comparison(_vals(results, f"rm/K{k0}"), _vals(results, f"er/K{k0}"),
                                          min_win_fraction=0.5, min_seeds=5, name=f"A_last (%) at K={k0}")
    claims = [{"claim": f"RM beats ER-reservoir at K={k0} (A_last)", "verdict": verdict, "evidence": evidence}]
    for k in ks[1:]:
        v, e = paired_comparison(_vals(results, f"rm/K{k}"), _vals(results, f"er/K{k}"), min_win_fraction=0.5,
                                 min_seeds=5, name=f"A_last (%) at K={k}")
        claims.append({"claim": f"RM beats ER-reservoir at K={k} (A_last)", "verdict": v, "evidence": e})
    gaps = {k: float(np.mean(_vals(results, f"rm/K{k}") - _vals(results, f"er/K{k}"))) for k in ks}
    if len(ks) > 1:
        v, e = threshold(gaps[k0] - gaps[ks[-1]], at_least=1e-9, name=f"gap(K={k0}) - gap(K={ks[-1]}) (points)")
        v = v if len(results) >= 5 else INCONCLUSIVE
        claims.append({"claim": "the RM - ER gap shrinks as K grows", "verdict": v,
                       "evidence": e + "; gaps " + ", ".join(f"K={k}: {g:+.2f}" for k, g in gaps.items())})
    for other, text in (("balanced", "RM's uncertainty stride beats class-balanced random memory"),
                        ("rm_da", "CutMix + AutoAugment improve RM")):
        if other in cfg.variants:
            a, b = (_vals(results, f"rm_da/K{k0}"), _vals(results, f"rm/K{k0}")) if other == "rm_da" else \
                (_vals(results, f"rm/K{k0}"), _vals(results, f"balanced/K{k0}"))
            v, e = paired_comparison(a, b, min_win_fraction=0.5, min_seeds=5, name=f"A_last (%) at K={k0}")
            claims.append({"claim": f"{text} (K={k0})", "verdict": v, "evidence": e})

    metrics: dict[str, float] = {}
    table = []
    for k in ks:
        for var in cfg.variants:
            group = {"rm": "method", "er": "baseline"}.get(var, var)
            row: dict[str, Any] = {"variant": var, "K": k}
            for m in ("A_last", "A_avg", "F_last", "I_last"):
                vals = _vals(results, f"{var}/K{k}", m)
                metrics[f"{group}/{m}_K{k}"] = float(vals.mean())
                row[m] = f"{vals.mean():.2f} ± {vals.std():.2f}"
            table.append(row)
    metrics["joint/acc"] = float(np.mean([100 * r["joint"] for r in results]))
    metrics["scenario/foreign_share"] = float(np.mean([np.mean(r["foreign_share"]) for r in results]))
    _figures(cfg, results, ks, ctx)
    notes = ("A_last/A_avg/F_last/I_last in %, mean ± std over seeds, from the final epoch of each task "
             "(no test-set model selection). I_last = joint accuracy - A_last. 'method' = RM without "
             "augmentation, 'baseline' = ER with a reservoir memory; both use the same online flow "
             "(one stream pass at 0.1 x lr mixed with memory, then E epochs on memory, head and "
             f"optimiser reset per task). Blur M={cfg.blur} ({cfg.share} share), {cfg.n_tasks} tasks, "
             f"dataset {cfg.dataset}, model {cfg.model}.")
    return ExperimentResult(verdict, evidence, metrics, claims=claims, table=table, notes=notes)


def _figures(cfg: RainbowConfig, results: list[dict], ks: list[int], ctx) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # 1. accuracy after each task, per method, one panel per K
    fig, axes = plt.subplots(1, len(ks), figsize=(5 * len(ks), 3.6), squeeze=False)
    for ax, k in zip(axes[0], ks):
        for var in cfg.variants:
            acc = np.asarray([r["runs"][f"{var}/K{k}"]["task_acc"] for r in results]) * 100
            t = np.arange(1, acc.shape[1] + 1)
            ax.plot(t, acc.mean(0), marker="o", label=var)
            ax.fill_between(t, acc.mean(0) - acc.std(0), acc.mean(0) + acc.std(0), alpha=0.15)
        ax.set(title=f"K={k}", xlabel="after task", ylabel="test accuracy (%)", xticks=t)
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=7)
    save_figure(fig, ctx.out_dir, "accuracy_per_task")
    # 2. memory class histogram at the end (smallest K), RM vs ER
    k0 = ks[0]
    fig, ax = plt.subplots(figsize=(6, 3.2))
    width = 0.4
    for i, var in enumerate(("rm", "er")):
        h = np.mean([r["runs"][f"{var}/K{k0}"]["memory_hist"] for r in results], axis=0)
        ax.bar(np.arange(len(h)) + (i - 0.5) * width, h, width, label=var)
    ax.set(title=f"final memory, samples per class (K={k0}, mean over seeds)", xlabel="class (task order)",
           ylabel="samples")
    ax.legend()
    save_figure(fig, ctx.out_dir, "memory_class_histogram")
    # 3. certain-to-uncertain samples RM keeps (first seed, largest K)
    kept = results[0]["runs"].get(f"rm/K{ks[-1]}", {}).get("kept")
    if kept and cfg.dataset == "digits":
        data = load_data(cfg.dataset, cfg.data_root, results[0]["seed"], cfg.image_size)
        labels, keys, u = np.asarray(kept["labels"]), np.asarray(kept["keys"]), np.asarray(kept["u"])
        classes = np.unique(labels)
        per = max(int(np.sum(labels == c)) for c in classes)
        fig, axes = plt.subplots(len(classes), per, figsize=(1.1 * per, 1.15 * len(classes)), squeeze=False)
        for row, c in zip(axes, classes):
            idx = np.flatnonzero(labels == c)
            idx = idx[np.argsort(u[idx], kind="stable")]
            for j, ax in enumerate(row):
                ax.axis("off")
                if j < len(idx):
                    img = data.x_train[keys[idx[j]]].float()
                    ax.imshow(img.permute(1, 2, 0).squeeze(-1).numpy(), cmap="gray_r")
                    ax.set_title(f"c{c} u={u[idx[j]]:.2f}", fontsize=6)
        fig.suptitle(f"RM memory (K={ks[-1]}, seed {results[0]['seed']}): certain -> uncertain", fontsize=8)
        save_figure(fig, ctx.out_dir, "rm_kept_samples")
    # 4. RM - ER gap per K
    fig, ax = plt.subplots(figsize=(4, 3))
    gaps = [_vals(results, f"rm/K{k}") - _vals(results, f"er/K{k}") for k in ks]
    ax.boxplot(gaps, positions=range(len(ks)))
    ax.set_xticks(range(len(ks)), [f"K={k}" for k in ks])
    ax.axhline(0, color="k", lw=0.8)
    ax.set(ylabel="A_last RM - ER (points)", title="paired gap per seed")
    save_figure(fig, ctx.out_dir, "rm_minus_er_gap")


__all__ = ["RainbowConfig", "run", "run_seed", "VARIANTS", "HELD", "NOT_HELD"]
