"""``reprozoo bench activeasr``: real-time factors and throughputs, all measured in one run.

- inference real-time factor (compute seconds per audio second, features included) at batch 1 and
  batched (32 utterances), and their ratio;
- training throughput (labelled utterances per second) of a supervised step and of a step with
  the consistency-regularisation branch (teacher decode + strong view), and their ratio (the cost
  of CR per step);
- corpus synthesis speed (espeak-ng + post-processing): audio seconds produced per second.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from reprozoo.activeasr.features import Featurizer
from reprozoo.activeasr.training import CTCTrainer, SpeechSet, TrainSettings
from reprozoo.runtime.profile import count_macs, count_params, measure_latency
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
    render(plan[0], tts)  # warm-up
    t0 = time.perf_counter()
    audio = sum(render(item, tts).size for item in plan) / 16000
    dt = time.perf_counter() - t0
    return {"utterances_per_s": n / dt, "audio_s_per_s": audio / dt}


@register_benchmark("activeasr", description="CTC inference RTF (batch 1 vs 32), training utt/s with vs without CR, "
                                            "espeak-ng corpus synthesis speed")
def run(quick: bool = False, model: str = "ctc_tcn_tiny") -> dict[str, Any]:
    torch.manual_seed(0)
    net = create_model(model).eval()
    feat = Featurizer()
    data = _speech(32)
    lat = {"warmup": 1, "repeats": 3 if quick else 10}

    def infer(batch):
        with torch.no_grad():
            net(*feat(data.waves[:batch]))

    b1 = measure_latency(lambda: infer(1), **lat)["median_ms"] / 1000 / 2.0
    b32 = measure_latency(lambda: infer(32), **lat)["median_ms"] / 1000 / (32 * 2.0)
    rows: list[dict[str, Any]] = [{"model": model, "params": count_params(net),
                                   "macs_2s_utterance": count_macs(net, *feat(data.waves[:1]))},
                                  {"measure": "inference RTF", "batch1": round(b1, 5), "batch32": round(b32, 5)}]
    steps = 2 if quick else 5
    tput = {}
    for mode in ("none", "cr"):
        trainer = CTCTrainer(create_model(model), TrainSettings(batch_size=16, mu=2, tau=0.0, ramp_frac=0.0),
                             total_steps=steps + 1, generator=torch.Generator().manual_seed(0))
        trainer.train(data, list(range(16)), list(range(16, 32)), 1, mode)  # warm-up
        t0 = time.perf_counter()
        trainer.train(data, list(range(16)), list(range(16, 32)), steps, mode)
        tput[mode] = steps * 16 / (time.perf_counter() - t0)
    rows.append({"measure": "training labelled utt/s", "supervised": round(tput["none"], 2), "with CR": round(tput["cr"], 2)})
    synth = synthesis_speed(8 if quick else 30)
    rows.append({"measure": "corpus synthesis", **{k: round(v, 2) for k, v in synth.items()}})
    ratios = {"inference RTF batch32/batch1": b32 / b1, "training throughput CR/supervised": tput["cr"] / tput["none"],
              "synthesis audio seconds per second": synth["audio_s_per_s"]}
    return {"rows": rows, "ratios": {k: round(float(v), 4) for k, v in ratios.items()},
            "threads": torch.get_num_threads(), "batch1_rtf_below_1": bool(np.float64(b1) < 1.0)}
