"""``reprozoo bench activeasr``: real-time factors and throughputs, all measured in one run.

- inference real-time factor (compute seconds per audio second, features included) at batch 1 and
  batched (32 utterances), and their ratio;
- training throughput (labelled utterances per second) of a supervised step and of a step with
  the consistency-regularisation branch (teacher decode + strong view), and their ratio (the cost
  of CR per step);
- trials per CPU-second: one small active-learning trial (the CR arm: 32-utterance pool, 8 + 8
  labelled, 2 x 6 steps, 2 x 2 with ``--quick``) with torch's default thread count (all cores; what a trial got before the
  runtime pinned every trial to ``config.threads`` = 1, and what a worker per core then
  oversubscribed) and with one thread, timed in the same run by CPU time (``process_time``, all
  threads) and wall time; the ratio is the gain of the one-thread trials in trials per CPU-second;
- corpus synthesis speed (espeak-ng + post-processing): audio seconds produced per second (one
  untimed pass, then the same utterances timed with ``runtime.profile.measure_latency``).

How far from the machine's limit (issue #11): ``peak_flops`` is the float32 throughput of a
1024x1024 ``torch.mm`` measured in the same run, right after the timings, with the same thread
count (``threads``). ``*_flops`` is the arithmetic work of one timed unit counted by the
runtime's FLOP counter (convolutions and matrix products, a multiply-add = 2 FLOPs; elementwise
ops not counted) and ``*_limit_fraction`` its achieved FLOP/s over ``peak_flops``:

- inference row: per *call* (featurise + forward of 1 or 32 two-second utterances). Features
  are counted as far as torch counts them: the log-mel filterbank matmul is included
  (``*_feature_flops``), the STFT (an FFT) is not counted;
- training row: per optimiser *step* (16 labelled utterances; with CR also the teacher decode
  and student pass on 32 unlabelled ones), forward + backward, counted on a deep copy of the
  trainer that starts from the state the timing starts from (same weights, optimiser and generator),
  mean over ``steps`` steps (CR's speed perturbation changes lengths from step to step); the step
  time is the median one-step latency of ``runtime.profile.measure_latency`` over at least
  ``steps`` timed steps;
- synthesis row: espeak-ng and numpy, outside torch: no FLOPs, no fraction.
"""

from __future__ import annotations

import copy
import os
from typing import Any

import numpy as np
import torch

from reprozoo.activeasr.features import Featurizer
from reprozoo.activeasr.training import CTCTrainer, SpeechSet, TrainSettings
from reprozoo.runtime.profile import (
    count_call_flops,
    count_flops,
    count_macs,
    count_params,
    limit_fraction,
    matmul_peak_flops,
    measure_latency,
)
from reprozoo.runtime.registry import create_model, register_benchmark


def _speech(n: int, seconds: float = 2.0) -> SpeechSet:
    g = torch.Generator().manual_seed(0)
    waves = [0.1 * torch.randn(int(16000 * seconds), generator=g) for _ in range(n)]
    return SpeechSet(waves, ["turn on the lights in the kitchen"] * n, [str(i) for i in range(n)], [seconds] * n)


def synthesis_speed(n: int = 20) -> dict[str, float]:
    from reprozoo.data.espeak import Espeak
    from reprozoo.data.spoken_commands import CommandCorpusConfig, _plan, render

    tts = Espeak()
    plan = _plan(CommandCorpusConfig(n_pool=n, n_dev=1, n_test=1))[:n]
    audio = sum(render(item, tts).size for item in plan) / 16000  # one untimed pass: warm-up and audio length
    dt = measure_latency(lambda: [render(item, tts) for item in plan], warmup=0, repeats=1)["median_ms"] / 1000
    return {"utterances_per_s": n / dt, "audio_s_per_s": audio / dt}


def trial_throughput(threads: int, repeats: int = 2, steps: int = 6) -> dict[str, float]:
    """Trials per CPU-second and per wall-second of one small CR trial run with ``threads`` torch
    threads (median of ``repeats``; the caller's thread count is restored)."""
    import time

    from reprozoo.activeasr.loop import ALConfig, run_active_learning

    data = _speech(40, seconds=1.0)
    pool = SpeechSet(data.waves[:32], data.texts[:32], data.ids[:32], data.durations[:32])
    test = SpeechSet(data.waves[32:], data.texts[32:], data.ids[32:], data.durations[32:])
    al = ALConfig(acquisition="least_confidence", unsup="cr", initial=8, per_round=8, rounds=1, steps_per_round=steps)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    cpu, wall = [], []
    try:
        with torch.random.fork_rng():  # the same initial weights every repeat; the caller's RNG untouched
            for _ in range(repeats + 1):  # the first call warms up (allocations, kernels)
                torch.manual_seed(0)
                trainer = CTCTrainer(create_model("ctc_tcn_tiny"), TrainSettings(batch_size=8, mu=1, tau=0.0),
                                     total_steps=2 * steps, generator=torch.Generator().manual_seed(0))
                c0, w0 = time.process_time(), time.perf_counter()
                run_active_learning(trainer, pool, test, al, rng=np.random.default_rng(0))
                cpu.append(time.process_time() - c0)
                wall.append(time.perf_counter() - w0)
    finally:
        torch.set_num_threads(before)
    c, w = float(np.median(cpu[1:])), float(np.median(wall[1:]))
    return {"threads": threads, "cpu_s_per_trial": c, "wall_s_per_trial": w, "trials_per_cpu_s": 1 / c,
            "trials_per_wall_s": 1 / w}


@register_benchmark("activeasr", description="CTC inference RTF (batch 1 vs 32), training utt/s with vs without CR, "
                                            "espeak-ng corpus synthesis speed")
def run(quick: bool = False, model: str = "ctc_tcn_tiny") -> dict[str, Any]:
    with torch.random.fork_rng(devices=[]):  # seeded weights; the caller's global RNG untouched
        torch.manual_seed(0)
        net = create_model(model).eval()
    feat = Featurizer()
    data = _speech(32)
    lat = {"warmup": 1, "repeats": 3 if quick else 10}

    def infer(batch):
        with torch.no_grad():
            net(*feat(data.waves[:batch]))

    ms = {b: measure_latency(lambda b=b: infer(b), **lat)["median_ms"] for b in (1, 32)}
    b1, b32 = ms[1] / 1000 / 2.0, ms[32] / 1000 / (32 * 2.0)
    work = {b: count_call_flops(infer, b) for b in (1, 32)}  # features + forward, one timed call
    model_work = {b: count_flops(net, *feat(data.waves[:b])) for b in (1, 32)}
    rows: list[dict[str, Any]] = [{"model": model, "params": count_params(net),
                                   "macs_2s_utterance": count_macs(net, *feat(data.waves[:1]))},
                                  {"measure": "inference RTF", "batch1": round(b1, 5), "batch32": round(b32, 5)}]
    steps = 2 if quick else 5
    tput: dict[str, float] = {}
    step_ms: dict[str, float] = {}
    step_flops: dict[str, int] = {}
    for mode in ("none", "cr"):
        trainer = CTCTrainer(create_model(model), TrainSettings(batch_size=16, mu=2, tau=0.0, ramp_frac=0.0),
                             total_steps=steps + 1, generator=torch.Generator().manual_seed(0))
        trainer.train(data, list(range(16)), list(range(16, 32)), 1, mode)  # warm-up
        replay = copy.deepcopy(trainer)  # same weights, optimiser, step and generator as the timing starts from
        step_ms[mode] = measure_latency(lambda m=mode, t=trainer: t.train(data, list(range(16)), list(range(16, 32)), 1, m),
                                        warmup=0, repeats=steps)["median_ms"]
        tput[mode] = 16 / (step_ms[mode] / 1000)
        step_flops[mode] = count_call_flops(replay.train, data, list(range(16)), list(range(16, 32)), steps,
                                            mode) // steps
    peak = matmul_peak_flops(min_time_s=0.2 if quick else 0.5)  # same run, same thread count
    frac = lambda f, t: round(limit_fraction(f, t, peak), 4)  # noqa: E731
    rows[1].update({"batch1_ms": round(ms[1], 3), "batch32_ms": round(ms[32], 3),
                    "batch1_flops": work[1], "batch32_flops": work[32],
                    "batch1_feature_flops": work[1] - model_work[1], "batch32_feature_flops": work[32] - model_work[32],
                    "batch1_limit_fraction": frac(work[1], ms[1]), "batch32_limit_fraction": frac(work[32], ms[32]),
                    "flops_note": "per call: model forward + log-mel filterbank matmul; STFT (FFT) not counted"})
    rows.append({"measure": "training labelled utt/s", "supervised": round(tput["none"], 2), "with CR": round(tput["cr"], 2),
                 "supervised_ms_per_step": round(step_ms["none"], 2), "with_cr_ms_per_step": round(step_ms["cr"], 2),
                 "supervised_flops_per_step": step_flops["none"], "with_cr_flops_per_step": step_flops["cr"],
                 "supervised_limit_fraction": frac(step_flops["none"], step_ms["none"]),
                 "with_cr_limit_fraction": frac(step_flops["cr"], step_ms["cr"]),
                 "flops_note": "per step of 16 labelled utterances, forward + backward (features included as above)"})
    cores = max(1, os.cpu_count() or 1)
    per = {t: trial_throughput(t, repeats=1 if quick else 3, steps=2 if quick else 6) for t in (cores, 1)}  # default (all cores), then 1
    rows.append({"measure": "trials per CPU-second (small CR trial)", "cores": cores,
                 **{f"threads{t}_{k}": round(v, 4) for t, r in per.items() for k, v in r.items() if k != "threads"}})
    synth = synthesis_speed(8 if quick else 30)
    rows.append({"measure": "corpus synthesis", **{k: round(v, 2) for k, v in synth.items()},
                 "flops_note": "espeak-ng + numpy post-processing: not counted (outside torch)"})
    ratios = {"inference RTF batch32/batch1": b32 / b1, "training throughput CR/supervised": tput["cr"] / tput["none"],
              "synthesis audio seconds per second": synth["audio_s_per_s"],
              "trials per CPU-second, 1 thread / all cores": per[1]["trials_per_cpu_s"] / per[cores]["trials_per_cpu_s"]}
    return {"rows": rows, "ratios": {k: round(float(v), 4) for k, v in ratios.items()},
            "threads": torch.get_num_threads(), "peak_flops": peak, "batch1_rtf_below_1": bool(np.float64(b1) < 1.0)}
