import json

import pytest

from reprozoo.cli import main
from reprozoo.errors import ConfigError, UnknownNameError
from reprozoo.rainbow.experiment import PLAN, RainbowConfig, build_trials
from reprozoo.runtime.runner import run_experiment


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("rm") / "smoke"
    return run_experiment("rainbow-memory", "smoke", out_dir=out, overrides=["executor.kind=serial"],
                          progress=False)


def data_table(out):
    text = (out / "report.md").read_text()
    rows = [line.split("|")[1:-1] for line in text.splitlines() if line.startswith("| rm_")]
    return [{"backbone": r[0].strip(), "variant": r[2].strip()} for r in rows]


def _numbers(data):
    return data["metrics"], [(c["claim"], c["verdict"], c["evidence"], c["headline"]) for c in data["claims"]]


def test_smoke_preset_writes_the_contract(smoke_run):
    out, data = smoke_run
    assert data["verdict"] == "inconclusive"  # one seed cannot decide the claim
    assert "fewer than 3 seeds" in data["evidence"]
    heads = [c for c in data["claims"] if c["headline"]]
    assert len(heads) == 1 and heads[0]["claim"] == data["claim"] and heads[0]["verdict"] == data["verdict"]
    assert "strongest alternative 'balanced'" in data["evidence"] or "strongest alternative 'er'" in data["evidence"]
    m = data["metrics"]
    for key in ("method/A_last_mlp_B10_K40", "er/A_last_mlp_B10_K40", "balanced/A_last_mlp_B10_K40",
                "finetune/A_last_mlp_B10", "rm_da/A_last_mlp_B10_K40", "method/A_last_mlp_B0_K40",
                "er/A_last_mlp_B0_K40", "method/F_last_mlp_B10_K40", "joint/acc_mlp", "mechanism/u_spread_mlp_K40"):
        assert key in m
    assert "rm_da/A_last_mlp_B0_K40" not in m  # context arms run at the main blur only
    assert [r["variant"] for r in data_table(out)].count("finetune") == 2  # once per blur, not per K
    assert m["method/I_last_mlp_B10_K40"] == pytest.approx(m["joint/acc_mlp"] - m["method/A_last_mlp_B10_K40"])
    assert m["scenario/foreign_share_mlp_B10"] == pytest.approx(0.1, abs=0.01)
    assert m["scenario/foreign_share_mlp_B0"] == 0.0
    for fig in ("accuracy_per_task", "memory_class_histogram", "rm_kept_samples", "a_last_per_blur", "paired_gaps"):
        assert (out / "figures" / f"{fig}.png").exists()
    rm = json.loads((out / "trials" / "rm__seed0__backbonerm_mlp_digits__blur0.1__k40.json").read_text())
    assert rm["trial"] == {"arm": "rm", "seed": 0, "params": {"backbone": "rm_mlp_digits", "blur": 0.1, "k": 40}}
    assert rm["result"]["memory_hist"] == [4] * 10
    assert 100 * rm["result"]["A_last"] == pytest.approx(m["method/A_last_mlp_B10_K40"])
    # the gates are in the headline's record: positive control, mechanism (spread + slots), negative control
    head = heads[0]["test"]
    assert {"positive_control", "mechanism", "negative_control", "calibration"} <= set(head)
    assert head["mechanism"][1]["estimate"] == 4  # slots per class at K=40
    assert head["mechanism"][0]["estimate"] == pytest.approx(m["mechanism/u_spread_mlp_K40"])
    assert head["plan"]["planned_n"] == PLAN.seeds
    assert len(list((out / "trials").glob("*.json"))) == len(build_trials(RainbowConfig.from_preset("smoke")))


def test_serial_and_local_executors_give_identical_metrics(smoke_run, tmp_path):
    _, serial = smoke_run
    _, local = run_experiment("rainbow-memory", "smoke", out_dir=tmp_path / "local",
                              overrides=["executor.kind=local", "executor.workers=2"], progress=False)
    assert _numbers(local) == _numbers(serial)


def test_resume_reuses_finished_trials(smoke_run, tmp_path):
    out, data = smoke_run
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    victim = copy / "trials" / "er__seed0__backbonerm_mlp_digits__blur0.1__k40.json"
    victim.unlink()  # as if that trial had been killed
    manifest = json.loads((copy / "run.json").read_text())
    (copy / "run.json").write_text(json.dumps({**manifest, "status": "interrupted"}))
    stamp = {p.name: p.stat().st_mtime_ns for p in (copy / "trials").glob("*.json")}
    _, again = run_experiment("rainbow-memory", "smoke", out_dir=copy, resume=True,
                              overrides=["executor.kind=serial"], progress=False)
    assert _numbers(again) == _numbers(data)
    assert victim.exists()
    assert all((copy / "trials" / n).stat().st_mtime_ns == t for n, t in stamp.items())  # not re-run


def test_trials_cover_every_arm_once():
    cfg = RainbowConfig.from_preset("quick")
    trials = build_trials(cfg)
    assert len({t.key for t in trials}) == len(trials)
    backbones = len(cfg.backbones)
    # main blur: 4 memory arms x 3 K + fine-tune + 2 context arms at K=40; 2 extra blurs: 4 arms + fine-tune
    per_backbone = (4 * 3 + 1 + 2) + 2 * (4 + 1)
    assert cfg.seed_batch == 10 and len(cfg.seeds) == 10  # one batched trial holds all ten seeds
    assert len(trials) == backbones * (per_backbone + 1)  # + the joint upper bound
    assert all(list(t["seeds"]) == cfg.seeds for t in trials)
    assert {t.arm for t in trials} == {"joint", "rm", "er", "balanced", "gdumb", "finetune", "rm_da", "ewc"}
    assert {t.get("blur") for t in trials if t.arm == "ewc"} == {0.1}
    assert {t.get("k") for t in trials if t.arm == "rm" and t.get("blur") == 0.3} == {40}
    assert {t.get("k") for t in trials if t.arm == "rm" and t.get("blur") == 0.1} == {20, 40, 80}
    seq = build_trials(RainbowConfig.from_preset("quick", ["seed_batch=1"]))
    assert len(seq) == 10 * len(trials) and all("seeds" not in dict(t.params) for t in seq)
    assert all(t.get("k") is None for t in trials if t.arm == "finetune")
    assert cfg.headline_backbone == "rm_mlp_digits" and cfg.backbones == ["rm_mlp_digits", "rm_cnn_digits"]


def test_full_preset_runs_the_planned_seeds():
    cfg = RainbowConfig.from_preset("full")
    assert cfg.seeds == list(range(PLAN.seeds)) and cfg.backbones == ["rm_mlp_digits"]
    assert cfg.headline_k == 40 and cfg.memory_sizes == [20, 40, 80]
    assert PLAN.power_at(len(cfg.seeds)) >= 0.8 and PLAN.null_power_at(len(cfg.seeds)) >= 0.8
    assert PLAN.null_power_at(len(cfg.seeds) - 1) < 0.8


def test_config_errors_are_caught_before_any_work():
    cases = [
        (UnknownNameError, "unknown variant", ["variants=[rm,er,icarl,finetune]"]),
        (ConfigError, "variants must include", ["variants=[rm,balanced,finetune]"]),
        (ConfigError, "in both variants and context_variants", ["context_variants=[er]"]),
        (ConfigError, "lists a variant twice", ["context_variants=[ewc,ewc]"]),
        (ConfigError, r"memory size K=5 is smaller than the number of classes \(10\)", ["memory_sizes=[5]", "headline_k=5"]),
        (ConfigError, "memory_sizes lists a K twice", ["memory_sizes=[20,20]"]),
        (ConfigError, "headline_k=40 is not one of memory_sizes", ["memory_sizes=[20]"]),
        (ConfigError, "seed_batch must be >= 1", ["seed_batch=0"]),
        (ConfigError, "memory_sizes needs at least one positive K", ["memory_sizes=[0]", "headline_k=0"]),
        (UnknownNameError, "unknown method 'lwf'", ["cl.method=lwf"]),
        (UnknownNameError, "unknown dataset 'svhn'", ["dataset=svhn"]),
        (UnknownNameError, "unknown model 'resnet9'; choose one of: rm_cnn_digits", ["backbones=[resnet9]"]),
        (ConfigError, "headline_backbone 'rm_cnn_digits' is not one of backbones", ["headline_backbone=rm_cnn_digits"]),
        (ConfigError, "backbones lists a model twice", ["backbones=[rm_mlp_digits,rm_mlp_digits]"]),
        (UnknownNameError, "unknown memory policy 'fifo'", ["cl.policy=fifo"]),
        (ConfigError, r"blur values must be in \[0, 1\)", ["extra_blurs=[1.5]"]),
        (ConfigError, "extra_blurs must differ", ["extra_blurs=[0.1]"]),
        (ConfigError, "seeds must be distinct", ["seeds=[0,0]"]),
        (ConfigError, "10 classes cannot be split into 3 equal tasks", ["n_tasks=3"]),
        (ConfigError, "joint_epochs must be >= 1", ["joint_epochs=0"]),
        (ConfigError, "share must be exact or legacy", ["share=half"]),
        (ConfigError, "executor.kind must be one of", ["executor.kind=threads"]),
        (ConfigError, "SGD needs lr > 0", ["cl.lr=0"]),
        (ConfigError, "threads must be >= 0", ["threads=-1"]),
        (ConfigError, "image_size must be >= 8", ["image_size=4"]),
        (ConfigError, r"cl.lr.*finite", ["cl.lr=nan"]),
        (UnknownNameError, "unknown perturbation 'blur'", ["cl.perturbation=blur"]),
        (ConfigError, "device must be auto, cpu", ["device=tpu"]),
        (ConfigError, "finite", ["blur=nan"]),
    ]
    for err, msg, overrides in cases:
        with pytest.raises(err, match=msg):
            RainbowConfig.from_preset("smoke", overrides)


def test_cli_prints_one_line_error(tmp_path, capsys):
    code = main(["run", "rainbow-memory", "--preset", "smoke", "--set", "memory_sizes=[3]", "--set", "headline_k=3",
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
    assert main(["rainbow-split", "--tasks", "3", "--out", str(tmp_path / "split3.json")]) == 2
    assert "cannot be split into 3 equal tasks" in capsys.readouterr().err


def test_paper_preset_without_data_fails_before_writing(tmp_path, capsys):
    cfg = RainbowConfig.from_preset("paper", [f"data_root={tmp_path}", "dataset=digits"])
    assert cfg.backbones == ["rm_resnet18_cifar"] and cfg.memory_sizes == [200, 500, 1000]
    assert cfg.cl.schedule == "warm_restarts" and cfg.share == "legacy"
    code = main(["run", "rainbow-memory", "--preset", "paper", "--set", f"data_root={tmp_path}",
                 "--out", str(tmp_path / "run")])
    assert code == 2
    assert "cifar10 not found: put the extracted python version at" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_cnn_and_mlp400_backbones_run_side_by_side(tmp_path):
    # MLPs get the flattened input width of the dataset (rm_mlp400 used to be built for MNIST's 2352)
    _, data = run_experiment("rainbow-memory", "smoke", out_dir=tmp_path / "b", progress=False, overrides=[
        "backbones=[rm_cnn_digits,rm_mlp400]", "headline_backbone=rm_cnn_digits", "variants=[rm,er,finetune]",
        "context_variants=[]", "extra_blurs=[]", "cl.epochs=1", "executor.kind=serial"])
    m = data["metrics"]
    assert {"method/A_last_cnn_B10_K40", "method/A_last_mlp400_B10_K40"} <= set(m)
    assert "[rm_mlp400] RM beats the strongest simple alternative" in " ".join(c["claim"] for c in data["claims"])
    assert "rm_cnn_digits)" in data["claim"]
