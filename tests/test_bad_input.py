"""Bad input on every command: one ``error:`` line, exit 2, and no file that existed before is
changed, deleted or joined by new files (``python -m pytest tests/test_bad_input.py``)."""

from __future__ import annotations

import string
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tests.runtime.toy  # noqa: F401  (registers _toy)
from reprozoo.cli import main


@pytest.fixture()
def files(tmp_path):
    """A folder of realistic bad inputs, built by the test."""
    from PIL import Image

    f = tmp_path
    (f / "text.txt").write_text("hello world\n")
    (f / "empty.bin").write_bytes(b"")
    (f / "empty.txt").write_text("")
    (f / "corrupt.pt").write_bytes(b"\x00not a checkpoint" * 20)
    torch.save(full := {"some.other.weight": torch.zeros(3)}, f / "wrong.pt")
    del full
    (f / "truncated.pt").write_bytes((f / "wrong.pt").read_bytes()[:40])
    Image.fromarray(np.full((12, 20, 3), 200, np.uint8)).save(f / "photo.png")
    (f / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    (f / "corrupt.wav").write_bytes(b"RIFF\x00\x00WAVEjunk")
    (f / "folder").mkdir()
    (f / "folder" / "inside.txt").write_text("x")
    (f / "ünïcødé dir").mkdir()
    (f / "ünïcødé dir" / "données.txt").write_text("x")
    (f / "bad.npy").write_bytes(b"not numpy")
    np.save(f / "feat_wrongdim.npy", np.zeros((5, 3), np.float32))
    np.save(f / "feat_empty.npy", np.zeros((0, 16), np.float32))
    return f


def snapshot(folder: Path) -> dict[str, bytes | None]:
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None) for p in folder.rglob("*")}


F = "{f}"  # placeholder for the fixture folder
CASES = {
    # the experiment runner
    "run-out-is-file": ["run", "_toy", "--out", F + "/text.txt"],
    "run-out-under-file": ["run", "_toy", "--out", F + "/text.txt/sub"],
    "run-out-nonempty": ["run", "_toy", "--out", F + "/folder"],
    "run-overwrite-foreign": ["run", "_toy", "--out", F + "/ünïcødé dir", "--overwrite"],
    "run-resume-not-a-run": ["run", "_toy", "--out", F + "/folder", "--resume"],
    "run-duplicate-seeds": ["run", "_toy", "--seeds", "0,0,0", "--out", F + "/new"],
    "run-negative-seed": ["run", "_toy", "--seeds", "-1", "--out", F + "/new"],
    "run-huge-seed": ["run", "_toy", "--seeds", str(2**40), "--out", F + "/new"],
    "run-empty-seeds": ["run", "_toy", "--seeds", ",", "--out", F + "/new"],
    "run-nan": ["run", "_toy", "--set", "offset=nan", "--out", F + "/new"],
    "run-bad-device": ["run", "_toy", "--set", "device=banana", "--out", F + "/new"],
    "run-threads": ["run", "_toy", "--set", "threads=-3", "--out", F + "/new"],
    "run-missing-data-root": ["run", "_toy", "--set", "data_root=" + F + "/missing", "--out", F + "/new"],
    "run-bad-executor": ["run", "_toy", "--executor", "gpu-farm", "--out", F + "/new"],
    "run-unknown": ["run", "nosuch"],
    # report and bench
    "report-missing": ["report", F + "/missing"],
    "report-file": ["report", F + "/text.txt"],
    "bench-out-file": ["bench", "nara", "--out", F + "/text.txt"],
    "bench-unknown": ["bench", "nosuch", "--out", F + "/new"],
    "bench-bad-option": ["bench", "nara", "--option", "nokey", "--out", F + "/new"],
    # sinet
    "segment-missing-ckpt": ["segment", F + "/photo.png", "--checkpoint", F + "/missing.pt", "--out", F + "/new"],
    "segment-corrupt-ckpt": ["segment", F + "/photo.png", "--checkpoint", F + "/corrupt.pt", "--out", F + "/new"],
    "segment-wrong-ckpt": ["segment", F + "/photo.png", "--checkpoint", F + "/wrong.pt", "--out", F + "/new"],
    "segment-truncated-ckpt": ["segment", F + "/photo.png", "--checkpoint", F + "/truncated.pt", "--out", F + "/new"],
    "segment-out-is-file": ["segment", F + "/photo.png", "--checkpoint", F + "/wrong.pt", "--out", F + "/text.txt"],
    "export-corrupt-ckpt": ["export", "sinet", "--checkpoint", F + "/corrupt.pt", "--onnx", F + "/new/m.onnx"],
    "export-onnx-is-folder": ["export", "sinet", "--checkpoint", F + "/wrong.pt", "--onnx", F + "/folder"],
    # rexnet
    "rexnet-info-unknown": ["rexnet-info", "nosuch"],
    "rexnet-info-bad-size": ["rexnet-info", "rexnet_100", "--image-size", "-5"],
    "rexnet-convert-missing": ["rexnet-convert", "rexnet_100", F + "/missing.pth", F + "/new.safetensors"],
    "rexnet-convert-corrupt": ["rexnet-convert", "rexnet_100", F + "/corrupt.pt", F + "/new.safetensors"],
    "rexnet-convert-wrong-model": ["rexnet-convert", "rexnet_100", F + "/wrong.pt", F + "/new.safetensors"],
    "rexnet-convert-dst-folder": ["rexnet-convert", "rexnet_100", F + "/wrong.pt", F + "/folder"],
    # rainbow
    "rainbow-split-out-folder": ["rainbow-split", "--out", F + "/folder"],
    "rainbow-split-bad-tasks": ["rainbow-split", "--tasks", "0", "--out", F + "/new.json"],
    "rainbow-split-bad-blur": ["rainbow-split", "--blur", "2", "--out", F + "/new.json"],
    "rainbow-split-missing-root": ["rainbow-split", "--dataset", "folder", "--data-root", F + "/missing",
                                   "--out", F + "/new.json"],
    # tvqvae
    "topics-missing": ["topics", F + "/missing.txt", "--out", F + "/new"],
    "topics-empty": ["topics", F + "/empty.txt", "--out", F + "/new"],
    "topics-k-too-big": ["topics", F + "/text.txt", "--k", "50", "--out", F + "/new"],
    "topics-out-file": ["topics", F + "/text.txt", "--out", F + "/text.txt"],
    # gmp
    "ground-corrupt-ckpt": ["ground", "--checkpoint", F + "/corrupt.pt", "--features", F + "/feat_wrongdim.npy",
                            "--query", "a person opens a door"],
    "ground-missing-features": ["ground", "--checkpoint", F + "/wrong.pt", "--features", F + "/missing.npy",
                                "--query", "x"],
    # eclips
    "antispoof-corrupt-ckpt": ["antispoof", F + "/folder", "--checkpoint", F + "/corrupt.pt"],
    "antispoof-missing-input": ["antispoof", F + "/missing.mp4", "--checkpoint", F + "/wrong.pt"],
    # activeasr
    "transcribe-corrupt-ckpt": ["transcribe", F + "/corrupt.wav", "--checkpoint", F + "/corrupt.pt"],
    "transcribe-missing-audio": ["transcribe", F + "/missing.wav", "--checkpoint", F + "/wrong.pt"],
}


def _commands() -> set[str]:
    import typer.main

    from reprozoo.cli import _register_method_commands, app

    _register_method_commands()
    group = typer.main.get_command(app)
    return set(group.commands)


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_gives_one_error_line_and_changes_nothing(case, files, capsys):
    argv = [a.replace(F, str(files)) for a in CASES[case]]
    if argv[0] not in _commands():
        pytest.skip(f"command {argv[0]} is not available in this build")
    before = snapshot(files)
    code = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, (case, err)
    assert len(err) == 1 and err[0].startswith("error: "), (case, err)
    assert snapshot(files) == before, f"{case} changed the files around it"


# ------------------------------------------------------------------ property-based
KEYS = st.text(string.ascii_letters + "._", min_size=1, max_size=12)
VALUES = st.text(string.printable, max_size=20)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=KEYS, value=VALUES)
def test_config_parser_never_crashes(key, value):
    """Any ``--set key=value`` either applies or raises a ReproZooError, nothing else."""
    from reprozoo.errors import ReproZooError
    from tests.runtime.toy import ToyConfig

    try:
        cfg = ToyConfig.from_preset("smoke", [f"{key}={value}"], locked=True)
    except ReproZooError:
        return
    assert isinstance(cfg.offset, float) and isinstance(cfg.steps, int) and isinstance(cfg.seeds, list)


@settings(max_examples=60, deadline=None)
@given(offset=st.floats(allow_nan=False, allow_infinity=False, width=32),
       steps=st.integers(min_value=-10**6, max_value=10**6))
def test_config_values_round_trip(offset, steps):
    from reprozoo.runtime.config import to_yaml
    from tests.runtime.toy import ToyConfig

    cfg = ToyConfig.from_preset("smoke", [f"offset={offset!r}", f"steps={steps}"])
    assert cfg.offset == pytest.approx(offset) and cfg.steps == steps
    import yaml

    assert yaml.safe_load(to_yaml(cfg))["steps"] == steps


SEGMENT = st.text(string.ascii_letters + string.digits + " -_.éü", min_size=1, max_size=10).filter(
    lambda s: s not in (".", "..") and not s.startswith(".reprozoo"))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(parts=st.lists(SEGMENT, min_size=1, max_size=3))
def test_any_new_output_path_gets_a_complete_run(parts, tmp_path_factory):
    from reprozoo.runtime.runner import run_experiment

    root = tmp_path_factory.mktemp("paths")
    out = root.joinpath(*parts)
    run, data = run_experiment("_toy", "smoke", out_dir=out, progress=False)
    assert run == out and (out / "metrics.json").is_file() and data["experiment"] == "_toy"
