"""``reprozoo bench tvqvae``: encoding and fitting time of TVQ-VAE against gensim LDA, ProdLDA and
k-means embedding clustering on the same corpus and vocabulary, as ratios to LDA's fit time
measured in the same run (fortunes topical categories; the procedural corpus when the fortunes
package is not installed). Also the VQ autoencoder's parameters and MACs per token."""

from __future__ import annotations

import os
import time
from typing import Any

import torch

from reprozoo.data.textcorpora import fortunes_available, load_fortunes, procedural_corpus
from reprozoo.runtime.profile import count_macs, count_params
from reprozoo.runtime.registry import register_benchmark
from reprozoo.tvqvae import baselines
from reprozoo.tvqvae.embeddings import TokenEncoder
from reprozoo.tvqvae.estimator import TVQVAE, prepare_corpus
from reprozoo.tvqvae.models import VQAutoEncoder


def _timed(fn) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process, all threads) of one call."""
    start, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - start, time.process_time() - cpu


@register_benchmark("tvqvae", description="TVQ-VAE encode + fit time vs LDA, ProdLDA, embedding clustering "
                                           "(ratios to LDA's fit time, same run)")
def run(quick: bool = False, k: int = 10, per_category: int = 0) -> dict[str, Any]:
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
    vq = VQAutoEncoder(data.encoded.dim)
    rows = [
        {"corpus": corpus.source.split(":")[0], "docs": len(data.texts), "vocab": len(data.vocab),
         "tokens": len(data.encoded.words), "K": k, "threads": torch.get_num_threads()},
        {"stage": "encode (MiniLM, whole-word tokens)", "seconds": round(encode_s, 2), "cpu_s": round(encode_cpu, 2)},
        *({"stage": f"fit {name}", "seconds": round(w, 2), "cpu_s": round(c, 2)} for name, (w, c) in times.items()),
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
    return {"rows": rows, "ratios": ratios, "load_average": list(os.getloadavg())}
