import pytest
import torch

from reprozoo.activeasr.benchmark import run, synthesis_speed


@pytest.fixture(scope="module")
def quick_run():
    torch.set_num_threads(1)
    return run(quick=True)


def test_benchmark_reports_ratios_from_one_run(quick_run):
    out = quick_run
    rows = {r.get("measure", "model"): r for r in out["rows"]}
    assert rows["model"]["params"] == 273_741 and rows["model"]["macs_2s_utterance"] > 0
    rtf = rows["inference RTF"]
    assert out["ratios"]["inference RTF batch32/batch1"] == pytest.approx(rtf["batch32"] / rtf["batch1"], rel=0.02)
    tput = rows["training labelled utt/s"]
    assert out["ratios"]["training throughput CR/supervised"] == pytest.approx(tput["with CR"] / tput["supervised"],
                                                                              rel=0.02)
    assert out["ratios"]["synthesis audio seconds per second"] > 0
    trials = rows["trials per CPU-second (small CR trial)"]
    cores = trials["cores"]
    assert out["ratios"]["trials per CPU-second, 1 thread / all cores"] == pytest.approx(
        trials["threads1_trials_per_cpu_s"] / trials[f"threads{cores}_trials_per_cpu_s"], rel=0.02)
    assert trials["threads1_trials_per_cpu_s"] == pytest.approx(1 / trials["threads1_cpu_s_per_trial"], rel=0.02)
    assert out["threads"] == 1  # the caller's thread count is restored


def test_synthesis_speed_counts_audio():
    s = synthesis_speed(2)
    assert s["utterances_per_s"] > 0 and s["audio_s_per_s"] > s["utterances_per_s"] * 0.5


def test_benchmark_reports_flops_and_fraction_of_peak(quick_run):
    from reprozoo.activeasr.features import Featurizer
    from reprozoo.runtime.profile import count_flops
    from reprozoo.runtime.registry import create_model

    out = quick_run
    rows = {r.get("measure", "model"): r for r in out["rows"]}
    assert out["peak_flops"] > 0 and out["threads"] == 1
    inf = rows["inference RTF"]
    # independent count: the model's forward on one 2 s utterance + the log-mel filterbank matmul
    # (40 mels x 201 FFT bins x 201 frames, 2 FLOPs per multiply-add); the STFT is not counted
    wave = 0.1 * torch.randn(32000, generator=torch.Generator().manual_seed(0))
    model_flops = count_flops(create_model("ctc_tcn_tiny"), *Featurizer()([wave]))
    assert model_flops == 2 * rows["model"]["macs_2s_utterance"]
    assert inf["batch1_feature_flops"] == 2 * 40 * 201 * 201
    assert inf["batch1_flops"] == model_flops + 2 * 40 * 201 * 201
    assert inf["batch32_flops"] == 32 * inf["batch1_flops"]
    tr = rows["training labelled utt/s"]
    # a step is forward + backward of 16 utterances: more than 2x, at most 3x their forward work;
    # CR adds a teacher pass and a student pass on 32 unlabelled utterances
    assert 2 * 16 * inf["batch1_flops"] < tr["supervised_flops_per_step"] <= 3 * 16 * inf["batch1_flops"]
    assert tr["with_cr_flops_per_step"] > tr["supervised_flops_per_step"] + 32 * model_flops
    pairs = [(inf, "batch1_flops", "batch1_ms", "batch1_limit_fraction"),
             (inf, "batch32_flops", "batch32_ms", "batch32_limit_fraction"),
             (tr, "supervised_flops_per_step", "supervised_ms_per_step", "supervised_limit_fraction"),
             (tr, "with_cr_flops_per_step", "with_cr_ms_per_step", "with_cr_limit_fraction")]
    for row, f, ms, frac in pairs:  # limit_fraction is rounded to 4 digits: compare with abs=2e-4
        achieved = row[f] / (row[ms] / 1000) / out["peak_flops"]
        assert row[frac] == pytest.approx(achieved, rel=0.02, abs=2e-4) and 0 < achieved < 1.5
    synth = rows["corpus synthesis"]
    assert "flops" not in synth and "limit_fraction" not in synth and "not counted" in synth["flops_note"]


def test_the_trial_throughput_leaves_the_callers_random_state_alone():
    from reprozoo.activeasr.benchmark import trial_throughput

    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    assert trial_throughput(1, repeats=1, steps=1)["trials_per_cpu_s"] > 0
    assert torch.equal(torch.rand(3), expected)
