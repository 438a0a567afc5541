import json
import shutil

import numpy as np
import pytest
from scipy import stats

from reprozoo.errors import ConfigError, DataError, UnknownNameError
from reprozoo.runtime.runner import run_experiment
from reprozoo.tvqvae.experiment import NMI_MARGIN, TQ_MARGIN, TQ_PLAN, TVQConfig, decide


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("tvq") / "smoke"
    return run_experiment("tvq-vae", "smoke", out_dir=out)


def test_smoke_preset_writes_the_contract(smoke_run):
    out, data = smoke_run
    assert data["verdict"] == "inconclusive" and "fewer than 3 seeds" in data["evidence"]
    head = data["headline"]  # the headline test, its negative control and its plan, as data
    assert head["verdict"] == "inconclusive" and head["test"]["kind"] == "superiority" and head["test"]["n"] == 1
    assert head["test"]["margin"] == TQ_MARGIN and head["negative_control"][0]["kind"] == "superiority"
    assert head["plan"]["sesoi"] == TQ_PLAN.sesoi and head["plan"]["planned_n"] == TQ_PLAN.planned_n
    m = data["metrics"]
    assert m["corpus/n_docs"] == 160 and m["corpus/skipped_docs"] == 0
    for group in ("method", "baseline_prodlda", "baseline_lda", "baseline_cluster", "control"):
        for key in ("npmi_best50_K4", "npmi_all_K4", "tq_best50_K4", "tq_all_K4", "nmi_kmeans_K4"):
            assert f"{group}/{key}" in m
        assert m[f"{group}/npmi_best50_K4"] >= m[f"{group}/npmi_all_K4"]  # best half >= all topics
        assert m[f"{group}/tq_best50_K4"] == pytest.approx(m[f"{group}/npmi_best50_K4"] *
                                                           m[f"{group}/diversity_best50_K4"])
    # the control is clearly worse than every fitted model on this easy corpus; the method is not at chance
    assert m["control/npmi_all_K4"] < 0 < m["method/npmi_best50_K4"]
    assert m["control/nmi_kmeans_K4"] < 0.15 < m["method/nmi_kmeans_K4"]
    assert [c["headline"] for c in data["claims"]] == [True, False, False, False]
    for fig in ("metrics_per_method", "tvq_best_topics"):
        assert (out / "figures" / f"{fig}.png").exists()
    trial = json.loads((out / "trials" / "tvq__seed0.json").read_text())["result"]
    assert len(trial["by_k"]["4"]["topics"]) == 4 and len(trial["by_k"]["4"]["topics"][0]) == 10


def test_resume_runs_only_the_missing_trial(smoke_run, tmp_path):
    out, data = smoke_run
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    victim = copy / "trials" / "lda__seed0.json"
    victim.unlink()  # as if that trial had been killed
    manifest = json.loads((copy / "run.json").read_text())
    (copy / "run.json").write_text(json.dumps({**manifest, "status": "interrupted"}))
    stamp = {p.name: p.stat().st_mtime_ns for p in (copy / "trials").glob("*.json")}
    _, again = run_experiment("tvq-vae", "smoke", out_dir=copy, resume=True, progress=False)
    assert again["metrics"] == data["metrics"] and victim.exists()
    assert all((copy / "trials" / n).stat().st_mtime_ns == t for n, t in stamp.items())


def _vals(tvq, best, control, nmi=(0.5, 0.5, 0.5)):
    arr = np.asarray
    return {"tvq": {"tq_best50": arr(tvq), "tq_all": arr(tvq), "nmi_kmeans": arr(nmi)},
            "prodlda": {"tq_best50": arr([0.01, 0.02, 0.0]), "tq_all": arr([0.01, 0.02, 0.0]),
                        "nmi_kmeans": arr([0.1, 0.1, 0.1])},
            "lda": {"tq_best50": arr(best), "tq_all": arr(best), "nmi_kmeans": arr([0.2, 0.21, 0.2])},
            "random": {"tq_best50": arr(control), "tq_all": arr(control), "nmi_kmeans": arr([0.0, 0.01, 0.0])}}


def test_rule_outcomes_on_crafted_numbers():
    assert TQ_MARGIN == 0.01 and NMI_MARGIN == 0.01
    base = ["prodlda", "lda"]
    lda, ctrl = np.array([0.10, 0.11, 0.10]), [-0.05, -0.04, -0.05]
    # beats the strongest alternative (LDA) with a gain of 0.11 +- 0.01: the interval clears the margin
    head, c = decide(_vals(lda + [0.10, 0.12, 0.11], lda, ctrl), base)
    assert head.verdict == c[0]["verdict"] == "held" and "strongest alternative 'lda'" in c[0]["evidence"]
    assert head.test.lower == pytest.approx(0.11 - stats.t.ppf(0.95, 2) * 0.01 / np.sqrt(3))  # 0.0931 > 0.01
    assert head.test.lower == pytest.approx(0.0931, abs=1e-4)
    assert head.gates["negative_control"][0].verdict == "held"
    assert c[2]["verdict"] == "held" and c[3]["verdict"] == "held"
    assert c[0]["test"]["plan"]["planned_n"] == TQ_PLAN.planned_n
    # beats ProdLDA but loses to the strongest alternative by 0.02 on every seed: a gain of the margin is excluded
    head, c = decide(_vals([0.08, 0.09, 0.08], lda, ctrl), base)
    assert head.verdict == "not held" and head.test.upper < TQ_MARGIN and c[3]["verdict"] == "held"
    # the control does not lose (it scores as high as the method) -> inconclusive
    head, c = decide(_vals([0.20, 0.21, 0.20], lda, [0.20, 0.22, 0.21]), base)
    assert c[0]["verdict"] == "inconclusive" and "cannot separate arms" in c[0]["evidence"]
    # a gain inside the margin on every seed is excluded from reaching it
    head, c = decide(_vals([0.105, 0.115, 0.105], lda, ctrl), base)
    assert head.verdict == "not held"
    # noisy gains of +0.03, -0.01, +0.05: the interval [-0.028, +0.075] contains the margin -> inconclusive,
    # and the run's MDE exceeds the plan's SESOI (underpowered), no "not held"
    head, c = decide(_vals(lda + [0.03, -0.01, 0.05], lda, ctrl), base)
    d = np.array([0.03, -0.01, 0.05])
    half = stats.t.ppf(0.95, 2) * d.std(ddof=1) / np.sqrt(3)
    assert (head.test.lower, head.test.upper) == pytest.approx((d.mean() - half, d.mean() + half))
    assert head.test.lower == pytest.approx(-0.0282, abs=1e-4) and head.test.upper == pytest.approx(0.0749, abs=1e-4)
    assert head.verdict == "inconclusive" and "underpowered" in head.evidence
    # two seeds are fewer than the rule's three
    two = {a: {m: v[:2] for m, v in arms.items()} for a, arms in _vals(lda + 0.2, lda, ctrl).items()}
    assert decide(two, base)[0].verdict == "inconclusive"


def test_config_checks_happen_before_any_work(tmp_path):
    with pytest.raises(ConfigError, match="arms must include"):
        TVQConfig.from_preset("smoke", ["arms=[tvq,lda]"])
    with pytest.raises(UnknownNameError, match="unknown arm"):
        TVQConfig.from_preset("smoke", ["arms=[tvq,bertopic,random]"])
    with pytest.raises(ConfigError, match="topics needs K values"):
        TVQConfig.from_preset("smoke", ["topics=[1]"])
    with pytest.raises(ConfigError, match="data_root"):
        TVQConfig.from_preset("smoke", ["corpus=file"])
    with pytest.raises(ConfigError, match="n_neighbors"):
        run_experiment("tvq-vae", "smoke", overrides=["n_neighbors=100"], out_dir=tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_bad_corpus_files_fail_before_any_work(tmp_path, tiny_encoder):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"a fine document about stars\nbroken \xff byte\n")
    with pytest.raises(DataError, match=r"bad.txt: line 2 is not valid UTF-8"):
        run_experiment("tvq-vae", "smoke", overrides=["corpus=file", f"data_root={bad}"], out_dir=tmp_path / "x")
    assert not (tmp_path / "x").exists()
    with pytest.raises(DataError, match="does not exist"):
        TVQConfig.from_preset("smoke", ["corpus=file", f"data_root={tmp_path / 'nope.txt'}"])
    # K larger than the corpus: refused after preprocessing, before the encoder runs or any trial starts
    small = tmp_path / "small.txt"
    small.write_text("\n".join(["stars and planets orbit", "planets orbit stars", "cheese and bread",
                                 "bread with cheese", "stars over bread"] * 2))
    with pytest.raises(DataError, match=r"K=20 is larger than the number of documents \(10\)"):
        run_experiment("tvq-vae", "smoke", overrides=["corpus=file", f"data_root={small}", "topics=[20]",
                                                      f"encoder={tiny_encoder}", "min_df=1", "max_df=1.0"],
                       out_dir=tmp_path / "y")
    assert not list((tmp_path / "y").glob("trials/*.json"))
