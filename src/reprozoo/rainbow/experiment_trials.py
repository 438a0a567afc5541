"""Trials of experiment ``rainbow-memory``: the arms, the trial list, one trial's run, and the results
indexed by (arm, backbone, blur, K).

One trial = (arm, backbone, blur, K) for one seed, or for a group of seeds (``seed_batch > 1``):
the seeds of a group train as one batched model (:mod:`reprozoo.rainbow.batched`) when the arm
allows it (no augmentation, no EWC, a model without batch norm), else one after the other; either
way the trial returns one row per seed, and every seed gives the numbers it gives alone.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from reprozoo.rainbow.data import load_data
from reprozoo.rainbow.experiment_rule import CONTROL, METHOD
from reprozoo.rainbow.scenarios import blurry_split
from reprozoo.rainbow.strategies import CLSettings, ContinualLearner, Normalized, joint_accuracy
from reprozoo.runtime.registry import create_model
from reprozoo.runtime.trials import Trial, TrialContext

# experiment arms: name -> CLSettings overrides
VARIANTS: dict[str, dict[str, Any]] = {
    "rm": {"method": "rm"},
    "er": {"method": "er"},
    "balanced": {"method": "rm", "policy": "balanced"},
    "rm_da": {"method": "rm", "cutmix": True, "aug_policy": "autoaugment"},
    "gdumb": {"method": "gdumb"},
    "finetune": {"method": "finetune"},
    "ewc": {"method": "ewc"},
}
LABELS = {"rm": "RM (no DA)", "er": "ER reservoir", "balanced": "class-balanced random",
          "rm_da": "RM + CutMix + AutoAugment", "gdumb": "GDumb", "finetune": "fine-tune (no memory)",
          "ewc": "EWC (reservoir)"}


def settings_for(cfg, variant: str, k: int) -> CLSettings:
    base = dict(cfg.cl.__dict__)
    base.update(VARIANTS[variant])
    base["memory_size"] = k
    return CLSettings(**base)


def seed_groups(seeds: Sequence[int], size: int) -> list[tuple[int, ...]]:
    size = max(1, int(size))
    return [tuple(seeds[i:i + size]) for i in range(0, len(seeds), size)]


def _trials(arm: str, groups: list[tuple[int, ...]], **settings) -> list[Trial]:
    return [Trial(arm, g[0], **settings) if len(g) == 1 else Trial(arm, g[0], seeds=g, **settings) for g in groups]


def build_trials(cfg) -> list[Trial]:
    """Joint upper bounds first (the longest trials), then every (arm, backbone, blur, K) over seeds.
    ``variants`` run at every K of the main blur and at the headline K of each extra blur;
    ``context_variants`` at the headline K of the main blur; fine-tuning has no memory (no K)."""
    kh = cfg.headline_k
    groups = seed_groups(cfg.seeds, cfg.seed_batch)
    trials = [t for b in cfg.backbones for t in _trials("joint", groups, backbone=b)]
    for b in cfg.backbones:
        for blur in [cfg.blur, *cfg.extra_blurs]:
            arms = cfg.variants + (cfg.context_variants if blur == cfg.blur else [])
            for arm in arms:
                if arm == CONTROL:
                    ks: list[int | None] = [None]
                elif blur == cfg.blur and arm in cfg.variants:
                    ks = sorted(cfg.memory_sizes)
                else:
                    ks = [kh]
                for k in ks:
                    extra = {} if k is None else {"k": k}
                    trials += _trials(arm, groups, backbone=b, blur=float(blur), **extra)
    return trials


@functools.lru_cache(maxsize=64)
def data_for(dataset: str, root: str, seed: int, image_size: int):
    return load_data(dataset, root, seed, image_size)


def _device(name: str) -> torch.device:
    if name == "cpu":
        return torch.device("cpu")
    from reprozoo.runtime.accel import make_accelerator

    return make_accelerator(name).device


def _setup(cfg, backbone: str, seed: int, blur: float):
    data = data_for(cfg.dataset, cfg.data_root, seed, cfg.image_size)
    scen = blurry_split(data.y_train, cfg.n_tasks, blur, seed, share=cfg.share)
    # MLPs flatten the image: their input width is C*H*W of this dataset (rm_mlp400 defaults to MNIST's 2352)
    shape_kw = {"in_features": int(np.prod(data.x_train.shape[1:]))} if backbone.startswith("rm_mlp") \
        else {"in_chans": data.in_chans}

    def model_fn():
        return Normalized(create_model(backbone, num_classes=scen.num_classes, **shape_kw), data.mean, data.std)

    return data, scen, model_fn


def _row(arm: str, res, scen) -> dict:
    row: dict[str, Any] = {"task_acc": res.task_acc, **res.summary(),
                           "memory_hist": np.bincount(res.memory_labels[-1], minlength=scen.num_classes).tolist(),
                           "foreign_share": [scen.foreign_share(t) for t in range(scen.n_tasks)]}
    if arm != METHOD:
        return row
    kept = [{"keys": sel["keys"][sel["chosen"]].tolist(), "labels": sel["labels"][sel["chosen"]].tolist(),
             "u": np.asarray(sel["uncertainty"])[sel["chosen"]].tolist()}
            for sel in res.selections if sel is not None and sel.get("uncertainty") is not None]
    if kept:
        row["kept"] = kept[-1]
        row["kept_all"] = [{"labels": s["labels"], "u": s["u"]} for s in kept]
    return row


def run_one(trial: Trial, tctx: TrialContext) -> dict:
    """One continual run (or the joint upper bound) as plain data; a seed group gives ``{"seeds": rows}``."""
    cfg = tctx.config
    seeds = list(trial.get("seeds", (trial.seed,)))
    backbone, blur = trial["backbone"], trial.get("blur", cfg.blur)
    device = _device(cfg.device)
    setups = [_setup(cfg, backbone, s, blur) for s in seeds]
    if trial.arm == "joint":
        from reprozoo.rainbow.batched import batched_joint, can_batch

        s0 = settings_for(cfg, "finetune", min(cfg.memory_sizes))
        if len(seeds) > 1 and can_batch(s0, setups[0][2]):
            accs = batched_joint(setups, cfg.cl, cfg.joint_epochs, seeds, device)
        else:
            accs = [joint_accuracy(fn, d.x_train, sc.labels, d.x_test, sc.relabel(d.y_test), cfg.cl,
                                   epochs=cfg.joint_epochs, device=device, seed=s)
                    for (d, sc, fn), s in zip(setups, seeds)]
        rows = [{"joint": a} for a in accs]
    else:
        settings = settings_for(cfg, trial.arm, trial.get("k", cfg.headline_k))
        rows = [_row(trial.arm, r, sc) for r, (_, sc, _) in
                zip(fit_seeds(setups, settings, seeds, device), setups)]
    return rows[0] if "seeds" not in dict(trial.params) else {"seeds": rows}


def fit_seeds(setups, settings: CLSettings, seeds: Sequence[int], device) -> list:
    """StreamResults of one arm for several seeds: one batched model when possible, else in turn."""
    from reprozoo.rainbow.batched import BatchedLearner, can_batch

    if len(seeds) > 1 and can_batch(settings, setups[0][2]):
        return BatchedLearner([fn for _, _, fn in setups], settings, device, seeds).fit(
            [sc for _, sc, _ in setups], [d.x_train for d, _, _ in setups], [d.x_test for d, _, _ in setups],
            [sc.relabel(d.y_test) for d, sc, _ in setups])
    return [ContinualLearner(fn, settings, device, s).fit(sc, d.x_train, d.x_test, sc.relabel(d.y_test))
            for (d, sc, fn), s in zip(setups, seeds)]


class Results:
    """Trial results indexed by (arm, backbone, blur, K), each a list aligned with the seeds."""

    def __init__(self, cfg, trials: Sequence[Trial], results: Sequence[dict]):
        self.cfg = cfg
        self.rows: dict[tuple, list[dict]] = {}
        for t, r in zip(trials, results):
            rows = r["seeds"] if "seeds" in dict(t.params) else [r]
            self.rows.setdefault(self._key(t.arm, t["backbone"], t.get("blur"), t.get("k")), []).extend(rows)

    @staticmethod
    def _key(arm, backbone, blur, k):
        if arm == "joint":
            return ("joint", backbone, None, None)
        return (arm, backbone, round(float(blur), 6), None if arm == CONTROL else k)

    def has(self, arm, backbone, blur, k) -> bool:
        return self._key(arm, backbone, blur, k) in self.rows

    def get(self, arm, backbone, blur, k) -> list[dict]:
        return self.rows[self._key(arm, backbone, blur, k)]

    def vals(self, arm, backbone, blur, k, metric: str = "A_last") -> np.ndarray:
        """Per-seed values in % (A_last, A_avg, F_last), or I_last = joint - A_last."""
        if metric == "I_last":
            joint = self.vals("joint", backbone, None, None, "joint")
            return joint - self.vals(arm, backbone, blur, k)
        return np.asarray([100.0 * r[metric] for r in self.get(arm, backbone, blur, k)])
