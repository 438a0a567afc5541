"""Stand-alone training runs (the GeNAS experiments' trials) per CPU-second, two ways in one run.

Both experiments spend most of their CPU time training small NAS-Bench-201 cells from scratch:
``genas-correlation`` trains every sampled genotype ``gt_runs + 1`` times (the ground truth and the
oracle's run), ``genas-search`` retrains every winner ``retrain_runs`` times. Measured here on the
same genotypes, seeds, data and schedule with one torch thread
(:func:`reprozoo.genas.grouped.train_copies`):

- ``one_at_a_time``: each run trained alone with :func:`~reprozoo.genas.supernet.fit_in_memory`
  (the former trial path);
- ``grouped``: a genotype's runs trained as one grouped network (what the experiments use; the same
  numbers up to float rounding).

The modes interleave per genotype; rates are training runs per CPU-second of this process, and
the ratio is grouped over one at a time.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from reprozoo.genas.data import digits_splits
from reprozoo.genas.grouped import train_copies
from reprozoo.genas.models import NB201Network
from reprozoo.genas.spaces import sample_nb201
from reprozoo.genas.supernet import SupernetConfig, batches_of

MODES = ("one_at_a_time", "grouped")


def trial_throughput(genotypes: int = 4, copies: int = 3, epochs: int = 30, width: int = 8) -> dict[str, Any]:
    """Train ``copies`` runs of each of ``genotypes`` random connected cells (the experiments'
    stand-alone recipe: 250 digits, ``epochs`` epochs) both ways; rows and the ratio of the rates."""
    data = digits_splits()
    cells = sample_nb201(genotypes, np.random.default_rng(0), connected_only=True)
    cfg = SupernetConfig(epochs=epochs)
    evals = {"test": batches_of(data.test, 512)}
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    cpu = {m: 0.0 for m in MODES}
    try:
        for i, g in enumerate(cells):
            def build(g=g):
                return NB201Network(g, layout="tiny", C=width, cells_per_stage=1, num_classes=10, in_chans=1)
            for mode in MODES:
                start = time.process_time()
                train_copies(build, data.train.x, data.train.y, cfg, init_seeds=[10 * i + c for c in range(copies)],
                             order_seeds=[10 * i + c + 1 for c in range(copies)], grouped=mode == "grouped",
                             evals=evals)
                cpu[mode] += time.process_time() - start
    finally:
        torch.set_num_threads(before)
    runs = genotypes * copies
    rates = {m: runs / cpu[m] for m in MODES}
    rows = [{"group": "trials", "mode": m, "genotypes": genotypes, "copies": copies, "epochs": epochs,
             "cpu_s": round(cpu[m], 2), "runs_per_cpu_s": round(rates[m], 4),
             "ratio_vs_one_at_a_time": round(rates[m] / rates["one_at_a_time"], 3)} for m in MODES]
    return {"rows": rows, "ratios": {"stand-alone runs/cpu-s grouped/one_at_a_time": rates["grouped"]
                                     / rates["one_at_a_time"]}}
