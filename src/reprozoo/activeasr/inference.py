"""Checkpoints and a :class:`Transcriber` for trained CTC models.

A checkpoint is the library's format (:mod:`reprozoo.runtime.checkpoint`): the registered model,
its kwargs and weights, and as extra fields ``features`` (the :class:`FeatureConfig` fields) and
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
from reprozoo.runtime.checkpoint import load_checkpoint, save_checkpoint


def save_transcriber(model: torch.nn.Module, path: str | Path, features: FeatureConfig) -> Path:
    """:func:`reprozoo.runtime.checkpoint.save_checkpoint` of a model built by ``create_model`` with
    what :class:`Transcriber` needs: the feature settings and the alphabet (checked on load)."""
    return save_checkpoint(model, path, features=asdict(features), symbols=list(SYMBOLS))


def load_transcriber(path: str | Path) -> tuple[torch.nn.Module, FeatureConfig]:
    if not Path(path).is_file():
        raise CheckpointError(f"{path}: no such checkpoint")
    model, extra = load_checkpoint(path)
    if "features" not in extra or "symbols" not in extra:
        raise CheckpointError(f"{path}: not an activeasr checkpoint (it has no feature settings or alphabet)")
    if list(extra["symbols"]) != list(SYMBOLS):
        raise CheckpointError(f"{path}: the checkpoint's alphabet differs from this library's")
    return model, FeatureConfig(**extra["features"])


class Transcriber:
    """``Transcriber.from_checkpoint(path).transcribe_files([...])`` -> one transcript per file."""

    def __init__(self, model: torch.nn.Module, features: FeatureConfig):
        self.model, self.features = model.eval(), features
        self.featurizer = Featurizer(features)

    @classmethod
    def from_checkpoint(cls, path: str | Path) -> Transcriber:
        return cls(*load_transcriber(path))

    def transcribe_waves(self, waves: list[torch.Tensor], batch_size: int = 32) -> list[str]:
        return transcribe(self.model, self.featurizer, waves, batch_size)

    def transcribe_files(self, paths: list[str | Path], batch_size: int = 32) -> list[str]:
        """Any sample rate, stereo mixed down (see :func:`reprozoo.data.speech.load_audio`)."""
        from reprozoo.data.speech import load_audio

        waves = [torch.from_numpy(load_audio(p, self.features.sample_rate)) for p in paths]
        return self.transcribe_waves(waves, batch_size)
