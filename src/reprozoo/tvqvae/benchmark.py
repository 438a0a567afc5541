"""``reprozoo bench tvqvae``: encoding and fitting time of TVQ-VAE against gensim LDA, ProdLDA and
k-means embedding clustering on the same corpus and vocabulary, as ratios to LDA's fit time
measured in the same run (fortunes topical categories; the procedural corpus when the fortunes
package is not installed). Also the VQ autoencoder's parameters and MACs per token.

Every stage row carries ``ms`` (its wall time, the timed unit is the whole stage: one encode of
the corpus, one fit) and, where the work runs in torch, ``flops``: the conv/matmul FLOPs of that
whole stage (forward and backward, a multiply-add = 2 FLOPs; elementwise ops, top-k and the
optimiser are not counted), from ``count_call_flops`` on fresh copies after the timings:

- encode: one more ``prepare_corpus`` of the same corpus (the MiniLM forwards, padding included);
- fit tvq / fit prodlda: the fit is not counted whole (that would double the benchmark's time)
  but from short fits of fresh estimators with the same settings and seed, one epoch extrapolated
  to the timed epochs: TVQ-VAE ``F(1, 1) + (vq_epochs - 1) (F(2, 1) - F(1, 1)) + (topic_epochs - 1)
  (F(1, 2) - F(1, 1))`` with ``F(v, t)`` a fit of v VQ and t topic epochs; ProdLDA ``P(1) +
  (epochs - 1) (P(2) - P(1))``. Exact when every epoch does the same work; the VQ epochs differ
  only by the dead-code restarts (a forward of a few tokens), and by the token subsample when the
  corpus exceeds ``vq_max_tokens``;
- fit lda (gensim, numpy) and fit cluster (scikit-learn k-means): not counted, said in
  ``flops_note``, and no ``limit_fraction``.

``limit_fraction`` = the stage's achieved FLOP/s (``flops`` over ``ms``) as a fraction of
``peak_flops``, the float32 1024x1024 ``torch.mm`` throughput measured right after the timings with
the same ``threads``: near 1 is compute-bound, a few percent is overhead-bound.

``trials=True`` (the default) adds the experiment's trials per CPU-second, every trial preparing
its own corpus vs the corpus shared by the trials of a process, in the same run
(:mod:`reprozoo.tvqvae.benchmark_trials`)."""

from __future__ import annotations

import os
import time
from typing import Any

import torch

from reprozoo.data.textcorpora import fortunes_available, load_fortunes, procedural_corpus
from reprozoo.runtime.profile import (
    add_limit_fraction,
    count_call_flops,
    count_macs,
    count_params,
    matmul_peak_flops,
)
from reprozoo.runtime.registry import register_benchmark
from reprozoo.tvqvae import baselines
from reprozoo.tvqvae.corpus import prepare_corpus
from reprozoo.tvqvae.embeddings import TokenEncoder
from reprozoo.tvqvae.estimator import TVQVAE
from reprozoo.tvqvae.models import VQAutoEncoder


def _timed(fn) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process, all threads) of one call."""
    start, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - start, time.process_time() - cpu


@register_benchmark("tvqvae", description="TVQ-VAE encode + fit time vs LDA, ProdLDA, embedding clustering "
                                           "(ratios to LDA's fit time, same run)")
def run(quick: bool = False, k: int = 10, per_category: int = 0, trials: bool = True) -> dict[str, Any]:
    per = per_category or (60 if quick else 200)
    corpus = (load_fortunes(max_per_category=per, min_words=3) if fortunes_available()
              else procedural_corpus(per * 4, 4))
    enc = TokenEncoder(max_len=128, cache=False)
    enc.whole_word_vocab()
    enc._load()  # model loading is not part of the encoding time
    box = {}
    encode_s, encode_cpu = _timed(lambda: box.setdefault("data", prepare_corpus(corpus, enc, min_df=3)))
    data = box["data"]
    epochs = {"vq_epochs": 3 if quick else 10, "topic_epochs": 50 if quick else 200}
    tvq = TVQVAE(k, vq_hidden=(128, 128, 256), vq_max_tokens=10000, **epochs)
    times = {
        "lda": _timed(lambda: baselines.lda(data, k, 0, passes=5 if quick else 10)),
        "tvq": _timed(lambda: tvq.fit_prepared(data)),
        "prodlda": _timed(lambda: baselines.prodlda(data, k, 0, epochs=epochs["topic_epochs"])),
        "cluster": _timed(lambda: baselines.embedding_clusters(data, k, 0)),
    }
    threads = torch.get_num_threads()
    peak = matmul_peak_flops(min_time_s=0.2 if quick else 0.5)  # same run, same thread count as the timings
    work = stage_flops(corpus, enc, data, k, tvq, epochs["topic_epochs"])
    vq = VQAutoEncoder(data.encoded.dim)
    stages = [{"stage": "encode (MiniLM, whole-word tokens)", "seconds": round(encode_s, 2),
               "cpu_s": round(encode_cpu, 2), "ms": round(encode_s * 1000, 1)},
              *({"stage": f"fit {name}", "seconds": round(w, 2), "cpu_s": round(c, 2), "ms": round(w * 1000, 1)}
                for name, (w, c) in times.items())]
    for row, name in zip(stages, ("encode", *times)):
        row.update(work[name])
    add_limit_fraction(stages, peak, ms_key="ms")
    rows = [
        {"corpus": corpus.source.split(":")[0], "docs": len(data.texts), "vocab": len(data.vocab),
         "tokens": len(data.encoded.words), "K": k, "threads": threads},
        *stages,
        {"model": "VQ autoencoder (paper widths, 384-d input)", "params": count_params(vq),
         "macs_per_token": count_macs(vq, torch.zeros(1, data.encoded.dim))},
    ]
    # wall-clock ratios (what a user waits) and CPU-time ratios (less sensitive to a shared machine's load)
    ratios = {f"{name} fit / LDA fit": times[name][0] / times["lda"][0] for name in ("tvq", "prodlda", "cluster")}
    ratios["encode / LDA fit"] = encode_s / times["lda"][0]
    # end to end: TVQ-VAE and clustering need the encoder pass, LDA and ProdLDA do not
    tvq_total = encode_s + times["tvq"][0]
    ratios["TVQ-VAE (encode + fit) / LDA fit"] = tvq_total / times["lda"][0]
    ratios["TVQ-VAE (encode + fit) / ProdLDA fit"] = tvq_total / times["prodlda"][0]
    ratios["TVQ-VAE (encode + fit) / clustering (encode + fit)"] = tvq_total / (encode_s + times["cluster"][0])
    cpu = {name: c for name, (_, c) in times.items()}
    ratios.update({f"CPU: {name} fit / LDA fit": cpu[name] / cpu["lda"] for name in ("tvq", "prodlda", "cluster")})
    ratios["CPU: encode / LDA fit"] = encode_cpu / cpu["lda"]
    out = {"rows": rows, "ratios": ratios, "load_average": list(os.getloadavg()), "peak_flops": peak,
           "threads": threads}
    if trials and fortunes_available():
        from reprozoo.tvqvae.benchmark_trials import trial_throughput

        res = trial_throughput(quick)
        out["rows"] += res["rows"]
        out["ratios"].update(res["ratios"])
        out["trials_identical"] = res["identical_results"]
        out["trial_settings"] = res["settings"]
        out["load_average_end"] = list(os.getloadavg())
    return out


def stage_flops(corpus, enc: TokenEncoder, data, k: int, tvq: TVQVAE, prodlda_epochs: int) -> dict[str, dict]:
    """``flops`` (and ``flops_note``) of each timed stage, counted on fresh copies (see the module
    docstring): the encode once more, the two torch fits from one- and two-epoch fits."""
    encode = count_call_flops(prepare_corpus, corpus, enc, min_df=3)
    params = tvq.get_params()

    def tvq_fit(v: int, t: int) -> int:
        return count_call_flops(TVQVAE(**{**params, "vq_epochs": v, "topic_epochs": t}).fit_prepared, data)

    f11, f21, f12 = tvq_fit(1, 1), tvq_fit(2, 1), tvq_fit(1, 2)
    v, t = tvq.vq_epochs, tvq.topic_epochs
    if v == 0:
        raise ValueError("the benchmark's TVQ-VAE fit needs at least one VQ epoch")
    tvq_total = f11 + (v - 1) * (f21 - f11) + (t - 1) * (f12 - f11)
    p1 = count_call_flops(baselines.prodlda, data, k, 0, epochs=1)
    p2 = count_call_flops(baselines.prodlda, data, k, 0, epochs=2)
    return {
        "encode": {"flops": encode, "flops_note": "counted: one more encode of the same corpus (MiniLM forwards)"},
        "lda": {"flops_note": "gensim LDA: not counted (numpy)"},
        "tvq": {"flops": tvq_total, "flops_note": f"one VQ epoch x {v} + one topic epoch x {t} + the fixed work "
                                                  "(codebook init, code histograms), from 1- and 2-epoch fits",
                "flops_per_vq_epoch": f21 - f11, "flops_per_topic_epoch": f12 - f11},
        "prodlda": {"flops": p1 + (prodlda_epochs - 1) * (p2 - p1),
                    "flops_note": f"one epoch x {prodlda_epochs} + the fixed work, from 1- and 2-epoch fits",
                    "flops_per_epoch": p2 - p1},
        "cluster": {"flops_note": "scikit-learn k-means: not counted (numpy)"},
    }
