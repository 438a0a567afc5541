"""Benchmark ``sinet``: frames/s of SINet and LR-ASPP MobileNetV3 in PyTorch eager mode and in ONNX
Runtime, each as exported plainly and through the deployment path of :mod:`reprozoo.sinet.deploy`
(BN folded, channel shuffle absorbed, PReLU as fused convolutions, grouped/narrow convs, SE gates
and level-2 concats rewritten to stay in ORT's blocked layout, shapes fixed, graph optimised once and
saved, sequential execution; 2 threads with and without spinning, and 1 thread with its CPU time). Both models get the same path. All rows are measured
interleaved in one run; the goals are ratios and FPS from that run. Each row also carries its
arithmetic work (FLOPs, conv + matmul) and the fraction of the measured matmul peak it reaches.

Throughput mode (:class:`reprozoo.sinet.throughput.FrameEngine`, the same deployment export):
model-only FPS over a block of frames per call, one single-thread session per core ("throughput
sessions") and one session with all threads at batch 8 ("throughput batch"), for SINet, LR-ASPP and
the pretrained SINet, interleaved with the rows above; and end to end, ``segment_video`` on a
generated 640x480 clip (decode, preprocessing + inference, compositing, encode) with the time per stage.
"""

from __future__ import annotations

import copy
import statistics
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import torch

from reprozoo.runtime.profile import (
    add_limit_fraction,
    count_flops,
    count_params,
    matmul_peak_flops,
    measure_latency,
)
from reprozoo.runtime.registry import register_benchmark
from reprozoo.runtime.seeding import generator_scope
from reprozoo.sinet.baselines import LRASPP
from reprozoo.sinet.benchmark_video import (  # noqa: F401  (re-exported)
    GOAL_VIDEO_FPS,
    PRETRAINED,
    SETTLE_S,
    end_to_end,
    synthetic_clip,
)
from reprozoo.sinet.deploy import deploy_model
from reprozoo.sinet.export import deploy_session, export_deploy_onnx, ort_session, profile_onnx
from reprozoo.sinet.network import SINet

GOAL_SPEEDUP = 2.0  # SINet >= 2x LR-ASPP's FPS in ONNX Runtime (deployment path for both)
GOAL_FPS = 250.0    # SINet >= 250 FPS at 224x224, batch 1, in ONNX Runtime
GOAL_THROUGHPUT_FPS = 300.0  # SINet >= 300 FPS (and >= 2x LR-ASPP) model-only in throughput mode
THROUGHPUT = {"throughput sessions": ("sessions", 1), "throughput batch": ("batch", 8)}  # engine -> (mode, batch)
PAPER_FPS = 100.6   # the paper's phone figure, for reference
NAMES = ("SINet", "LR-ASPP MobileNetV3")


def conv_macs(model: torch.nn.Module, x: torch.Tensor) -> int:
    """Multiply-accumulates of convolutions only (the paper's "FLOPs" convention)."""
    ops = count_flops(model, x, by_operator=True)
    return sum(v for k, v in ops.items() if "convolution" in k) // 2


def _plain_onnx(model: torch.nn.Module, x: torch.Tensor, path: Path) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), str(path), input_names=["image"], output_names=["logits"],
                          opset_version=17, dynamo=False)
    return path


def _eager(model: torch.nn.Module, x: torch.Tensor):
    def fn():
        with torch.inference_mode():
            model(x)
    return fn


def _ort(session, x: torch.Tensor):
    feed = {"image": x.numpy()}
    return lambda: session.run(None, feed)


def _cpu_ms(fn, runs: int) -> float:
    """Median CPU time (ms) of one call of a single-threaded ``fn``: on a loaded machine the time
    the call was actually on a core, close to its latency on an idle one."""
    fn()
    out = []
    for _ in range(runs):
        c0 = time.process_time()
        fn()
        out.append((time.process_time() - c0) * 1000.0)
    return statistics.median(out)


def _jit_frozen(model: torch.nn.Module, x: torch.Tensor):
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(model, (x,))))


# ONNX Runtime settings measured for the deployment graph (the same for both models):
# engine -> (intra-op threads, spinning); ``None`` threads: the run's ``threads``.
ORT_SETTINGS = {"onnxruntime deploy": (None, False), "onnxruntime deploy spin": (None, True),
                "onnxruntime deploy 1 thread": (1, False)}


@register_benchmark("sinet", description="SINet vs LR-ASPP MobileNetV3: FPS in PyTorch eager and ONNX Runtime, "
                    "plain and deployment export, 224x224 batch 1 (+ batch 8, 320x320), 2 threads")
def run(quick: bool = False, threads: int = 2, size: int = 224, profile: bool = True,
        compile: bool | None = None) -> dict[str, Any]:
    """``compile`` (default: the full run only) adds ``torch.compile`` rows for both models (about
    20-50 s of compilation each on 2 CPU threads)."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return _run(quick, threads, size, profile, (not quick) if compile is None else bool(compile))
    finally:
        torch.set_num_threads(before)


def _compiled(model: torch.nn.Module, x: torch.Tensor, fmt) -> tuple[Any, float]:
    """The model through :func:`reprozoo.sinet.inference.compiled`, compiled here (first call), and
    the seconds that took; checked against eager (max |diff| <= 1e-4)."""
    from reprozoo.sinet.inference import compiled

    net = copy.deepcopy(model).to(memory_format=fmt).eval()
    run = compiled(net)
    with torch.inference_mode():
        t0 = time.perf_counter()
        out = run(x)  # the first call compiles
        took = time.perf_counter() - t0
        ref = model(x.contiguous())
    diff = float((out - ref).abs().max())
    if diff > 1e-4:
        raise RuntimeError(f"torch.compile changed the output by {diff:.2e} (> 1e-4)")

    def fn():
        with torch.inference_mode():
            run(x)
    return fn, took


def _paired_rounds(fns: dict, size: int, rounds: int, repeats: int = 20) -> dict[str, Any]:
    """The two goal rows (both models, ORT deployment graph with spinning, batch 1) timed back to back
    ``rounds`` times: per round the LR-ASPP / SINet time ratio and SINet's FPS. A check on the main
    table, whose rows of one model are 30 rows apart: if the machine's speed drifts during the run,
    the spread of these rounds shows it. The goals are still decided on the main table."""
    keys = [(name, "onnxruntime deploy spin", 1, size) for name in NAMES]
    if not all(k in fns for k in keys):
        return {}
    ratio, fps = [], []
    for _ in range(rounds):
        ms = []
        for key in keys:
            time.sleep(SETTLE_S)
            ms.append(measure_latency(fns[key], warmup=3, repeats=repeats)["median_ms"])
        ratio.append(ms[1] / ms[0])
        fps.append(1000.0 / ms[0])
    return {"rounds": rounds, "ratio_median": statistics.median(ratio), "ratio_min": min(ratio),
            "ratio_max": max(ratio), "sinet_fps_median": statistics.median(fps), "sinet_fps_min": min(fps),
            "sinet_fps_max": max(fps)}


def _run(quick: bool, threads: int, size: int, profile: bool, compile_eager: bool) -> dict[str, Any]:
    gen = torch.Generator().manual_seed(0)
    with generator_scope(gen):  # module init draws from the global RNG: a stream from ``gen``, caller untouched
        models = {"SINet": SINet().eval(), "LR-ASPP MobileNetV3": LRASPP().eval()}
    settings = [(1, size), (8, size), (1, 320)]  # (batch, size); the extra two only on the deploy paths
    fns: dict[tuple[str, str, int, int], Any] = {}
    single: dict[tuple[str, str, int, int], Any] = {}  # single-threaded rows: CPU time measured too
    work: dict[tuple[str, int, int], int] = {}
    deploy_info: dict[str, dict] = {}
    breakdown: dict[str, dict[str, dict[str, float]]] = {}
    compile_s: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name, model in models.items():
            tag = name.split()[0].lower()
            deployed, deploy_info[name] = deploy_model(model)
            for batch, s in settings:
                x = torch.rand(batch, 3, s, s, generator=gen)
                if batch == 1:  # FLOPs grow linearly with the batch: counted once per size
                    work[(name, 1, s)] = count_flops(model, x[:1])
                else:
                    work[(name, batch, s)] = batch * work[(name, 1, s)]
                opt, _ = export_deploy_onnx(model, folder / f"{tag}_{batch}_{s}.onnx", x, threads=threads,
                                            optimized_path=folder / f"{tag}_{batch}_{s}.ort.onnx")
                main = (batch, s) == (1, size)
                for engine, (n, spin) in ORT_SETTINGS.items():
                    if engine != "onnxruntime deploy" and not main:
                        continue
                    fn = _ort(deploy_session(opt, n or threads, preoptimized=True, spin=spin), x)
                    fns[(name, engine, batch, s)] = fn
                    if n == 1:
                        single[(name, engine, batch, s)] = fn
                if not main:
                    continue
                plain = _plain_onnx(model, x, folder / f"{tag}_plain.onnx")
                fns[(name, "onnxruntime plain", batch, s)] = _ort(ort_session(plain, threads), x)
                fns[(name, "eager plain", batch, s)] = _eager(model, x)
                fns[(name, "eager deploy", batch, s)] = _eager(deployed, x)
                if not quick:  # channels-last and TorchScript-frozen eager: full run only (slow to build)
                    fns[(name, "eager deploy channels_last", batch, s)] = _eager(
                        deployed.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last))
                    fns[(name, "eager deploy jit-frozen", batch, s)] = _eager(_jit_frozen(deployed, x), x)
                if compile_eager:  # torch.compile (inductor, weights frozen) of the model as written
                    for engine, fmt in (("eager compiled", torch.contiguous_format),
                                        ("eager compiled channels_last", torch.channels_last)):
                        fns[(name, engine, batch, s)], compile_s[f"{name}: {engine}"] = _compiled(
                            model, x.contiguous(memory_format=fmt), fmt)
                if profile:
                    feed = {"image": x.numpy()}
                    runs = 5 if quick else 20
                    breakdown[name] = {"plain": _top(profile_onnx(plain, feed, threads=threads, runs=runs)),
                                       "deploy 1 thread": _top(profile_onnx(opt, feed, threads=1, runs=runs,
                                                                            spin=False))}
                    if not quick:
                        breakdown[name]["deploy"] = _top(profile_onnx(opt, feed, threads=threads, runs=runs,
                                                                      spin=False))
        engines = _throughput_fns(models, fns, work, gen, threads, size, frames=32 if quick else 64)
        single.update({k: f for k, f in fns.items() if k[1] in THROUGHPUT})  # CPU time too (all threads)
        cpu = {k: [] for k in single}
        peak = matmul_peak_flops(min_time_s=0.2 if quick else 0.5)
        warmup, repeats, rounds = (3, 8, 2) if quick else (10, 40, 3)
        times: dict[tuple, list[float]] = {k: [] for k in fns}
        for _ in range(rounds):  # interleaved, so machine noise hits every row
            for key, fn in fns.items():
                # the previous row's worker threads (ORT's spinning pool, OpenMP's spin-wait) keep a
                # core busy for a while after their last call; let them go to sleep first, or they
                # steal time from this row (seen as a 1-thread row with more CPU time than wall time)
                time.sleep(SETTLE_S)
                batch, eager = key[2], key[1].startswith("eager")
                n = max(3, (3 if quick and eager else repeats) // batch)  # eager is 10-100x slower: fewer calls
                times[key].append(measure_latency(fn, warmup=1 if quick and eager else warmup, repeats=n)["median_ms"])
                if key in single:
                    cpu[key].append(_cpu_ms(fn, max(3, repeats // batch)))
        paired = _paired_rounds(fns, size, 5 if quick else 10)
        for engine in engines:
            engine.close()
        video = end_to_end(folder, threads, runs=2 if quick else 3)
    rows, fps = [], {}
    macs = {name: conv_macs(m, torch.zeros(1, 3, size, size)) for name, m in models.items()}  # counts: any input
    params = {name: count_params(m) for name, m in models.items()}
    macs[PRETRAINED], params[PRETRAINED] = macs[NAMES[0]], params[NAMES[0]]  # the same architecture
    for (name, engine, batch, s), ts in times.items():
        ms = statistics.median(ts)
        fps[(name, engine, batch, s)] = batch * 1000.0 / ms
        row = {"model": name, "engine": engine, "batch": batch, "size": s, "median_ms": round(ms, 3),
               "fps": round(batch * 1000.0 / ms, 1), "params": params[name],
               "conv_macs_224": macs[name], "flops": work[(name, batch, s)],
               "threads": ORT_SETTINGS.get(engine, (None, None))[0] or threads}
        if engine in THROUGHPUT:
            mode, b = THROUGHPUT[engine]
            row.update(frames_per_call=batch, mode=mode, batch=b, sessions=threads if mode == "sessions" else 1,
                       threads=1 if mode == "sessions" else threads)
        if (name, engine, batch, s) in cpu:
            row["cpu_ms"] = round(statistics.median(cpu[(name, engine, batch, s)]), 3)
        rows.append(row)
    add_limit_fraction(rows, peak)
    sinet, base = NAMES

    def best(name: str, batch: int = 1, s: int = size) -> tuple[float, str]:
        """The faster of the two multi-threaded deployment settings (the same choice for both models)."""
        return max((fps[(name, e, batch, s)], e) for e in ("onnxruntime deploy", "onnxruntime deploy spin")
                   if (name, e, batch, s) in fps)

    (s_ort, s_eng), (b_ort, b_eng) = best(sinet), best(base)
    one = "onnxruntime deploy 1 thread"
    s_cpu, b_cpu = (statistics.median(cpu[(n, one, 1, size)]) for n in (sinet, base))
    ratios = {
        "sinet_vs_lraspp_onnxruntime_deploy": s_ort / b_ort,
        "sinet_vs_lraspp_onnxruntime_deploy_1_thread": fps[(sinet, one, 1, size)] / fps[(base, one, 1, size)],
        "sinet_vs_lraspp_onnxruntime_deploy_1_thread_cpu_time": b_cpu / s_cpu,
        "sinet_vs_lraspp_onnxruntime_plain": fps[(sinet, "onnxruntime plain", 1, size)]
        / fps[(base, "onnxruntime plain", 1, size)],
        "sinet_vs_lraspp_eager_deploy": fps[(sinet, "eager deploy", 1, size)] / fps[(base, "eager deploy", 1, size)],
        "sinet_vs_lraspp_eager_plain": fps[(sinet, "eager plain", 1, size)] / fps[(base, "eager plain", 1, size)],
        "sinet_deploy_vs_plain_onnxruntime": s_ort / fps[(sinet, "onnxruntime plain", 1, size)],
        "lraspp_deploy_vs_plain_onnxruntime": b_ort / fps[(base, "onnxruntime plain", 1, size)],
        "sinet_deploy_vs_plain_eager": fps[(sinet, "eager deploy", 1, size)] / fps[(sinet, "eager plain", 1, size)],
        "sinet_vs_lraspp_onnxruntime_deploy_batch8": fps[(sinet, "onnxruntime deploy", 8, size)]
        / fps[(base, "onnxruntime deploy", 8, size)],
        "sinet_vs_lraspp_onnxruntime_deploy_320": fps[(sinet, "onnxruntime deploy", 1, 320)]
        / fps[(base, "onnxruntime deploy", 1, 320)],
        "lraspp_vs_sinet_param_ratio": count_params(models[base]) / count_params(models[sinet]),
        "lraspp_vs_sinet_conv_mac_ratio": macs[base] / macs[sinet],
    }
    if compile_eager:
        def best_compiled(name: str) -> float:
            return max(fps[(name, e, 1, size)] for e in ("eager compiled", "eager compiled channels_last"))

        ratios["sinet_vs_lraspp_eager_compiled"] = best_compiled(sinet) / best_compiled(base)
        ratios["sinet_compiled_vs_eager_plain"] = best_compiled(sinet) / fps[(sinet, "eager plain", 1, size)]
        ratios["sinet_onnxruntime_vs_eager_compiled"] = s_ort / best_compiled(sinet)
    speed_met, fps_met = s_ort / b_ort >= GOAL_SPEEDUP, s_ort >= GOAL_FPS
    goal = (f"ONNX Runtime, {size}x{size}, batch 1, {threads} threads, deployment export for both, each at its "
            f"faster setting (SINet: {s_eng}, LR-ASPP: {b_eng}): "
            f"SINet >= {GOAL_SPEEDUP:g}x LR-ASPP ({s_ort / b_ort:.2f}x: {'met' if speed_met else 'not met'}) and "
            f">= {GOAL_FPS:.0f} FPS ({s_ort:.1f} FPS: {'met' if fps_met else 'not met'}); "
            f"1 thread: {ratios['sinet_vs_lraspp_onnxruntime_deploy_1_thread']:.2f}x by wall clock, "
            f"{b_cpu / s_cpu:.2f}x by CPU time ({s_cpu:.2f} vs {b_cpu:.2f} CPU-ms per frame)")
    if paired:
        goal += (f"; {paired['rounds']} back-to-back rounds of the two spinning rows: SINet/LR-ASPP median "
                 f"{paired['ratio_median']:.2f}x (range {paired['ratio_min']:.2f}-{paired['ratio_max']:.2f}), "
                 f"SINet {paired['sinet_fps_median']:.0f} FPS (range {paired['sinet_fps_min']:.0f}-"
                 f"{paired['sinet_fps_max']:.0f})")
    # decided (issue #29) on throughput mode and end to end, where video runs; batch 1 kept for the record
    tp = _throughput_goal(fps, size, threads, ratios, {k: statistics.median(v) / k[2] for k, v in cpu.items()})
    deciding = {**tp["goals"], **video.get("goals", {})}
    goal = "; ".join([tp["goal"], *([video["goal"]] if "goal" in video else []), "batch 1 (for the record): " + goal])
    if "row" in video:
        rows.append(video["row"])
        ratios["end_to_end_vs_model_only_sinet_pretrained"] = video["row"]["fps"] / max(
            v for k, v in fps.items() if k[0] == PRETRAINED and k[1] in THROUGHPUT)
    return {"rows": rows, "ratios": ratios, "goal": goal, "met": all(deciding.values()),
            "goals": {**deciding, "speedup_2x": bool(speed_met), "fps_250": bool(fps_met)},
            "met_batch1": bool(speed_met and fps_met), "end_to_end": video,
            "peak_flops": peak, "threads": threads, "deploy": deploy_info, "ort_profile_ms": breakdown,
            "compile_seconds": {k: round(v, 1) for k, v in compile_s.items()}, "paired_rounds": paired}


def _top(by_op: dict[str, float], n: int = 6) -> dict[str, float]:
    """The ``n`` most expensive operator types (ms per frame) and the total kernel time."""
    out = {k: round(v, 2) for k, v in list(by_op.items())[:n]}
    out["total"] = round(sum(by_op.values()), 2)
    return out


def _throughput_fns(models: dict, fns: dict, work: dict, gen: torch.Generator, threads: int, size: int,
                    frames: int) -> list:
    """Model-only throughput rows (``engine.infer`` on ``frames`` preprocessed frames per call) for
    both models and the pretrained SINet, through :class:`FrameEngine` in both modes; added to
    ``fns``/``work`` so they are timed interleaved with the other rows. Returns the engines (to close)."""
    from reprozoo.sinet.inference import Segmenter
    from reprozoo.sinet.official import OFFICIAL_MEAN, OFFICIAL_STD
    from reprozoo.sinet.throughput import FrameEngine

    x = torch.rand(frames, 3, size, size, generator=gen).numpy()
    sources = {**{name: (m, dict(mean=OFFICIAL_MEAN, std=OFFICIAL_STD, image_size=size)) for name, m in models.items()},
               PRETRAINED: (Segmenter.pretrained(), {})}
    engines = []
    for name, (src, kw) in sources.items():
        work[(name, frames, size)] = frames * work[(NAMES[0] if name == PRETRAINED else name, 1, size)]
        for engine, (mode, batch) in THROUGHPUT.items():
            eng = FrameEngine(src, kind="ort", mode=mode, batch_size=batch, threads=threads, **kw)
            engines.append(eng)
            fns[(name, engine, frames, size)] = (lambda e: lambda: e.infer(x))(eng)
    return engines


def _throughput_goal(fps: dict, size: int, threads: int, ratios: dict, cpu_per_frame: dict | None = None) -> dict:
    """SINet >= 300 FPS and >= 2x LR-ASPP model-only in throughput mode, each model at its faster mode
    (``cpu_per_frame``: CPU-ms per frame of the rows, all threads: the same ratio by CPU time, which
    load on the machine distorts less)."""
    def best(name: str) -> tuple[float, str]:
        return max((v, k[1]) for k, v in fps.items() if k[0] == name and k[1] in THROUGHPUT and k[3] == size)

    (s_fps, s_eng), (b_fps, b_eng), (p_fps, p_eng) = best(NAMES[0]), best(NAMES[1]), best(PRETRAINED)
    ratios["sinet_vs_lraspp_throughput"] = s_fps / b_fps
    ratios["sinet_pretrained_vs_lraspp_throughput"] = p_fps / b_fps
    ratios["sinet_throughput_vs_batch1_deploy"] = s_fps / max(
        fps[(NAMES[0], e, 1, size)] for e in ("onnxruntime deploy", "onnxruntime deploy spin"))
    by_cpu = ""
    if cpu_per_frame:
        cost = {n: min(v for k, v in cpu_per_frame.items() if k[0] == n and k[1] in THROUGHPUT) for n in NAMES}
        ratios["sinet_vs_lraspp_throughput_cpu_time"] = cost[NAMES[1]] / cost[NAMES[0]]
        by_cpu = (f" (by CPU time {cost[NAMES[1]] / cost[NAMES[0]]:.2f}x: {cost[NAMES[0]]:.2f} vs "
                  f"{cost[NAMES[1]]:.2f} CPU-ms per frame)")
    speed, fast = s_fps / b_fps >= GOAL_SPEEDUP, s_fps >= GOAL_THROUGHPUT_FPS
    goal = (f"throughput mode (model only, {size}x{size}, {threads} cores, each at its faster mode: SINet "
            f"{s_eng}, LR-ASPP {b_eng}): SINet >= {GOAL_SPEEDUP:g}x LR-ASPP ({s_fps / b_fps:.2f}x: "
            f"{'met' if speed else 'not met'}){by_cpu} and >= {GOAL_THROUGHPUT_FPS:.0f} FPS ({s_fps:.1f} FPS: "
            f"{'met' if fast else 'not met'}); pretrained SINet {p_fps:.1f} FPS ({p_eng}), {p_fps / b_fps:.2f}x LR-ASPP")
    return {"goal": goal, "goals": {"throughput_speedup_2x": bool(speed), "throughput_fps_300": bool(fast)}}
