import json

import pytest

from reprozoo.cli import main
from reprozoo.errors import ConfigError, UnknownNameError
from reprozoo.rainbow.experiment import RainbowConfig
from reprozoo.runtime.runner import run_experiment


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("rm") / "smoke"
    return run_experiment("rainbow-memory", "smoke", out_dir=out)


def test_smoke_preset_writes_the_contract(smoke_run):
    out, data = smoke_run
    assert data["verdict"] == "inconclusive"  # one seed cannot decide the claim
    assert "fewer than 5 seeds" in data["evidence"]
    m = data["metrics"]
    for key in ("method/A_last_K20", "baseline/A_last_K20", "finetune/A_last_K20", "method/F_last_K20",
                "method/I_last_K20", "joint/acc"):
        assert key in m
    assert 0 <= m["baseline/A_last_K20"] <= 100 and m["joint/acc"] > 50
    assert m["method/I_last_K20"] == pytest.approx(m["joint/acc"] - m["method/A_last_K20"])
    assert m["scenario/foreign_share"] == pytest.approx(0.1, abs=0.01)
    for fig in ("accuracy_per_task", "memory_class_histogram", "rm_kept_samples", "rm_minus_er_gap"):
        assert (out / "figures" / f"{fig}.png").exists()
    seed = json.loads((out / "seeds" / "seed0.json").read_text())
    assert sum(seed["runs"]["rm/K20"]["memory_hist"]) == 20
    assert seed["runs"]["rm/K20"]["memory_hist"] == [2] * 10


def test_resume_reuses_finished_seeds(smoke_run):
    out, data = smoke_run
    _, again = run_experiment("rainbow-memory", "smoke", out_dir=out, resume=True)
    assert again["metrics"] == data["metrics"]


def test_config_errors():
    with pytest.raises(UnknownNameError, match="unknown variant"):
        RainbowConfig.from_preset("smoke", ["variants=[rm,er,icarl]"])
    with pytest.raises(ConfigError, match=r"memory size K=5 is smaller than the number of classes \(10\)"):
        RainbowConfig.from_preset("smoke", ["memory_sizes=[5]"])
    with pytest.raises(UnknownNameError, match="unknown method 'lwf'"):
        RainbowConfig.from_preset("smoke", ["cl.method=lwf"])
    with pytest.raises(UnknownNameError, match="unknown dataset 'svhn'"):
        RainbowConfig.from_preset("smoke", ["dataset=svhn"])
    with pytest.raises(UnknownNameError, match="unknown model 'resnet9'; choose one of: rm_cnn_digits"):
        RainbowConfig.from_preset("smoke", ["model=resnet9"])
    with pytest.raises(UnknownNameError, match="unknown memory policy 'fifo'"):
        RainbowConfig.from_preset("smoke", ["cl.policy=fifo"])


def test_cli_prints_one_line_error(tmp_path, capsys):
    code = main(["run", "rainbow-memory", "--preset", "smoke", "--set", "memory_sizes=[3]",
                 "--out", str(tmp_path / "x")])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: memory size K=3 is smaller than the number of classes") and err.count("\n") == 1
    assert not (tmp_path / "x").exists()


def test_split_command_writes_a_partition(tmp_path, capsys):
    out = tmp_path / "split.json"
    assert main(["rainbow-split", "--blur", "0.3", "--share", "legacy", "--seed", "1", "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    idx = sorted(i for t in data["tasks"] for i in t["indices"])
    assert idx == list(range(len(idx))) and len(idx) > 1300
    assert all(abs(t["foreign_share"] - 0.24) < 0.02 for t in data["tasks"])  # 0.8 * M for T = 5
    assert main(["rainbow-split", "--tasks", "3", "--out", str(out)]) == 2
    assert "cannot be split into 3 equal tasks" in capsys.readouterr().err


def test_paper_preset_without_data_fails_before_writing(tmp_path, capsys):
    cfg = RainbowConfig.from_preset("paper", [f"data_root={tmp_path}", "dataset=digits"])
    assert cfg.model == "rm_resnet18_cifar" and cfg.memory_sizes == [200, 500, 1000]
    assert cfg.cl.schedule == "warm_restarts" and cfg.share == "legacy"
    code = main(["run", "rainbow-memory", "--preset", "paper", "--set", f"data_root={tmp_path}",
                 "--out", str(tmp_path / "run")])
    assert code == 2
    assert "cifar10 not found: put the extracted python version at" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_mlp_backbone_gets_the_flattened_input_width(tmp_path):
    # regression: MLP models used to be built for MNIST's 2352 inputs and crashed on 8x8 digits
    _, data = run_experiment("rainbow-memory", "smoke", overrides=["model=rm_mlp400", "variants=[rm,er]"],
                             out_dir=tmp_path / "mlp")
    assert 0.0 <= data["metrics"]["method/A_last_K20"] <= 100.0
