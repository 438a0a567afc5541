import pytest
import torch

from reprozoo.activeasr.benchmark import run, synthesis_speed


def test_benchmark_reports_ratios_from_one_run():
    torch.set_num_threads(1)
    out = run(quick=True)
    rows = {r.get("measure", "model"): r for r in out["rows"]}
    assert rows["model"]["params"] == 273_741 and rows["model"]["macs_2s_utterance"] > 0
    rtf = rows["inference RTF"]
    assert out["ratios"]["inference RTF batch32/batch1"] == pytest.approx(rtf["batch32"] / rtf["batch1"], rel=0.02)
    tput = rows["training labelled utt/s"]
    assert out["ratios"]["training throughput CR/supervised"] == pytest.approx(tput["with CR"] / tput["supervised"],
                                                                              rel=0.02)
    assert out["ratios"]["synthesis audio seconds per second"] > 0


def test_synthesis_speed_counts_audio():
    s = synthesis_speed(2)
    assert s["utterances_per_s"] > 0 and s["audio_s_per_s"] > s["utterances_per_s"] * 0.5
