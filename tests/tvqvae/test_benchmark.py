import pytest
import torch

from reprozoo.data.textcorpora import fortunes_available
from reprozoo.runtime.registry import get_benchmark


@pytest.mark.skipif(not fortunes_available(), reason="the Debian fortunes package is not installed")
def test_benchmark_reports_every_stage_as_ratios_of_one_run():
    torch.set_num_threads(1)
    import reprozoo.tvqvae.benchmark  # noqa: F401  (registers the benchmark)

    out = get_benchmark("tvqvae").run(quick=True, k=3, per_category=12)
    corpus, *stages, model = out["rows"]
    assert corpus["corpus"] == "fortunes" and corpus["K"] == 3 and corpus["docs"] > 100
    assert [s["stage"] for s in stages] == ["encode (MiniLM, whole-word tokens)", "fit lda", "fit tvq",
                                            "fit prodlda", "fit cluster"]
    assert all(s["seconds"] > 0 and s["cpu_s"] >= 0 for s in stages)
    assert model["params"] == 2_118_484  # the paper-width VQ autoencoder at MiniLM's 384-d input
    for name in ("tvq", "prodlda", "cluster"):
        assert out["ratios"][f"{name} fit / LDA fit"] > 0 and f"CPU: {name} fit / LDA fit" in out["ratios"]
    assert {"encode / LDA fit", "TVQ-VAE (encode + fit) / clustering (encode + fit)"} <= set(out["ratios"])
    assert len(out["load_average"]) == 3
