"""Perturbations for RM's vote uncertainty, and train-time augmentation (CutMix, AutoAugment/RandAugment).

Everything works on float image batches ``(N, C, H, W)`` in [0, 1] (raw pixels, BEFORE
normalisation, as in the paper). Vote perturbations are produced for all ``T`` copies of a batch at
once so the model scores them in batched forward passes.

Randomness: every function draws from the ``torch.Generator`` it is given and never touches the
global torch RNG state. torchvision's v2 transforms (CutMix, AutoAugment, RandAugment) draw from
the global RNG, so they run inside :func:`reprozoo.runtime.seeding.generator_scope`, which forks
the global state, seeds the fork from the caller's generator and restores the state afterwards.

Vote perturbations: the default is the official code's ``vr_randaug`` (the ``randaugment`` PyPI
package's RandAugment: two random (op, magnitude 1..9) pairs, each applied with p=0.5), re-implemented
op by op in :mod:`reprozoo.rainbow.vote_sets` with the official ``vr``, ``vr_cutout`` and
``vr_autoaug``. The train-time policy ``randaugment`` (and the vote perturbation of that name) is
torchvision's ``v2.RandAugment(num_ops=2, magnitude=9)``, which always applies both ops at a fixed
magnitude: not the official package.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from reprozoo.errors import ConfigError, UnknownNameError
from reprozoo.rainbow.vote_sets import VOTE_SETS, make_vote_set
from reprozoo.runtime.seeding import generator_scope

POLICIES = ("none", "autoaugment", "randaugment")
PERTURBATIONS = ("autoaugment", "randaugment", "shift_cutout_noise", *VOTE_SETS)
DEFAULT_PERTURBATION = "vr_randaug"  # the official experiment script's vote set


def _to_uint8(x: torch.Tensor) -> torch.Tensor:
    return (x.clamp(0, 1) * 255).round().to(torch.uint8)


class ShiftCutoutNoise:
    """Vectorised perturbation (for small images such as 8x8 digits): a random integer shift of up
    to ``shift`` px (zero padding), with prob ``p_cutout`` a random square cutout of side
    ``cutout[0]..cutout[1]`` px filled with ``fill``, with prob ``p_noise`` Gaussian noise of std
    ``sigma``; clipped to [0, 1]. Each sample of each copy draws its own parameters."""

    def __init__(self, shift: int = 1, cutout: tuple[int, int] = (2, 4), p_cutout: float = 0.5,
                 sigma: float = 0.15, p_noise: float = 0.5, fill: float = 0.0):
        self.shift, self.cutout, self.p_cutout = shift, tuple(cutout), p_cutout
        self.sigma, self.p_noise, self.fill = sigma, p_noise, fill

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        n, _, h, w = x.shape
        dev = x.device

        def rand(*shape):
            return torch.rand(*shape, generator=generator).to(dev)

        def randint(lo, hi, shape):
            return torch.randint(lo, hi, shape, generator=generator).to(dev)

        out = x
        s = self.shift
        if s > 0:
            padded = F.pad(x, (s, s, s, s))
            oy, ox = randint(0, 2 * s + 1, (n,)), randint(0, 2 * s + 1, (n,))
            rows = oy[:, None] + torch.arange(h, device=dev)
            cols = ox[:, None] + torch.arange(w, device=dev)
            b = torch.arange(n, device=dev)[:, None, None]
            out = padded[b, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)
        if self.p_cutout > 0:
            lo, hi = self.cutout
            side = randint(lo, hi + 1, (n,))
            y0 = (rand(n) * (h - side + 1)).floor().long()
            x0 = (rand(n) * (w - side + 1)).floor().long()
            r = torch.arange(h, device=dev)[None, :, None]
            c = torch.arange(w, device=dev)[None, None, :]
            box = ((r >= y0[:, None, None]) & (r < (y0 + side)[:, None, None])
                   & (c >= x0[:, None, None]) & (c < (x0 + side)[:, None, None]))
            box &= (rand(n) < self.p_cutout)[:, None, None]
            out = torch.where(box[:, None], torch.full_like(out, self.fill), out)
        if self.p_noise > 0 and self.sigma > 0:
            noisy = (rand(n) < self.p_noise).to(out.dtype)[:, None, None, None]
            noise = torch.randn(out.shape, generator=generator).to(dev)
            out = out + self.sigma * noisy * noise
        return out.clamp(0, 1)


class TorchvisionPerturbation:
    """Applies a torchvision v2 transform (e.g. RandAugment) independently to every image."""

    def __init__(self, transform):
        self.transform = transform

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        imgs = _to_uint8(x.cpu())
        with generator_scope(generator):
            out = torch.stack([self.transform(img) for img in imgs])
        return (out.float() / 255.0).to(x.device)


def make_perturbation(name: str = DEFAULT_PERTURBATION, **kw):
    """A vote perturbation by name. The official code's sets (:mod:`reprozoo.rainbow.vote_sets`):
    ``vr_randaug`` (default: what the official experiment script runs), ``vr``, ``vr_cutout``,
    ``vr_autoaug``. Ours: ``shift_cutout_noise`` (vectorised shift + cutout + noise for tiny images),
    ``randaugment`` (torchvision, 2 ops always applied at magnitude 9), ``autoaugment`` (torchvision
    CIFAR10 policy), each applied the same way to every copy."""
    from torchvision.transforms import v2

    if name in VOTE_SETS:
        return make_vote_set(name, **kw)
    if name == "shift_cutout_noise":
        return ShiftCutoutNoise(**kw)
    if name == "randaugment":
        return TorchvisionPerturbation(v2.RandAugment(num_ops=kw.get("num_ops", 2),
                                                      magnitude=kw.get("magnitude", 9)))
    if name == "autoaugment":
        return TorchvisionPerturbation(v2.AutoAugment(v2.AutoAugmentPolicy.CIFAR10))
    raise UnknownNameError(f"unknown perturbation '{name}'; choose one of: {', '.join(sorted(PERTURBATIONS))}")


def perturbed_copies(x: torch.Tensor, n_copies: int, perturb, generator: torch.Generator | None = None
                     ) -> torch.Tensor:
    """``(n_copies * N, C, H, W)``: copy ``k`` of sample ``i`` is row ``k * N + i``. A vote set (an object
    with ``copies``) makes the copies itself (its copy ``k`` may be a different op, as in ``vr``); any
    other perturbation is a callable ``perturb(batch, generator)`` applied to the repeated batch."""
    if hasattr(perturb, "copies"):
        return perturb.copies(x, n_copies, generator)
    return perturb(x.repeat(n_copies, 1, 1, 1), generator)


class TrainAugment:
    """Per-sample train-time augmentation on [0,1] batches: random crop with ``crop_pad`` px zero
    padding, optional horizontal flip, then ``policy`` (none | autoaugment (CIFAR10 policy) |
    randaugment) from torchvision transforms v2."""

    def __init__(self, crop_pad: int = 0, hflip: bool = False, policy: str = "none"):
        from torchvision.transforms import v2

        if policy not in POLICIES:
            raise UnknownNameError(f"unknown augmentation policy '{policy}'; choose one of: "
                                   f"{', '.join(POLICIES)}")
        if crop_pad < 0:
            raise ConfigError(f"crop_pad must be >= 0, got {crop_pad}")
        self.crop_pad, self.hflip, self.policy = crop_pad, hflip, policy
        self._policy = {"none": None,
                        "autoaugment": v2.AutoAugment(v2.AutoAugmentPolicy.CIFAR10),
                        "randaugment": v2.RandAugment(num_ops=2, magnitude=9)}[policy]

    @property
    def active(self) -> bool:
        return self.crop_pad > 0 or self.hflip or self._policy is not None

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if not self.active:
            return x
        n, _, h, w = x.shape
        out = x
        if self.crop_pad > 0:
            p = self.crop_pad
            padded = F.pad(x, (p, p, p, p))
            oy = torch.randint(0, 2 * p + 1, (n,), generator=generator).tolist()
            ox = torch.randint(0, 2 * p + 1, (n,), generator=generator).tolist()
            out = torch.stack([padded[i, :, oy[i]:oy[i] + h, ox[i]:ox[i] + w] for i in range(n)])
        if self.hflip:
            flip = (torch.rand(n, generator=generator) < 0.5).to(x.device)
            out = torch.where(flip[:, None, None, None], out.flip(-1), out)
        if self._policy is not None:
            imgs = _to_uint8(out.cpu())
            with generator_scope(generator):
                out = (torch.stack([self._policy(img) for img in imgs]).float() / 255.0).to(x.device)
        return out


def cutmix(x: torch.Tensor, y: torch.Tensor, num_classes: int, generator: torch.Generator | None = None,
           alpha: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """CutMix one batch with ``torchvision.transforms.v2.CutMix``: lambda ~ Beta(alpha, alpha), a box
    of side ``side * sqrt(1 - lambda)`` around a uniform centre, clipped to the image, pasted from a
    partner sample; lambda is recomputed from the clipped box. Partners are drawn as a random
    permutation of the batch (torchvision pairs neighbours, so the batch is shuffled first).
    Returns ``(x_mixed, soft_targets)`` in the shuffled order; ``F.cross_entropy(logits,
    soft_targets)`` equals ``lam * CE(y) + (1 - lam) * CE(y_partner)``."""
    from torchvision.transforms import v2

    perm = torch.randperm(len(x), generator=generator).to(x.device)
    with generator_scope(generator):
        mixed, targets = v2.CutMix(alpha=alpha, num_classes=num_classes)(x[perm], y[perm])
    return mixed, targets
