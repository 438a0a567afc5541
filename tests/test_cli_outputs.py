"""Commands that write files: an existing file is replaced only with --overwrite, an input never,
an unwritable destination is one line; `topics --overwrite` leaves nothing of the earlier run;
`run all` prints one line per finished experiment when stdout is not a terminal."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

import tests.runtime.toy  # noqa: F401  (registers _toy)
from reprozoo.cli import main


def _one_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def test_rainbow_split_replaces_only_with_overwrite(tmp_path, capsys):
    out = tmp_path / "split.json"
    assert main(["rainbow-split", "--tasks", "2", "--out", str(out)]) == 0
    first = out.read_bytes()
    assert main(["rainbow-split", "--tasks", "2", "--seed", "3", "--out", str(out)]) == 2
    assert "--overwrite" in _one_error(capsys) and out.read_bytes() == first
    assert main(["rainbow-split", "--tasks", "2", "--seed", "3", "--out", str(out), "--overwrite"]) == 0
    assert json.loads(out.read_text())["seed"] == 3


@pytest.fixture(scope="module")
def rexnet_checkpoint(tmp_path_factory):
    from reprozoo.runtime.registry import create_model

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "ours.pth"
    torch.save(create_model("rexnet_100", num_classes=10).state_dict(), path)
    return path


def test_rexnet_convert_refuses_existing_and_unwritable_destinations(rexnet_checkpoint, tmp_path, capsys):
    dst = tmp_path / "out.safetensors"
    dst.write_bytes(b"keep me")
    args = ["rexnet-convert", "rexnet_100", str(rexnet_checkpoint), str(dst), "--num-classes", "10"]
    assert main(args) == 2
    assert "already exists; pass --overwrite" in _one_error(capsys) and dst.read_bytes() == b"keep me"
    assert main([*args, "--overwrite"]) == 0
    from safetensors.torch import load_file

    assert load_file(dst)["head.fc.weight"].shape == (10, 1280)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.safetensors"]  # no temporary file left
    capsys.readouterr()
    for unwritable in ("/proc/reprozoo-test/x.safetensors", "/dev/null/x.safetensors", "/sys/x.safetensors"):
        assert main(["rexnet-convert", "rexnet_100", str(rexnet_checkpoint), unwritable, "--num-classes", "10"]) == 2
        message = _one_error(capsys)
        assert unwritable.split("/x.")[0] in message and "Traceback" not in message


@pytest.fixture(scope="module")
def tiny_encoder(tmp_path_factory):
    from transformers import BertConfig, BertModel

    from reprozoo.tvqvae.embeddings import default_model_path

    path = tmp_path_factory.mktemp("tiny_bert")
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        shutil.copy(f"{default_model_path()}/{name}", path / name)
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=128)).save_pretrained(path)
    return str(path)


def test_topics_overwrite_leaves_no_model_of_the_earlier_run(tiny_encoder, tmp_path, capsys):
    from reprozoo.data.textcorpora import procedural_corpus

    corpus = tmp_path / "docs.txt"
    corpus.write_text("\n".join(procedural_corpus(60, 3, words_per_doc=12, seed=2).texts) + "\n")
    out = tmp_path / "out"
    args = ["topics", str(corpus), "--k", "3", "--out", str(out), "--encoder", tiny_encoder, "--vq-epochs", "1",
            "--topic-epochs", "3", "--top-n", "4"]
    assert main([*args, "--save-model"]) == 0
    assert (out / "model.safetensors").is_file()
    capsys.readouterr()
    assert main([*args, "--k", "2"]) == 2
    assert "--overwrite" in _one_error(capsys) and json.loads((out / "topics.json").read_text())["n_topics"] == 3
    assert main([*args, "--k", "2", "--overwrite"]) == 0
    assert json.loads((out / "topics.json").read_text())["n_topics"] == 2
    assert sorted(p.name for p in out.iterdir()) == ["figures", "topics.html", "topics.json"]  # no old model


def test_segment_replaces_its_own_outputs_only_with_overwrite(tmp_path, capsys):
    from PIL import Image

    photo = tmp_path / "p.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (24, 32, 3), dtype=np.uint8)).save(photo)
    out = tmp_path / "o"
    assert main(["segment", str(photo), "--out", str(out)]) == 0
    (out / "p_mask.png").write_bytes(b"edited by the user")
    capsys.readouterr()
    assert main(["segment", str(photo), "--out", str(out)]) == 2
    assert "p_mask.png already exists" in _one_error(capsys)
    assert (out / "p_mask.png").read_bytes() == b"edited by the user"
    assert main(["segment", str(photo), "--out", str(out), "--overwrite"]) == 0
    assert np.asarray(Image.open(out / "p_mask.png")).shape == (24, 32)


def test_run_all_prints_a_line_per_finished_experiment(tmp_path, capsys, monkeypatch):
    from dataclasses import replace

    from reprozoo.runtime import registry

    toy = registry.get_experiment("_toy")
    other = replace(toy, name="_toy2")
    monkeypatch.setitem(registry._EXPERIMENTS, "_toy2", other)
    monkeypatch.setattr(registry, "list_experiments", lambda: [toy, other])
    assert main(["run", "all", "--preset", "smoke", "--out", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    done = [line for line in lines if line.startswith("   ") and "inconclusive" in line]
    assert len(done) == 2 and str(tmp_path / "_toy2") in done[1], lines
    assert main(["run", "all", "--preset", "nope", "--out", str(tmp_path / "x")]) == 2
    assert "unknown preset 'nope' for _toy" in _one_error(capsys) and not (tmp_path / "x").exists()
