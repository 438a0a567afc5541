"""Log-mel features and the augmentations used by supervised training and consistency regularisation.

Features: ``torch.stft`` (Hann window, 25 ms / 10 ms at 16 kHz by default) -> power spectrum ->
``librosa``'s Slaney mel filterbank -> ``log(mel + 1e-6)`` -> per-utterance mean/variance
normalisation over the utterance's own frames (padding stays 0). Everything is batched: a list of
waves becomes one padded (B, T, n_mels) tensor and its frame lengths.

Augmentations, each with a strength knob (badly tuned augmentation hurts ASR, so every width,
probability and range is a field of :class:`AugmentConfig`):

- wave level: speed perturbation (resampling by a factor from ``speed_factors``; changes length
  and pitch, as Kaldi's recipe), additive white noise at an SNR drawn from ``noise_snr_db``,
  random gain;
- feature level: SpecAugment frequency and time masks, time masks capped both at ``time_width``
  frames and at ``time_max_frac`` of the utterance's length, so short utterances are not wiped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from reprozoo.errors import ConfigError
from reprozoo.runtime.checks import finite, integer


@dataclass
class FeatureConfig:
    sample_rate: int = 16000
    n_fft: int = 400  # 25 ms
    hop: int = 160  # 10 ms
    n_mels: int = 40

    def validate(self) -> None:
        for key in ("sample_rate", "n_fft", "hop", "n_mels"):
            integer(key, getattr(self, key))
        if self.sample_rate < 8000 or self.n_fft < 16 or not 0 < self.hop <= self.n_fft or self.n_mels < 8:
            raise ConfigError("features need sample_rate >= 8000, n_fft >= 16, 0 < hop <= n_fft, n_mels >= 8")


class LogMel(torch.nn.Module):
    """Batched log-mel front end with per-utterance normalisation."""

    def __init__(self, cfg: FeatureConfig | None = None):
        super().__init__()
        from reprozoo.runtime.extras import require

        librosa = require("librosa", what="the log-mel front end")

        self.cfg = cfg = cfg or FeatureConfig()
        cfg.validate()
        fb = librosa.filters.mel(sr=cfg.sample_rate, n_fft=cfg.n_fft, n_mels=cfg.n_mels)
        self.register_buffer("fb", torch.from_numpy(fb).float(), persistent=False)
        self.register_buffer("window", torch.hann_window(cfg.n_fft), persistent=False)

    def frames(self, n_samples: torch.Tensor) -> torch.Tensor:
        return n_samples // self.cfg.hop + 1

    def forward(self, waves: torch.Tensor, n_samples: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, N) padded waves + sample counts -> ((B, T, n_mels) features, frame counts)."""
        spec = torch.stft(waves, self.cfg.n_fft, self.cfg.hop, window=self.window, center=True,
                          return_complex=True)
        power = spec.real.square() + spec.imag.square()
        mel = torch.log(torch.matmul(self.fb, power) + 1e-6).transpose(1, 2)  # (B, T, M)
        lengths = self.frames(n_samples).clamp(max=mel.shape[1])
        mask = (torch.arange(mel.shape[1])[None, :] < lengths[:, None]).unsqueeze(-1).to(mel.dtype)
        count = lengths.clamp(min=1)[:, None, None].to(mel.dtype) * mel.shape[2]
        mean = (mel * mask).sum((1, 2), keepdim=True) / count
        var = (((mel - mean) * mask) ** 2).sum((1, 2), keepdim=True) / count
        return (mel - mean) / (var.sqrt() + 1e-5) * mask, lengths


def pad_waves(waves: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    n = torch.tensor([w.numel() for w in waves])
    out = torch.zeros(len(waves), int(n.max()))
    for i, w in enumerate(waves):
        out[i, : w.numel()] = w
    return out, n


@dataclass
class AugmentConfig:
    """One view's augmentation; ``strength`` scales every mask width and the noise level."""

    strength: float = 1.0
    speed_factors: tuple[float, ...] = ()  # e.g. (0.9, 1.0, 1.1); empty = off
    noise_snr_db: tuple[float, float] = (0.0, 0.0)  # (lo, hi); (0, 0) = off
    noise_prob: float = 0.0
    gain_db: float = 0.0  # +- range
    freq_masks: int = 0
    freq_width: int = 8  # max width in mel bins
    time_masks: int = 0
    time_width: int = 20  # max width in frames
    time_max_frac: float = 0.2  # and at most this fraction of the utterance

    def validate(self, name: str = "augment") -> None:
        numbers = {"strength": self.strength, "noise_prob": self.noise_prob, "gain_db": self.gain_db,
                   "time_max_frac": self.time_max_frac,
                   **{f"noise_snr_db[{i}]": v for i, v in enumerate(self.noise_snr_db)},
                   **{f"speed_factors[{i}]": v for i, v in enumerate(self.speed_factors)}}
        for key, value in numbers.items():
            finite(f"{name}.{key}", value)
        for key in ("freq_masks", "freq_width", "time_masks", "time_width"):
            integer(f"{name}.{key}", getattr(self, key))
        if self.strength < 0 or self.freq_masks < 0 or self.time_masks < 0 or self.freq_width < 0 or self.time_width < 0:
            raise ConfigError(f"{name}: strength, mask counts and widths must be >= 0")
        if not 0 <= self.time_max_frac <= 1 or not 0 <= self.noise_prob <= 1:
            raise ConfigError(f"{name}: time_max_frac and noise_prob must be in [0, 1]")
        if any(not 0.5 <= f <= 2.0 for f in self.speed_factors):
            raise ConfigError(f"{name}: speed factors must be in [0.5, 2.0], got {self.speed_factors}")
        if self.noise_snr_db[0] > self.noise_snr_db[1]:
            raise ConfigError(f"{name}: noise_snr_db must be (low, high), got {self.noise_snr_db}")

    @property
    def identity(self) -> bool:
        return (not self.speed_factors or set(self.speed_factors) == {1.0}) and self.noise_prob == 0 \
            and self.gain_db == 0 and (self.strength == 0 or (self.freq_masks == 0 and self.time_masks == 0))


def weak_augment() -> AugmentConfig:
    """The weak (teacher) view: white noise at 30-40 dB SNR and +-2 dB gain."""
    return AugmentConfig(noise_snr_db=(30.0, 40.0), noise_prob=1.0, gain_db=2.0)


def strong_augment(strength: float = 1.0) -> AugmentConfig:
    """The strong (student) view: speed 0.9/1.0/1.1, noise 5-20 dB SNR (p=0.5), two frequency masks
    of <= 8 of 40 mel bins and two time masks of <= 20 frames and <= 20% of the length."""
    return AugmentConfig(strength=strength, speed_factors=(0.9, 1.0, 1.1), noise_snr_db=(5.0, 20.0), noise_prob=0.5,
                         freq_masks=2, freq_width=8, time_masks=2, time_width=20, time_max_frac=0.2)


def speed_perturb(wave: torch.Tensor, factor: float) -> torch.Tensor:
    """Play ``wave`` ``factor`` times faster (linear-interpolation resampling; length / factor)."""
    if factor == 1.0:
        return wave
    n = wave.numel()
    m = max(1, int(round(n / factor)))
    pos = torch.arange(m, dtype=torch.float64) * factor
    lo = pos.floor().long().clamp(max=n - 1)
    hi = (lo + 1).clamp(max=n - 1)
    frac = (pos - lo.double()).float()
    return wave[lo] * (1 - frac) + wave[hi] * frac


def add_noise(wave: torch.Tensor, snr_db: float, generator: torch.Generator) -> torch.Tensor:
    power = wave.square().mean().clamp(min=1e-10)
    noise = torch.randn(wave.shape, generator=generator)
    return wave + noise * torch.sqrt(power / 10 ** (snr_db / 10))


def augment_wave(wave: torch.Tensor, cfg: AugmentConfig, generator: torch.Generator) -> torch.Tensor:
    def u(lo: float, hi: float) -> float:
        return lo + (hi - lo) * float(torch.rand((), generator=generator))

    if cfg.speed_factors:
        idx = int(torch.randint(len(cfg.speed_factors), (), generator=generator))
        wave = speed_perturb(wave, cfg.speed_factors[idx])
    if cfg.gain_db:
        wave = wave * 10 ** (u(-cfg.gain_db, cfg.gain_db) / 20)
    if cfg.noise_prob and float(torch.rand((), generator=generator)) < cfg.noise_prob:
        lo, hi = cfg.noise_snr_db
        # a stronger view means a lower SNR: strength 2 takes 3 dB (x2 noise power) off each bound
        shift = 10 * np.log10(cfg.strength) if cfg.strength > 0 else -100.0
        wave = add_noise(wave, u(lo, hi) - shift, generator)
    return wave


def spec_augment(feats: torch.Tensor, lengths: torch.Tensor, cfg: AugmentConfig,
                 generator: torch.Generator) -> torch.Tensor:
    """Zero ``freq_masks`` bands and ``time_masks`` spans per utterance (a copy; widths x strength)."""
    out = feats.clone()
    n_mels = feats.shape[2]
    fw = int(round(cfg.freq_width * cfg.strength))
    for b in range(feats.shape[0]):
        t_len = int(lengths[b])
        tw = int(min(round(cfg.time_width * cfg.strength), cfg.time_max_frac * t_len))
        for _ in range(cfg.freq_masks):
            w = int(torch.randint(0, min(fw, n_mels) + 1, (), generator=generator))
            if w:
                f0 = int(torch.randint(0, n_mels - w + 1, (), generator=generator))
                out[b, :, f0:f0 + w] = 0
        for _ in range(cfg.time_masks):
            w = int(torch.randint(0, max(tw, 0) + 1, (), generator=generator))
            if w and t_len > w:
                t0 = int(torch.randint(0, t_len - w + 1, (), generator=generator))
                out[b, t0:t0 + w, :] = 0
    return out


class Featurizer:
    """Waves -> (features, lengths), optionally augmented by an :class:`AugmentConfig`."""

    def __init__(self, cfg: FeatureConfig | None = None):
        self.logmel = LogMel(cfg)

    @torch.no_grad()
    def __call__(self, waves: list[torch.Tensor], augment: AugmentConfig | None = None,
                 generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        if augment is not None and not augment.identity:
            if generator is None:
                raise ValueError("augmentation needs a torch.Generator")
            waves = [augment_wave(w, augment, generator) for w in waves]
        x, n = pad_waves(waves)
        feats, lengths = self.logmel(x, n)
        if augment is not None and augment.strength > 0 and (augment.freq_masks or augment.time_masks):
            feats = spec_augment(feats, lengths, augment, generator)
        return feats, lengths
