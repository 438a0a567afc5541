"""``reprozoo bench rexnet``: CPU inference latency of our ``rexnet_100`` against timm's
``rexnet_100`` measured in the same process (interleaved), at batch 1 and 32, 224x224, plus
parameter and MAC counts. Goal: ours <= 1.05x timm's at every batch size."""

from __future__ import annotations

from typing import Any

import torch

from reprozoo.errors import MissingDependencyError
from reprozoo.runtime.profile import (
    add_limit_fraction,
    count_macs,
    count_params,
    latency_ratio,
    matmul_peak_flops,
)
from reprozoo.runtime.registry import create_model, register_benchmark

GOAL = 1.05


def _timm_model(name: str):
    try:
        import timm
    except ImportError as err:  # timm is a dev dependency
        raise MissingDependencyError("the rexnet benchmark compares against timm: pip install 'timm>=1.0'") from err
    return timm.create_model(name, pretrained=False)


def compare(quick: bool = False, batches: tuple[int, ...] = (1, 32), image_size: int = 224,
            channels_last: bool = False, name: str = "rexnet_100") -> dict[str, Any]:
    """Latency rows for each batch size; both models get the same weights, input and memory format."""
    torch.manual_seed(0)
    theirs = _timm_model(name).eval()
    ours = create_model(name).eval()
    from reprozoo.rexnet.checkpoint import load_pretrained

    load_pretrained(ours, theirs.state_dict())  # identical weights: only the implementation differs
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    ours, theirs = ours.to(memory_format=fmt), theirs.to(memory_format=fmt)
    rows, ratios = [], {}
    with torch.inference_mode():
        for batch in batches:
            x = torch.randn(batch, 3, image_size, image_size).contiguous(memory_format=fmt)
            heavy = batch * image_size * image_size > 224 * 224 * 4
            kw = ({"rounds": 3, "warmup": 1, "repeats": 3 if heavy else 10} if quick
                  else {"rounds": 5, "warmup": 3, "repeats": 10 if heavy else 30})
            res = latency_ratio(lambda x=x: ours(x), lambda x=x: theirs(x), **kw)
            tag = f"batch{batch}" + ("_channels_last" if channels_last else "")
            ratios[f"{tag} ours/timm"] = res["ratio"]
            rows.append({"model": name, "batch": batch, "size": image_size,
                         "memory_format": "channels_last" if channels_last else "contiguous",
                         "ours_ms": round(res["method_ms"], 2), "timm_ms": round(res["baseline_ms"], 2),
                         "ratio": round(res["ratio"], 3), "threads": int(res["threads"])})
    return {"rows": rows, "ratios": ratios}


@register_benchmark("rexnet", description="rexnet_100 CPU latency vs timm's rexnet_100 (batch 1 and 32, 224x224)")
def run(quick: bool = False, channels_last: bool | None = None, trials: bool = True) -> dict[str, Any]:
    """Contiguous layout always; channels_last too in the full run (or when asked). ``trials`` adds the
    ``rexnet-channels`` training throughput (:mod:`reprozoo.rexnet.benchmark_trials`)."""
    with torch.device("meta"):
        meta = create_model("rexnet_100")
        macs = count_macs(meta, torch.empty(1, 3, 224, 224))
    params = count_params(create_model("rexnet_100"))
    out = compare(quick=quick, channels_last=False)
    formats = [] if (quick and not channels_last) else [True]
    if channels_last is False:
        formats = []
    for cl in formats:
        extra = compare(quick=quick, channels_last=cl)
        out["rows"] += extra["rows"]
        out["ratios"].update(extra["ratios"])
    if trials:
        from reprozoo.rexnet.benchmark_trials import seed_batching, trial_throughput

        extra = trial_throughput(steps=2 if quick else 6)
        out["trials"], out["trial_ratios"] = extra["rows"], extra["ratios"]
        batching = seed_batching(steps=1 if quick else 3)
        out["trials"] += batching["rows"]
        out["trial_ratios"].update(batching["ratios"])
    peak = matmul_peak_flops(min_time_s=0.2 if quick else 0.5)
    for row in out["rows"]:  # work per timed call: 2 FLOPs per MAC, times the batch
        row["flops"] = 2 * macs * row["batch"]
    add_limit_fraction(out["rows"], peak, ms_key="ours_ms", out_key="ours_limit_fraction")
    add_limit_fraction(out["rows"], peak, ms_key="timm_ms", out_key="timm_limit_fraction")
    out["peak_flops"], out["threads"] = peak, torch.get_num_threads()
    out["rows"].insert(0, {"model": "rexnet_100", "params": params, "macs_224": macs,
                           "spec": "4.80M params / 0.398G MACs"})
    worst = max(v for k, v in out["ratios"].items() if "channels_last" not in k)
    out["goal"] = f"ours <= {GOAL}x timm's latency at batch 1 and 32 (contiguous), worst measured {worst:.3f}x"
    out["met"] = bool(worst <= GOAL)
    return out
