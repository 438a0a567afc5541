"""Checkpoints and a :class:`Transcriber` for trained CTC models.

A checkpoint is a ``torch.save`` dict (loaded with ``weights_only=True``): ``model`` (registered
name), ``model_kwargs``, ``features`` (the :class:`FeatureConfig` fields), ``state_dict`` and
``symbols`` (the alphabet, checked on load).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import torch

from reprozoo.activeasr.features import FeatureConfig, Featurizer
from reprozoo.activeasr.text import SYMBOLS
from reprozoo.activeasr.training import transcribe
from reprozoo.errors import CheckpointError
from reprozoo.runtime.registry import create_model


def save_checkpoint(path: str | Path, model: torch.nn.Module, name: str, features: FeatureConfig,
                    model_kwargs: dict | None = None) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save({"model": name, "model_kwargs": dict(model_kwargs or {}), "features": asdict(features),
                "state_dict": model.state_dict(), "symbols": list(SYMBOLS)}, tmp)
    tmp.replace(path)
    return path


def load_checkpoint(path: str | Path) -> tuple[torch.nn.Module, FeatureConfig]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(err).__name__})") from None
    missing = [k for k in ("model", "model_kwargs", "features", "state_dict", "symbols") if k not in ckpt]
    if missing:
        raise CheckpointError(f"{path}: not an activeasr checkpoint (missing {missing})")
    if list(ckpt["symbols"]) != list(SYMBOLS):
        raise CheckpointError(f"{path}: the checkpoint's alphabet differs from this library's")
    feats = FeatureConfig(**ckpt["features"])
    model = create_model(ckpt["model"], n_mels=feats.n_mels, **ckpt["model_kwargs"])
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError as err:
        raise CheckpointError(f"{path}: weights do not fit model '{ckpt['model']}': {str(err).splitlines()[0]}") from None
    return model.eval(), feats


class Transcriber:
    """``Transcriber.from_checkpoint(path).transcribe_files([...])`` -> one transcript per file."""

    def __init__(self, model: torch.nn.Module, features: FeatureConfig):
        self.model, self.features = model.eval(), features
        self.featurizer = Featurizer(features)

    @classmethod
    def from_checkpoint(cls, path: str | Path) -> Transcriber:
        return cls(*load_checkpoint(path))

    def transcribe_waves(self, waves: list[torch.Tensor], batch_size: int = 32) -> list[str]:
        return transcribe(self.model, self.featurizer, waves, batch_size)

    def transcribe_files(self, paths: list[str | Path], batch_size: int = 32) -> list[str]:
        """Any sample rate, stereo mixed down (see :func:`reprozoo.data.speech.load_audio`)."""
        from reprozoo.data.speech import load_audio

        waves = [torch.from_numpy(load_audio(p, self.features.sample_rate)) for p in paths]
        return self.transcribe_waves(waves, batch_size)
