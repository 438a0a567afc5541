"""Benchmark ``sinet``: frames/s at 224x224, batch 1, 2 CPU threads, for SINet and LR-ASPP
MobileNetV3 in PyTorch eager mode and in ONNX Runtime, measured interleaved in one run."""

from __future__ import annotations

import statistics
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch

from reprozoo.runtime.profile import count_flops, count_params, measure_latency
from reprozoo.runtime.registry import register_benchmark
from reprozoo.sinet.baselines import LRASPP
from reprozoo.sinet.export import ort_session
from reprozoo.sinet.models import SINet

GOAL_FPS = 100.0  # the paper's phone figure is 100.6 FPS


def conv_macs(model: torch.nn.Module, x: torch.Tensor) -> int:
    """Multiply-accumulates of convolutions only (the paper's "FLOPs" convention)."""
    ops = count_flops(model, x, by_operator=True)
    return sum(v for k, v in ops.items() if "convolution" in k) // 2


def _onnx(model: torch.nn.Module, x: torch.Tensor, folder: Path, name: str) -> Path:
    path = folder / f"{name}.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), str(path), input_names=["image"], output_names=["logits"],
                          opset_version=17, dynamo=False)
    return path


@register_benchmark("sinet", description="SINet vs LR-ASPP MobileNetV3: FPS at 224x224, batch 1, 2 threads "
                    "(PyTorch eager and ONNX Runtime)")
def run(quick: bool = False, threads: int = 2, size: int = 224) -> dict[str, Any]:
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        x = torch.rand(1, 3, size, size)
        models = {"SINet": SINet().eval(), "LR-ASPP MobileNetV3": LRASPP().eval()}
        fns = {}
        with tempfile.TemporaryDirectory() as tmp:
            for name, model in models.items():
                def eager(m=model):
                    with torch.inference_mode():
                        m(x)
                fns[(name, "eager")] = eager
                session = ort_session(_onnx(model, x, Path(tmp), name.split()[0]), threads=threads)
                feed = {"image": x.numpy()}
                fns[(name, "onnxruntime")] = lambda s=session, f=feed: s.run(None, f)
            warmup, repeats, rounds = (5, 20, 2) if quick else (20, 100, 3)
            times: dict[tuple[str, str], list[float]] = {k: [] for k in fns}
            for _ in range(rounds):  # interleaved, so machine noise hits every row
                for key, fn in fns.items():
                    times[key].append(measure_latency(fn, warmup=warmup, repeats=repeats)["median_ms"])
        rows = []
        fps = {}
        macs = {name: conv_macs(model, x) for name, model in models.items()}  # once per model, not per engine
        for (name, engine), ts in times.items():
            ms = statistics.median(ts)
            fps[(name, engine)] = 1000.0 / ms
            model = models[name]
            rows.append({"model": name, "engine": engine, "median_ms": ms, "fps": 1000.0 / ms,
                         "params": count_params(model), "conv_macs": macs[name], "threads": threads})
        s_ort, s_eager = fps[("SINet", "onnxruntime")], fps[("SINet", "eager")]
        b_ort, b_eager = fps[("LR-ASPP MobileNetV3", "onnxruntime")], fps[("LR-ASPP MobileNetV3", "eager")]
        ratios = {"sinet_vs_lraspp_eager_speedup": s_eager / b_eager,
                  "sinet_vs_lraspp_onnxruntime_speedup": s_ort / b_ort,
                  "sinet_onnxruntime_vs_eager_speedup": s_ort / s_eager,
                  "lraspp_vs_sinet_param_ratio": rows[2]["params"] / rows[0]["params"],
                  "lraspp_vs_sinet_conv_mac_ratio": rows[2]["conv_macs"] / rows[0]["conv_macs"]}
        met = s_ort >= GOAL_FPS and s_ort > b_ort
        goal = (f"SINet >= {GOAL_FPS:.0f} FPS with ONNX Runtime on {threads} threads and faster than LR-ASPP "
                f"(measured {s_ort:.1f} FPS vs {b_ort:.1f})")
        return {"rows": rows, "ratios": ratios, "goal": goal, "met": met}
    finally:
        torch.set_num_threads(before)
