import numpy as np
import pytest
import torch
from torch import nn

from reprozoo.errors import ConfigError, UnknownNameError
from reprozoo.rainbow.memory import (
    EpisodicMemory,
    RainbowPolicy,
    balanced_random_select,
    herding_order,
    make_policy,
    stride_select,
    vote_uncertainty,
)


class CopyIndexModel(nn.Module):
    """Predicts ``pattern[copy index]`` where the copy index is written into the pixels."""

    def __init__(self, pattern, n_classes=4):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))
        self.pattern = torch.as_tensor(pattern)
        self.n_classes = n_classes
        self.modes = []

    def forward(self, x):
        self.modes.append(self.training)
        copy = x.flatten(1)[:, 0].round().long()
        return nn.functional.one_hot(self.pattern[copy], self.n_classes).float() + 0 * self.w


def _encode_copy(n):
    # perturbation writing the copy index (row // n) into every pixel
    return lambda x, g: (torch.arange(len(x)) // n).float().view(-1, 1, 1, 1).expand_as(x).clone()


@pytest.mark.parametrize("pattern,expected", [
    ([0] * 12, 0.0),                       # all 12 votes agree
    ([0, 1] * 6, 0.5),                      # 6 / 6
    ([0, 1, 2] * 4, 1 - 4 / 12),            # 4 / 4 / 4
    ([0] * 9 + [1, 2, 3], 1 - 9 / 12),      # 9 of 12 agree
])
def test_vote_uncertainty_on_stub_models(pattern, expected):
    n = 5
    model = CopyIndexModel(pattern).train()
    u = vote_uncertainty(model, torch.zeros(n, 1, 4, 4), _encode_copy(n), n_votes=12, batch_size=12 * n)
    assert u == pytest.approx([expected] * n)
    assert model.modes == [False] and model.training  # scored in eval mode, mode restored
    assert len(model.modes) == 1  # all 12 copies of the 5 candidates in ONE batched forward pass


def test_constant_model_has_zero_uncertainty_with_real_perturbation():
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 3))
    with torch.no_grad():
        model[1].weight.zero_()
        model[1].bias.copy_(torch.tensor([0.0, 1.0, 0.0]))
    u = vote_uncertainty(model, torch.rand(7, 1, 8, 8), n_votes=12, generator=torch.Generator().manual_seed(0))
    assert u.tolist() == [0.0] * 7


def test_stride_select_hand_case():
    # class 0: 10 candidates with distinct u; k = 6 // 2 = 3, step = 10 // 3 = 3 -> sorted ranks 0, 3, 6
    u = np.array([0.9, 0.0, 0.5, 0.3, 0.8, 0.1, 0.7, 0.2, 0.6, 0.4, 0.0, 0.5, 0.3])
    y = np.array([0] * 10 + [1] * 3)
    picked = stride_select(u, y, capacity=6, classes=[0, 1], rng=np.random.default_rng(0))
    ranks = np.argsort(u[:10])
    assert picked[:3].tolist() == [ranks[0], ranks[3], ranks[6]]
    assert u[picked[0]] == 0.0  # first pick = most certain
    assert sorted(picked[3:].tolist()) == [10, 11, 12]  # class 1 keeps its 3 (quota 3)


def test_stride_select_quota_and_random_fill():
    u = np.zeros(9)
    y = np.array([0] * 8 + [1])
    picked = stride_select(u, y, capacity=6, classes=[0, 1], rng=np.random.default_rng(1))
    assert len(picked) == 6 and len(set(picked.tolist())) == 6
    assert 8 in picked.tolist()  # the lone class-1 sample
    assert (y[picked] == 0).sum() == 5  # quota 3 + 2 random fill


def test_ties_are_broken_randomly_then_stable_sorted():
    u = np.array([0.0] * 6 + [0.5] * 6)
    y = np.zeros(12, dtype=int)
    picks = {tuple(stride_select(u, y, 2, [0], np.random.default_rng(s)).tolist()) for s in range(20)}
    assert len(picks) > 1
    for p in picks:  # step 6: one certain (u=0) and one uncertain (u=0.5) sample
        assert sorted(u[list(p)].tolist()) == [0.0, 0.5]


def test_k_smaller_than_classes_and_unknown_policy():
    with pytest.raises(ConfigError, match=r"memory size K=5 is smaller than the number of classes \(10\)"):
        balanced_random_select(np.arange(10), 5, list(range(10)), np.random.default_rng())
    with pytest.raises(ConfigError, match="K >= 10"):
        EpisodicMemory("rainbow", 5, num_classes=10)
    with pytest.raises(UnknownNameError, match="unknown memory policy 'rainbw'; choose one of: balanced"):
        make_policy("rainbw")


def test_reservoir_memory_keeps_first_k_then_samples_uniformly():
    mem = EpisodicMemory("reservoir", 4)
    rng = np.random.default_rng(0)
    mem.observe([10, 11, 12], [0, 1, 0], rng)
    assert mem.keys.tolist() == [10, 11, 12]
    counts = np.zeros(20)
    for s in range(2000):
        m = EpisodicMemory("reservoir", 4)
        m.observe(np.arange(20), np.zeros(20, int), np.random.default_rng(s))
        counts[m.keys] += 1
    assert counts.sum() == 8000
    assert np.allclose(counts / 2000, 0.2, atol=0.05)  # each item kept with prob K / n = 0.2


def test_rainbow_memory_rebuild_first_task_balanced_then_scored():
    x = torch.rand(40, 1, 8, 8)
    labels = np.repeat(np.arange(4), 10)
    mem = EpisodicMemory(RainbowPolicy(n_votes=4), 8, num_classes=4)
    fetch = lambda keys: x[torch.as_tensor(keys)]  # noqa: E731
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 4))
    mem.rebuild(np.arange(40), labels, np.random.default_rng(0), fetch=fetch, model=model,
                classes=np.arange(4), first_task=True)
    assert np.bincount(mem.labels, minlength=4).tolist() == [2, 2, 2, 2]
    assert mem.last_candidates_["uncertainty"] is None
    mem.rebuild(np.arange(40), labels, np.random.default_rng(0), fetch=fetch, model=model, classes=np.arange(4))
    assert np.bincount(mem.labels, minlength=4).tolist() == [2, 2, 2, 2]
    assert len(mem.last_candidates_["uncertainty"]) == 48  # old memory re-scored with the stream


def test_herding_hand_case():
    feats = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.7071, 0.7071], [0.9, 0.1]], dtype=torch.float64)
    # mean ~ (0.65, 0.45): closest single point is [0.7071, 0.7071]? distances -> index 3 then ...
    mu = feats.mean(0)
    first = int(((feats - mu) ** 2).sum(1).argmin())
    order = herding_order(feats, 3)
    assert order[0] == first and len(set(order.tolist())) == 3
    policy = make_policy("herding", feature_fn=lambda x: x.flatten(1))
    y = np.array([0, 0, 1, 1, 1, 1])
    xx = torch.tensor([[1.0, 0], [0, 1], [1, 0], [0, 1], [1, 1], [2, 2]]).view(6, 2, 1, 1)
    pos = policy.select(xx, y, 2, model=nn.Linear(1, 1), classes=[0, 1], rng=np.random.default_rng(0))
    assert sorted(y[pos].tolist()) == [0, 1]
    assert pos[1] in (4, 5)  # class 1's first herding pick is on the diagonal (closest to its mean)
