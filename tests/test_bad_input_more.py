"""More bad input, in the style of ``test_bad_input.py``: one ``error:`` line, exit 2, and the folder
around the command byte-identical before and after. Covers the second reliability pass: files a
command must not replace (without --overwrite) or write over (never: its own inputs), dangling
symbolic links, decompression bombs, flags named in messages, and a run folder held by another
process."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

import tests.runtime.toy  # noqa: F401  (registers _toy)
from reprozoo.cli import main
from tests.test_bad_input import F, files, snapshot  # noqa: F401  (files is a fixture)


def png_bomb(path: Path, width: int = 40000, height: int = 40000) -> None:
    """A tiny PNG whose header claims ``width x height`` pixels (a decompression bomb)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))


@pytest.fixture()
def more(files):  # noqa: F811
    from PIL import Image

    f = files
    photo = np.full((12, 20, 3), 200, np.uint8)
    for folder, names in (("clob", ["a.png", "a_mask.png"]), ("prev", ["a.png", "a_mask.png", "a_overlay.png"]),
                          ("seg_out", ["photo_mask.png"])):
        (f / folder).mkdir()
        for name in names:
            Image.fromarray(photo).save(f / folder / name)
    png_bomb(f / "bomb.png")
    for name in ("dangling", "dangling.json", "dangling.onnx", "dangling.safetensors"):
        os.symlink(f / "nowhere", f / name)
    for name in ("victim.json", "existing.onnx", "existing.safetensors"):
        (f / name).write_bytes(b"keep me")
    (f / "topics_out" / "model").mkdir(parents=True)
    (f / "topics_out" / "topics.json").write_text("{}")
    (f / "topics_out" / "model" / "config.json").write_text("{}")
    (f / "benchdir").mkdir()
    (f / "benchdir" / "nara.json").write_text("{}")
    (f / "bad_utf8.txt").write_bytes(b"a fine line\n\xfe\xff broken\n")
    (f / "docs").mkdir()
    (f / "docs" / "one.txt").write_text("some words here\n")
    (f / "feat.txt").write_text("1 2 3\n")
    np.save(f / "feat.npy", np.zeros((8, 16), np.float32))
    return f


CASES = {
    # the cases
    "run-threads-huge": ["run", "_toy", "--set", "threads=100000", "--out", F + "/new"],
    "run-resume-and-overwrite": ["run", "_toy", "--resume", "--overwrite", "--out", F + "/folder"],
    "run-out-dangling": ["run", "_toy", "--out", F + "/dangling"],
    "run-preset-unknown": ["run", "_toy", "--preset", "nope", "--out", F + "/new"],
    "rainbow-split-negative-seed": ["rainbow-split", "--seed", "-1", "--out", F + "/new.json"],
    "rainbow-split-existing-out": ["rainbow-split", "--out", F + "/victim.json"],
    "export-existing-onnx": ["export", "sinet", "--onnx", F + "/existing.onnx"],
    "rexnet-convert-existing-dst": ["rexnet-convert", "rexnet_100", F + "/wrong.pt", F + "/existing.safetensors"],
    "topics-existing-out": ["topics", F + "/text.txt", "--out", F + "/topics_out"],
    "segment-own-input": ["segment", F + "/clob/a.png", F + "/clob/a_mask.png", "--out", F + "/clob"],
    "segment-glob-into-its-folder": ["segment", F + "/prev/a.png", F + "/prev/a_mask.png", F + "/prev/a_overlay.png",
                                     "--out", F + "/prev"],
    "segment-own-input-even-with-overwrite": ["segment", F + "/clob/a.png", F + "/clob/a_mask.png", "--out",
                                              F + "/clob", "--overwrite"],
    "topics-bad-bytes-names-the-flag": ["topics", F + "/bad_utf8.txt", "--out", F + "/new"],
    # run
    "run-seeds-letters": ["run", "_toy", "--seeds", "a,b", "--out", F + "/new"],
    "run-set-no-equals": ["run", "_toy", "--set", "offset", "--out", F + "/new"],
    "run-set-empty-key": ["run", "_toy", "--set", "=1", "--out", F + "/new"],
    "run-threads-text": ["run", "_toy", "--set", "threads=many", "--out", F + "/new"],
    "run-unknown-option": ["run", "_toy", "--nosuch", "--out", F + "/new"],
    "run-empty-name": ["run", "", "--out", F + "/new"],
    "run-out-under-dangling": ["run", "_toy", "--out", F + "/dangling/sub"],
    # bench
    "bench-out-dangling": ["bench", "nara", "--out", F + "/dangling"],
    "bench-existing-result": ["bench", "nara", "--out", F + "/benchdir"],
    "bench-option-unreadable": ["bench", "nara", "--option", "size=[1", "--out", F + "/new"],
    "bench-option-no-key": ["bench", "nara", "--option", "=3", "--out", F + "/new"],
    "bench-option-quick": ["bench", "nara", "--option", "quick=1", "--out", F + "/new"],
    "bench-out-under-file": ["bench", "nara", "--out", F + "/text.txt/sub"],
    # report / results
    "report-dangling": ["report", F + "/dangling"],
    "results-record-missing": ["results", "--record", F + "/missing", "--results", F + "/results"],
    "results-record-not-a-run": ["results", "--record", F + "/folder", "--results", F + "/results"],
    # export sinet
    "export-batch-negative": ["export", "sinet", "--onnx", F + "/new.onnx", "--batch", "-1"],
    "export-threads-zero": ["export", "sinet", "--onnx", F + "/new.onnx", "--threads", "0"],
    "export-size-odd": ["export", "sinet", "--onnx", F + "/new.onnx", "--size", "33"],
    "export-onnx-dangling": ["export", "sinet", "--onnx", F + "/dangling.onnx"],
    "export-existing-file-as-onnx": ["export", "sinet", "--onnx", F + "/text.txt"],
    "export-ort-same-as-onnx": ["export", "sinet", "--onnx", F + "/new.onnx", "--ort-optimized", F + "/new.onnx"],
    "export-ort-existing": ["export", "sinet", "--onnx", F + "/new.onnx", "--ort-optimized", F + "/existing.onnx"],
    "export-missing-checkpoint": ["export", "sinet", "--checkpoint", F + "/missing.pt", "--onnx", F + "/new.onnx"],
    # segment
    "segment-existing-output": ["segment", F + "/photo.png", "--out", F + "/seg_out"],
    "segment-threshold-high": ["segment", F + "/photo.png", "--threshold", "1.5", "--out", F + "/new"],
    "segment-threshold-zero": ["segment", F + "/photo.png", "--threshold", "0", "--out", F + "/new"],
    "segment-out-dangling": ["segment", F + "/photo.png", "--out", F + "/dangling"],
    "segment-video-option-on-image": ["segment", F + "/photo.png", "--smooth", "0.5", "--out", F + "/new"],
    "segment-input-folder-as-out": ["segment", F + "/clob", "--out", F + "/clob"],
    "segment-no-inputs": ["segment", "--out", F + "/new"],
    # rexnet
    "rexnet-info-zero-size": ["rexnet-info", "rexnet_100", "--image-size", "0"],
    "rexnet-convert-wrong-suffix": ["rexnet-convert", "rexnet_100", F + "/wrong.pt", F + "/out.pth"],
    "rexnet-convert-dst-dangling": ["rexnet-convert", "rexnet_100", F + "/wrong.pt", F + "/dangling.safetensors"],
    "rexnet-convert-dst-under-file": ["rexnet-convert", "rexnet_100", F + "/wrong.pt", F + "/text.txt/x.safetensors"],
    "rexnet-convert-unknown-model": ["rexnet-convert", "nosuch", F + "/wrong.pt", F + "/new.safetensors"],
    "rexnet-convert-zero-classes": ["rexnet-convert", "rexnet_100", F + "/wrong.pt", F + "/new.safetensors",
                                    "--num-classes", "0"],
    "rexnet-convert-not-a-rexnet": ["rexnet-convert", "sinet", F + "/wrong.pt", F + "/new.safetensors"],
    # rainbow
    "rainbow-split-seed-too-big": ["rainbow-split", "--seed", str(2**32), "--out", F + "/new.json"],
    "rainbow-split-out-dangling": ["rainbow-split", "--out", F + "/dangling.json"],
    "rainbow-split-out-under-file": ["rainbow-split", "--out", F + "/text.txt/x.json"],
    "rainbow-split-unknown-dataset": ["rainbow-split", "--dataset", "nosuch", "--out", F + "/new.json"],
    "rainbow-split-unknown-share": ["rainbow-split", "--share", "nosuch", "--out", F + "/new.json"],
    "rainbow-split-negative-blur": ["rainbow-split", "--blur", "-0.5", "--out", F + "/new.json"],
    "rainbow-split-negative-tasks": ["rainbow-split", "--tasks", "-1", "--out", F + "/new.json"],
    # topics
    "topics-k-zero": ["topics", F + "/text.txt", "--k", "0", "--out", F + "/new"],
    "topics-top-n-zero": ["topics", F + "/text.txt", "--top-n", "0", "--out", F + "/new"],
    "topics-min-df-zero": ["topics", F + "/text.txt", "--min-df", "0", "--out", F + "/new"],
    "topics-vq-epochs-zero": ["topics", F + "/text.txt", "--vq-epochs", "0", "--out", F + "/new"],
    "topics-negative-seed": ["topics", F + "/text.txt", "--seed", "-1", "--out", F + "/new"],
    "topics-out-dangling": ["topics", F + "/text.txt", "--out", F + "/dangling"],
    "topics-out-inside-corpus": ["topics", F + "/docs", "--out", F + "/docs/out"],
    "topics-out-nonempty-foreign": ["topics", F + "/text.txt", "--out", F + "/folder", "--overwrite"],
    # ground / antispoof / transcribe
    "ground-top-zero": ["ground", "--checkpoint", F + "/wrong.pt", "--features", F + "/feat.npy", "--query", "x",
                        "--top", "0"],
    "ground-features-txt": ["ground", "--checkpoint", F + "/wrong.pt", "--features", F + "/feat.txt", "--query", "x"],
    "ground-missing-query": ["ground", "--checkpoint", F + "/wrong.pt", "--features", F + "/feat.npy"],
    "antispoof-bad-frames": ["antispoof", F + "/folder", "--checkpoint", F + "/wrong.pt", "--frames", "bogus"],
    "antispoof-no-inputs": ["antispoof", "--checkpoint", F + "/wrong.pt"],
    "transcribe-no-files": ["transcribe", "--checkpoint", F + "/wrong.pt"],
    # the root
    "unknown-command": ["frobnicate"],
    "unknown-root-option": ["--nosuch"],
}
FLAG_NAMED = {"topics-bad-bytes-names-the-flag": "--replace-bad-bytes", "rainbow-split-negative-seed": "--seed",
              "run-threads-huge": "threads", "export-threads-zero": "--threads", "export-batch-negative": "--batch",
              "rexnet-convert-existing-dst": "--overwrite", "rainbow-split-existing-out": "--overwrite",
              "export-existing-onnx": "--overwrite", "topics-existing-out": "--overwrite",
              "segment-existing-output": "--overwrite", "bench-existing-result": "--overwrite",
              "run-resume-and-overwrite": "--resume", "segment-own-input": "over one of the inputs",
              "segment-glob-into-its-folder": "over one of the inputs", "run-out-dangling": "symbolic link",
              "segment-out-dangling": "dangling symbolic link", "bench-out-dangling": "dangling symbolic link",
              "rainbow-split-negative-blur": "--blur", "rainbow-split-negative-tasks": "--tasks",
              "rainbow-split-unknown-share": "--share", "topics-k-zero": "--k", "rexnet-convert-zero-classes":
              "--num-classes", "export-ort-existing": "--ort-optimized"}


@pytest.mark.parametrize("case", sorted(CASES))
def test_more_bad_input_gives_one_error_line_and_changes_nothing(case, more, capsys):
    argv = [a.replace(F, str(more)) for a in CASES[case]]
    before = snapshot(more)
    code = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, (case, err)
    assert len(err) == 1 and err[0].startswith("error: "), (case, err)
    assert "Config" not in err[0] and "encoding_errors" not in err[0], err  # no class or library keyword names
    if case in FLAG_NAMED:
        assert FLAG_NAMED[case] in err[0], err
    assert snapshot(more) == before, f"{case} changed the files around it"


def test_a_decompression_bomb_is_listed_and_the_batch_goes_on(more, tmp_path_factory, capsys):
    tmp_path = tmp_path_factory.mktemp("segment_out")
    out = tmp_path / "masks"
    before = snapshot(more)
    code = main(["segment", str(more / "photo.png"), str(more / "bomb.png"), str(more / "dangling"),
                 "--out", str(out)])
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert code == 2 and "Traceback" not in captured.err
    assert [line for line in err if line.startswith("error:")] == [
        "error: 2 of 3 input(s) failed (listed above); the others were written"]
    assert any("bomb.png: image too large" in line for line in err)
    assert any("dangling: dangling symbolic link" in line for line in err)
    assert sorted(p.name for p in out.iterdir()) == ["photo_mask.png", "photo_overlay.png"]
    assert snapshot(more) == before
    # a batch of only bad inputs creates no output folder
    assert main(["segment", str(more / "bomb.png"), "--out", str(tmp_path / "none")]) == 2
    assert not (tmp_path / "none").exists()


def test_dangling_links_inside_an_input_folder_are_listed(more, tmp_path, capsys):
    os.symlink(more / "nowhere.png", more / "clob" / "gone.png")
    assert main(["segment", str(more / "clob"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "gone.png: dangling symbolic link" in err
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["a_mask.png", "a_mask_mask.png", "a_mask_overlay.png",
                                                                  "a_overlay.png"]


def test_a_run_folder_held_by_another_process_is_refused_and_unchanged(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["run", "_toy", "--preset", "smoke", "--out", str(run)]) == 0
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom reprozoo.runtime.run_lock import RunLock\n"
         f"lock = RunLock({str(run)!r}); lock.acquire(); lock.mark(); print('held', flush=True); time.sleep(120)"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        capsys.readouterr()
        before = snapshot(run)
        for extra in ([], ["--overwrite"], ["--resume"]):
            assert main(["run", "_toy", "--preset", "smoke", "--out", str(run), *extra]) == 2
            err = capsys.readouterr().err.strip().splitlines()
            assert len(err) == 1 and err[0].startswith("error: ") and str(holder.pid) in err[0], err
            assert snapshot(run) == before
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.parametrize("argv", [["segment", F + "/photo.png", "--checkpoint", F + "/corrupt.pt", "--out", F + "/new"],
                                  ["rexnet-convert", "rexnet_100", F + "/corrupt.pt", F + "/new.safetensors"]],
                         ids=["segment", "rexnet-convert"])
def test_a_corrupt_checkpoint_is_one_short_line(argv, more, capsys):
    assert main([a.replace(F, str(more)) for a in argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "corrupt.pt" in err[0] and "Weights only load failed" in err[0]
    assert "In PyTorch 2.6" not in err[0] and len(err[0]) < 200 + len(str(more)), err
