"""The contract between an auto-regressive ("mother") model and the parallel samplers.

A sampler needs exactly two things from a model:

1. ``conditionals(x)``: given a full canvas ``x`` of shape ``(B, N)``, the parameters of every
   position's conditional ``p(x_t | x_<t)`` in ONE parallel call (teacher forcing), shape
   ``(B, N, P)``. Position ``t`` must not look at ``x_t, x_t+1, ...`` (checked by
   :func:`reprozoo.nara.checks.check_causality`).
2. a :class:`Family` that turns parameters plus a fixed noise draw into a value
   (``x_t = S(params_t, u_t)``, deterministic given the noise), and scores values (log-prob).

Any object with ``length``, ``family`` and ``conditionals`` works (:class:`ParallelAR` is a
``typing.Protocol``). :class:`BernoulliAR`, :class:`CategoricalAR` and :class:`GaussianAR` wrap a
plain ``nn.Module`` that maps ``(B, N)`` to per-position outputs.
"""

from __future__ import annotations

import math
from typing import Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from torch import nn

from reprozoo.errors import ConfigError, DataError


class Family:
    """A per-position output distribution with a reparameterised sampler ``S(params, noise)``."""

    name: str = "family"
    discrete: bool = True
    param_size: int = 1  # P: parameters per position

    def draw_noise(self, shape: tuple[int, ...], generator: torch.Generator | None = None,
                   device: torch.device | str = "cpu") -> torch.Tensor:
        raise NotImplementedError

    def sample(self, params: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """``params (..., P)``, ``noise (...)`` -> values ``(...)`` (float), deterministic."""
        raise NotImplementedError

    def log_prob(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        """Per-position log-likelihood ``(...)`` of values ``x`` under ``params``."""
        raise NotImplementedError

    def features(self, params: torch.Tensor) -> torch.Tensor:
        """A few numbers per position that describe the conditional (input of the confidence
        predictor), shape ``(..., F)``."""
        raise NotImplementedError

    @property
    def feature_size(self) -> int:
        return self.features(torch.zeros(1, self.param_size)).shape[-1]

    # --- inputs of the per-position confidence predictor (cheap, elementwise) ---
    def noise_code(self, noise: torch.Tensor) -> torch.Tensor:
        """A transform of the shared noise computed ONCE per sampling run (e.g. ``logit(u)``) and
        handed to :meth:`margin` at every call; default: the noise itself."""
        return noise

    def margin(self, params: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        """``(..., K)`` numbers saying how far the fixed noise is from changing the sampled value
        (the larger, the more a context change must move the conditional to flip it); ``K`` may be 0."""
        return params.new_zeros(*params.shape[:-1], 0)

    def change_scale(self, params: torch.Tensor) -> torch.Tensor | None:
        """Per-position scale that makes value changes comparable across positions (the noise scale
        of continuous families); ``None`` for discrete families (a change is a change)."""
        return None


class Bernoulli(Family):
    """Binary values; params are logits; noise ``u ~ U(0,1)``; ``x = 1[u < sigmoid(logit)]``
    (inverse CDF)."""

    name, discrete, param_size = "bernoulli", True, 1

    def draw_noise(self, shape, generator=None, device="cpu"):
        return torch.rand(shape, generator=generator, device=device)

    def sample(self, params, noise):
        return (noise < torch.sigmoid(params[..., 0])).to(params.dtype)

    def log_prob(self, x, params):
        return -F.binary_cross_entropy_with_logits(params[..., 0], x, reduction="none")

    def features(self, params):
        return torch.sigmoid(params)

    def noise_code(self, noise):
        return torch.logit(noise, eps=1e-6)

    def margin(self, params, code):
        # x = 1[u < sigmoid(l)] = 1[logit(u) < l]: the value flips once l crosses logit(u)
        return (code - params[..., 0]).clamp(-12.0, 12.0).unsqueeze(-1)


class Categorical(Family):
    """``K`` classes coded as floats ``0..K-1``; params are logits ``(..., K)``; noise
    ``u ~ U(0,1)``; inverse CDF: ``x = #{k : cdf_k <= u}``."""

    name, discrete = "categorical", True

    def __init__(self, classes: int):
        if classes < 2:
            raise ConfigError(f"a categorical family needs at least 2 classes, got {classes}")
        self.param_size = classes

    def draw_noise(self, shape, generator=None, device="cpu"):
        return torch.rand(shape, generator=generator, device=device)

    def sample(self, params, noise):
        cdf = torch.softmax(params, dim=-1).cumsum(-1)
        idx = (cdf <= noise.unsqueeze(-1)).sum(-1).clamp_max(self.param_size - 1)
        return idx.to(params.dtype)

    def log_prob(self, x, params):
        logp = torch.log_softmax(params, dim=-1)
        return logp.gather(-1, x.long().unsqueeze(-1)).squeeze(-1)

    def features(self, params):
        return torch.softmax(params, dim=-1)

    def margin(self, params, code):
        # distance of u to the nearest class boundary of the inverse CDF
        cdf = torch.softmax(params, dim=-1).cumsum(-1)[..., :-1]
        return (cdf - code.unsqueeze(-1)).abs().amin(-1, keepdim=True)


class Gaussian(Family):
    """Continuous values; params ``(mu, log_sigma)``; noise ``eps ~ N(0,1)``;
    ``x = mu + exp(log_sigma) * eps``. ``min_log_sigma`` floors the scale."""

    name, discrete, param_size = "gaussian", False, 2

    def __init__(self, min_log_sigma: float = -7.0):
        self.min_log_sigma = min_log_sigma

    def _split(self, params):
        return params[..., 0], params[..., 1].clamp_min(self.min_log_sigma)

    def draw_noise(self, shape, generator=None, device="cpu"):
        return torch.randn(shape, generator=generator, device=device)

    def sample(self, params, noise):
        mu, log_sigma = self._split(params)
        return mu + torch.exp(log_sigma) * noise

    def log_prob(self, x, params):
        mu, log_sigma = self._split(params)
        z = (x - mu) * torch.exp(-log_sigma)
        return -0.5 * z * z - log_sigma - 0.5 * math.log(2 * math.pi)

    def features(self, params):
        mu, log_sigma = self._split(params)
        return torch.stack([mu, log_sigma], dim=-1)

    def scale(self, params: torch.Tensor) -> torch.Tensor:
        return torch.exp(self._split(params)[1])

    def change_scale(self, params):
        return self.scale(params)


@runtime_checkable
class ParallelAR(Protocol):
    """What the samplers need from an auto-regressive model (a structural type).

    ``length``: sequence length N (generation order = index order; raster order for images).
    ``family``: the per-position output :class:`Family`.
    ``conditionals(x)``: ``(B, N)`` canvas -> ``(B, N, P)`` parameters of ``p(x_t | x_<t)`` for
    every ``t`` at once.
    """

    length: int
    family: Family

    def conditionals(self, x: torch.Tensor) -> torch.Tensor: ...


class ModuleAR(nn.Module):
    """Adapter base: wraps ``net`` (``(B, N) -> (B, N)`` or ``(B, N, P)`` outputs) as a
    :class:`ParallelAR`. Subclasses fix the family."""

    def __init__(self, net: nn.Module, length: int, family: Family):
        super().__init__()
        if int(length) < 1:
            raise DataError(f"sequence length must be >= 1, got {length}; an AR model needs positions")
        self.net, self.length, self.family = net, int(length), family

    def conditionals(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 2 or x.shape[1] != self.length:
            raise DataError(f"expected a canvas of shape (batch, {self.length}), got {tuple(x.shape)}")
        out = self.net(x)
        if out.dim() == 2:
            out = out.unsqueeze(-1)
        if out.shape[:2] != x.shape or out.shape[-1] != self.family.param_size:
            raise ConfigError(f"the wrapped net must return (batch, {self.length}, {self.family.param_size}) "
                              f"parameters for a {self.family.name} model, got {tuple(out.shape)}")
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conditionals(x)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Per-sequence log-likelihood (sum over positions), one parallel call."""
        return self.family.log_prob(x, self.conditionals(x)).sum(-1)


class BernoulliAR(ModuleAR):
    """Binary AR model from a net returning ``(B, N)`` logits."""

    def __init__(self, net: nn.Module, length: int):
        super().__init__(net, length, Bernoulli())


class CategoricalAR(ModuleAR):
    """Categorical AR model from a net returning ``(B, N, K)`` logits; values are class ids."""

    def __init__(self, net: nn.Module, length: int, classes: int):
        super().__init__(net, length, Categorical(classes))


class GaussianAR(ModuleAR):
    """Gaussian AR model from a net returning ``(B, N, 2)`` = ``(mu, log_sigma)``."""

    def __init__(self, net: nn.Module, length: int, min_log_sigma: float = -7.0):
        super().__init__(net, length, Gaussian(min_log_sigma))


def sequence_log_prob(model: ParallelAR, x: torch.Tensor, start: int = 0) -> torch.Tensor:
    """``log p(x_start..x_N-1 | x_<start)`` per sequence under ``model`` (one parallel call)."""
    lp = model.family.log_prob(x, model.conditionals(x))
    return lp[:, start:].sum(-1)
