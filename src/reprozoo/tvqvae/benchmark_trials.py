"""Trials per CPU-second of experiment ``tvq-vae``, before vs after sharing the seed-independent work.

A trial (one arm x one seed) needs the prepared corpus (tokenised documents, vocabulary, word
counts, the cached MiniLM token embeddings) and the gensim dictionary of the coherence scores. None
of these depend on the seed or the arm. Measured in one process and one run, on the same trials:

- ``per_trial`` (before): every trial builds them again, as each trial did before
  :func:`reprozoo.tvqvae.experiment.shared_corpus` (the embedding cache on disk is warm in both);
- ``shared`` (after): built once per process and reused by the later trials, as a worker of the
  ``local`` executor now does.

Both run with one torch thread (the experiment's ``threads``; more threads than cores only spin on a
shared machine). The trials' numbers are identical in both modes (checked here and in the tests).
Rates are trials per CPU-second of this process; the ratio is ``shared / per_trial``.
"""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any

import torch

from reprozoo.runtime.trials import Trial


def _config(quick: bool):
    from reprozoo.tvqvae.experiment import TVQConfig

    cfg = TVQConfig()
    if quick:  # fewer epochs: the same per-trial shared work, cheaper fits
        cfg = dataclasses.replace(cfg, topics=[10], topic_epochs=30, vq_epochs=3, lda_passes=3, with_cv=False)
    return cfg


def trial_throughput(quick: bool = False, seeds: tuple[int, ...] = (0, 1), cfg=None) -> dict[str, Any]:
    """Rows (one per mode) and the ratio of trials per CPU-second, shared / per-trial; ``cfg`` (a
    ``TVQConfig``) replaces the benchmark's own settings (the quick preset's corpus)."""
    from reprozoo.tvqvae import experiment as ex

    cfg = cfg if cfg is not None else _config(quick)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    ctx = type("TrialContext", (), {"config": cfg})()
    trials = [Trial(arm, s) for s in seeds for arm in cfg.arms]
    ex.shared_corpus(cfg)  # warm the on-disk embedding cache (both modes read it)
    out: dict[str, dict] = {}
    try:
        for mode in ("per_trial", "shared"):
            ex._SHARED.clear()
            results, cpu0, wall0 = [], time.process_time(), time.perf_counter()
            for t in trials:
                if mode == "per_trial":
                    ex._SHARED.clear()
                results.append(ex.run_one(t, ctx))
            cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
            out[mode] = {"cpu_s": cpu, "wall_s": wall, "results": results}
    finally:
        torch.set_num_threads(threads)
    same = json.dumps(out["per_trial"]["results"], sort_keys=True) == json.dumps(out["shared"]["results"],
                                                                                  sort_keys=True)
    rows = [{"group": "trials", "mode": mode, "trials": len(trials), "arms": len(cfg.arms), "seeds": len(seeds),
             "cpu_s": round(v["cpu_s"], 2), "wall_s": round(v["wall_s"], 2),
             "trials_per_cpu_s": round(len(trials) / v["cpu_s"], 4)} for mode, v in out.items()]
    ratio = out["per_trial"]["cpu_s"] / out["shared"]["cpu_s"]
    return {"rows": rows, "ratios": {"trials/cpu-s shared / per_trial": ratio},
            "identical_results": same, "settings": {"topics": cfg.topics, "topic_epochs": cfg.topic_epochs,
                                                    "vq_epochs": cfg.vq_epochs, "with_cv": cfg.with_cv}}
