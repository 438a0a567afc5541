"""Trials per CPU-second of the ``pflayer-ops`` study networks, three ways in one run.

A trial of ``pflayer-ops`` trains one small study network from scratch. Measured here on the same
seeds, data and schedule (:func:`reprozoo.pflayer.members.train_members`, one torch thread):

- ``one_at_a_time``: plain modules, contiguous (NCHW) tensors, one seed after the other (the former
  trial path, without the trainer's bookkeeping);
- ``vmap_batched``: the seeds stacked into one model (``torch.func.stack_module_state`` + ``vmap``;
  convolutions become grouped convolutions);
- ``channels_last``: plain modules in the channels-last memory format, one seed after the other (what
  the experiment uses).

Rates are trials (seeds) per CPU-second of this process; ratios are against ``one_at_a_time``.
"""

from __future__ import annotations

import time
from typing import Any

import torch

MODES = {"one_at_a_time": dict(batched=False, channels_last=False),
         "vmap_batched": dict(batched=True, channels_last=False),
         "channels_last": dict(batched=False, channels_last=True)}


def trial_throughput(ops: tuple[str, ...] = ("maxpool", "depthwise"), seeds: int = 4, n_train: int = 512,
                     epochs: int = 1, rounds: int = 1) -> dict[str, Any]:
    """Train ``seeds`` study networks per op and mode on ``n_train`` dot patterns for ``epochs``; the
    modes interleave within each round. Returns rows (trials per CPU-second per op and mode) and the
    ratios of each mode's rate to ``one_at_a_time``'s."""
    from reprozoo.pflayer.experiment import OpsConfig, build, data
    from reprozoo.pflayer.members import train_members

    cfg = OpsConfig(n_train=n_train, n_test=200, noise=0.1, epochs=epochs)
    splits = data(cfg)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    cpu: dict[tuple[str, str], float] = {}
    try:
        for _ in range(rounds):
            for op in ops:
                for mode, kw in MODES.items():
                    start = time.process_time()
                    train_members(lambda op=op: build(cfg, op, 1.0), list(range(seeds)), splits, epochs=epochs,
                                  batch_size=cfg.batch_size, lr=cfg.lr, momentum=cfg.momentum,
                                  weight_decay=cfg.weight_decay, warmup=cfg.warmup_fraction, **kw)
                    cpu[op, mode] = cpu.get((op, mode), 0.0) + time.process_time() - start
    finally:
        torch.set_num_threads(before)
    rows, ratios = [], {}
    for op in ops:
        base = seeds * rounds / cpu[op, "one_at_a_time"]
        for mode in MODES:
            rate = seeds * rounds / cpu[op, mode]
            rows.append({"group": "trials", "op": op, "mode": mode, "seeds": seeds, "n_train": n_train,
                         "epochs": epochs, "cpu_s": round(cpu[op, mode], 2), "trials_per_cpu_s": round(rate, 4),
                         "ratio_vs_one_at_a_time": round(rate / base, 3)})
            if mode != "one_at_a_time":
                ratios[f"trials/cpu-s {op} {mode}/one_at_a_time"] = rate / base
    return {"rows": rows, "ratios": ratios}
