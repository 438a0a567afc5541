"""``reprozoo bench genas``: time to score one genotype with flatness (BN recalibration + the
noise levels on the held-out set) against the validation-accuracy proxy alone (recalibration +
one pass), measured interleaved in one process, as a ratio. The paper reports about 3x.
The noise is undone from a clone of the parameters (no deep copy of the supernet).

Each proxy row also carries ``flops``: the FLOPs of scoring one genotype (per genotype, the mean
over the timed genotypes), counted with ``count_call_flops`` on one real ``proxy.score`` call:
the BN recalibration forwards on the training images plus the held-out passes (one for
validation accuracy, one per noise level for flatness); convolutions and matrix products only,
a multiply-add = 2 FLOPs (the noise draws and BN statistics are elementwise, not counted). The
counting call perturbs and restores the weights like a timed call; the result's
``flops_count_left_supernet_unchanged`` compares every parameter and buffer before and after.
``limit_fraction`` is the row's achieved FLOP/s (``flops`` over ``ms_per_genotype``) as a fraction
of ``peak_flops``, the float32 1024x1024 ``torch.mm`` throughput measured right after the timings
with the same ``threads``; a small fraction means the scoring is overhead-bound, not compute-bound."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from reprozoo.genas.data import digits_splits
from reprozoo.genas.models import NB201Network
from reprozoo.genas.proxies import Flatness, ProxyData, ValAccuracy
from reprozoo.genas.spaces import sample_nb201
from reprozoo.genas.supernet import batches_of
from reprozoo.runtime.profile import (
    add_limit_fraction,
    count_call_flops,
    count_macs,
    count_params,
    latency_ratio,
    matmul_peak_flops,
)
from reprozoo.runtime.registry import register_benchmark

PAPER_RATIO = 3.0


def measure(quick: bool = False, width: int = 8) -> dict[str, Any]:
    torch.manual_seed(0)
    data = digits_splits()
    net = NB201Network(None, layout="tiny", C=width, cells_per_stage=1, num_classes=10, in_chans=1)
    pdata = ProxyData(batches_of(data.train, 64), batches_of(data.val, 300), recal_mode="cumulative")
    genotypes = sample_nb201(4, np.random.default_rng(0), connected_only=True)
    flat, acc = Flatness(), ValAccuracy()
    kw = {"rounds": 2, "warmup": 1, "repeats": 3} if quick else {"rounds": 5, "warmup": 2, "repeats": 10}
    res = latency_ratio(lambda: [flat.score(net, g, pdata) for g in genotypes],
                        lambda: [acc.score(net, g, pdata) for g in genotypes], **kw)
    peak = matmul_peak_flops(min_time_s=0.2 if quick else 0.5)  # same run, same thread count as the timings
    before = {k: v.detach().clone() for k, v in net.state_dict().items()}
    work = {name: sum(count_call_flops(proxy.score, net, g, pdata) for g in genotypes) / len(genotypes)
            for name, proxy in (("flatness", flat), ("val_acc", acc))}  # one real score call per genotype
    unchanged = all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    net.set_genotype(genotypes[0])
    macs = count_macs(net, torch.empty(1, 1, 8, 8))
    note = "recalibration + held-out passes, conv/matmul only (noise draws, BN statistics: elementwise, not counted)"
    rows = [{"proxy": "flatness (3 levels)", "ms_per_genotype": round(res["method_ms"] / len(genotypes), 2),
             "flops": work["flatness"], "flops_note": note},
            {"proxy": "val_acc", "ms_per_genotype": round(res["baseline_ms"] / len(genotypes), 2),
             "flops": work["val_acc"], "flops_note": note}]
    add_limit_fraction(rows, peak, ms_key="ms_per_genotype")
    return {"rows": rows + [{"supernet_params": count_params(net), "path_macs_8x8": macs, "threads": int(res["threads"])}],
            "peak_flops": peak, "threads": int(res["threads"]), "genotypes_timed": len(genotypes),
            "flops_count_left_supernet_unchanged": bool(unchanged),
            "ratios": {"flatness/val_acc": res["ratio"]},
            "goal": f"the paper reports about {PAPER_RATIO:g}x (1 + 3 levels of held-out passes vs 1); measured "
                    f"{res['ratio']:.2f}x",
            "met": bool(res["ratio"] <= PAPER_RATIO + 1.0)}


@register_benchmark("genas", description="flatness vs validation-accuracy scoring time per genotype (tiny NB201 "
                                         "supernet); stand-alone training runs per CPU-second, one at a time vs grouped")
def run(quick: bool = False, trials: bool = True) -> dict[str, Any]:
    """``trials`` adds the experiments' stand-alone training runs per CPU-second (one at a time vs
    grouped: :mod:`reprozoo.genas.benchmark_trials`)."""
    out = measure(quick=quick)
    if trials:
        from reprozoo.genas.benchmark_trials import trial_throughput

        res = trial_throughput(genotypes=2 if quick else 4)
        out["rows"] += res["rows"]
        out["ratios"].update(res["ratios"])
    return out
