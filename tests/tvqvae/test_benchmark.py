import pytest
import torch

from reprozoo.data.textcorpora import fortunes_available
from reprozoo.runtime.registry import get_benchmark

needs_fortunes = pytest.mark.skipif(not fortunes_available(), reason="the Debian fortunes package is not installed")


@pytest.fixture(scope="module")
def quick_bench():
    import reprozoo.tvqvae.benchmark  # noqa: F401  (registers the benchmark)

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return get_benchmark("tvqvae").run(quick=True, k=3, per_category=12, trials=False)
    finally:
        torch.set_num_threads(before)  # the other tests of this worker keep their thread count


@needs_fortunes
def test_benchmark_reports_every_stage_as_ratios_of_one_run(quick_bench):
    out = quick_bench
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


@needs_fortunes
def test_benchmark_flops_are_the_work_of_each_timed_stage(quick_bench):
    """The encode's flops equal a fresh count of encoding the kept documents; the fits' epoch
    extrapolations equal (ProdLDA: exactly; TVQ-VAE: within the dead-code restarts) a count of the
    whole fit; numpy stages carry a note and no fraction; limit_fraction = flops / s / peak."""
    from reprozoo.data.textcorpora import load_fortunes
    from reprozoo.runtime.profile import count_call_flops
    from reprozoo.tvqvae import baselines
    from reprozoo.tvqvae.embeddings import TokenEncoder
    from reprozoo.tvqvae.estimator import TVQVAE, prepare_corpus

    out = quick_bench
    stages = {r["stage"].split(" (")[0]: r for r in out["rows"][1:-1]}
    enc = TokenEncoder(max_len=128, cache=False)
    data = prepare_corpus(load_fortunes(max_per_category=12, min_words=3), enc, min_df=3)
    assert stages["encode"]["flops"] == count_call_flops(enc.encode, data.texts)
    assert stages["fit prodlda"]["flops"] == count_call_flops(baselines.prodlda, data, 3, 0, epochs=50)
    whole = count_call_flops(TVQVAE(3, vq_hidden=(128, 128, 256), vq_max_tokens=10000, vq_epochs=3,
                                    topic_epochs=50).fit_prepared, data)
    assert stages["fit tvq"]["flops"] == pytest.approx(whole, rel=0.01)
    assert stages["fit tvq"]["flops"] > stages["fit prodlda"]["flops"] > 0  # TVQ-VAE adds the VQ stage
    for name in ("fit lda", "fit cluster"):
        assert "not counted" in stages[name]["flops_note"]
        assert "flops" not in stages[name] and "limit_fraction" not in stages[name]
    assert out["threads"] == out["rows"][0]["threads"] == 1 and out["peak_flops"] > 0
    for name in ("encode", "fit tvq", "fit prodlda"):
        row = stages[name]
        expect = row["flops"] / (row["ms"] / 1000) / out["peak_flops"]
        assert row["limit_fraction"] == pytest.approx(expect, abs=1e-4) and 0 < row["limit_fraction"] < 1.5


def test_trial_throughput_compares_per_trial_and_shared_preparation_in_one_run():
    from reprozoo.tvqvae.benchmark_trials import trial_throughput
    from reprozoo.tvqvae.experiment import TVQConfig

    cfg = TVQConfig.from_preset("smoke", ["arms=[tvq,lda,cluster,random,planted]", "topic_epochs=5", "vq_epochs=1"])
    before = torch.get_num_threads()
    out = trial_throughput(seeds=(0,), cfg=cfg)
    assert torch.get_num_threads() == before  # restored
    per, shared = out["rows"]
    assert (per["mode"], shared["mode"]) == ("per_trial", "shared") and per["trials"] == shared["trials"] == 5
    assert out["identical_results"] is True  # sharing the corpus changes no number
    ratio = out["ratios"]["trials/cpu-s shared / per_trial"]
    assert ratio == pytest.approx(per["cpu_s"] / shared["cpu_s"], rel=0.02)
    assert shared["trials_per_cpu_s"] == pytest.approx(5 / shared["cpu_s"], rel=0.02)
