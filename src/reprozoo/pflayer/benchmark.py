"""``reprozoo bench pflayer``: CPU latency of R50 vs R50-max vs R50-hybrid and of the all-attention
ViT-S skeleton vs ViT-S-max, at batch 1 and 32, in eager PyTorch and in ONNX Runtime, as ratios
against the baseline measured in the same run (interleaved), with each model's MACs and the
fraction of the machine's measured float32 matmul throughput it reaches.

The paper reports GPU latency 0.78x (R50-max) and 0.84x (R50-hybrid) of R50's; this benchmark
reports what the CPU shows, whatever it is.
"""

from __future__ import annotations

import statistics
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import torch

from reprozoo.errors import ConfigError
from reprozoo.runtime.profile import count_macs, count_params, measure_latency
from reprozoo.runtime.registry import create_model, register_benchmark

GROUPS = {"resnet": ("resnet50_pf", ("r50_max", "r50_hybrid")), "vit": ("vit_s_attn", ("vit_s_max",))}
PAPER_GPU_RATIO = {"r50_max": 6.8 / 8.7, "r50_hybrid": 7.3 / 8.7}


def float32_peak_gflops(n: int = 1024, seconds: float = 0.5) -> float:
    """Measured float32 matmul throughput (GFLOP/s) of this process's threads: the machine's limit."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds or count < 3:
        a @ b
        count += 1
    return 2 * n ** 3 * count / (time.perf_counter() - start) / 1e9


def _ort(model: torch.nn.Module, size: int, threads: int, folder: Path):
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    path = folder / f"{type(model).__name__}_{id(model)}.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.randn(1, 3, size, size),), str(path), input_names=["x"], output_names=["y"],
                          dynamo=False, opset_version=17, dynamic_axes={"x": {0: "b"}, "y": {0: "b"}})
    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


class _OrtRunner:
    def __init__(self, session):
        self.session = session

    def __call__(self, x: torch.Tensor):
        return self.session.run(None, {"x": x.numpy()})


def compare(group: str, quick: bool = False, batches: tuple[int, ...] = (1, 32), size: int = 224,
            threads: int = 2, engines: tuple[str, ...] = ("eager", "onnxruntime"), **model_kwargs: Any) -> dict[str, Any]:
    base_name, names = GROUPS[group]
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    rows, ratios = [], {}
    try:
        torch.manual_seed(0)
        models = {n: create_model(n, **model_kwargs).eval() for n in (base_name, *names)}
        peak = float32_peak_gflops()
        macs = {n: count_macs(m, torch.randn(1, 3, size, size)) for n, m in models.items()}
        with tempfile.TemporaryDirectory() as tmp:
            runners: dict[str, dict[str, Any]] = {"eager": dict(models)}
            if "onnxruntime" in engines:
                sessions = {n: _ort(m, size, threads, Path(tmp)) for n, m in models.items()}
                if all(s is not None for s in sessions.values()):
                    runners["onnxruntime"] = {n: _OrtRunner(s) for n, s in sessions.items()}
            for engine, fns in runners.items():
                if engine not in engines:
                    continue
                for batch in batches:
                    x = torch.randn(batch, 3, size, size)
                    heavy = batch > 4
                    kw = ({"warmup": 1, "repeats": 2 if heavy else 5} if quick
                          else {"warmup": 2, "repeats": 5 if heavy else 20})
                    times: dict[str, list[float]] = {n: [] for n in fns}
                    with torch.inference_mode():
                        for _ in range(2 if quick else 3):  # interleaved rounds: load hits every model
                            for n, fn in fns.items():
                                times[n].append(measure_latency(lambda fn=fn, x=x: fn(x), **kw)["median_ms"])
                    med = {n: statistics.median(t) for n, t in times.items()}
                    for n in fns:
                        gflops = 2 * macs[n] * batch / (med[n] / 1000) / 1e9
                        row = {"group": group, "engine": engine, "model": n, "batch": batch, "size": size,
                               "latency_ms": round(med[n], 2), "ratio_vs_" + base_name: round(med[n] / med[base_name], 3),
                               "gmacs": round(macs[n] / 1e9, 3), "fraction_of_fp32_peak": round(gflops / peak, 3),
                               "threads": threads}
                        rows.append(row)
                        if n != base_name:
                            ratios[f"{engine} batch{batch} {n}/{base_name}"] = med[n] / med[base_name]
        rows.insert(0, {"group": group, "fp32_peak_gflops": round(peak, 1),
                        **{f"params_{n}": count_params(m) for n, m in models.items()}})
    finally:
        torch.set_num_threads(before)
    return {"rows": rows, "ratios": ratios}


@register_benchmark("pflayer", description="R50 vs R50-max/-hybrid and ViT-S vs ViT-S-max CPU latency "
                                           "(batch 1 and 32, eager and ONNX Runtime) as ratios in one run; "
                                           "pflayer-ops trials per CPU-second, one at a time vs batched")
def run(quick: bool = False, threads: int = 2, size: int = 224, batches: list[int] | None = None,
        engines: list[str] | None = None, trials: bool = True) -> dict[str, Any]:
    """``batches`` / ``engines`` pick a subset (default batch 1 and 32, eager and onnxruntime);
    ``trials`` adds the ``pflayer-ops`` trials per CPU-second (one at a time, vmap-batched,
    channels-last: :mod:`reprozoo.pflayer.benchmark_trials`)."""
    batches = [1, 32] if batches is None else batches
    engines = ["eager", "onnxruntime"] if engines is None else engines
    if not isinstance(batches, list) or not batches or not all(isinstance(b, int) and b >= 1 for b in batches):
        raise ConfigError(f"batches must be a non-empty list of positive integers, got {batches!r}")
    bad = [e for e in engines if e not in ("eager", "onnxruntime")] if isinstance(engines, list) else [engines]
    if bad or not engines:
        raise ConfigError(f"engines must be a non-empty list of eager|onnxruntime, got {engines!r}")
    if not isinstance(threads, int) or threads < 1 or not isinstance(size, int) or size < 32:
        raise ConfigError(f"threads >= 1 and size >= 32 are required, got {threads!r}, {size!r}")
    out: dict[str, Any] = {"rows": [], "ratios": {}, "threads": threads}
    for group in GROUPS:
        res = compare(group, quick=quick, threads=threads, size=size, batches=tuple(batches), engines=tuple(engines))
        out["rows"] += res["rows"]
        out["ratios"].update(res["ratios"])
    if trials:
        from reprozoo.pflayer.benchmark_trials import trial_throughput

        res = trial_throughput(n_train=256 if quick else 512)
        out["rows"] += res["rows"]
        out["ratios"].update(res["ratios"])
    out["peak_flops"] = max(r["fp32_peak_gflops"] for r in out["rows"] if "fp32_peak_gflops" in r) * 1e9
    eager = {k: v for k, v in out["ratios"].items() if k.startswith("eager") and "r50_" in k}
    out["goal"] = ("report-only: the paper's GPU ratios are "
                   + ", ".join(f"{n} {r:.2f}x" for n, r in PAPER_GPU_RATIO.items())
                   + "; CPU eager R50-family ratios here: " + ", ".join(f"{k} {v:.2f}x" for k, v in eager.items()))
    out["met"] = bool(eager) and all(v < 1.0 for v in eager.values())
    return out
