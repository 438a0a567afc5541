import numpy as np
import pytest
import torch

from reprozoo.errors import ConfigError
from reprozoo.gmp.data import GroundingDataset, ToyConfig, collate, make_split, make_world


def test_toy_benchmark_is_seeded_and_has_the_three_event_shapes():
    world = make_world(ToyConfig(), seed=3)
    a, b = make_split(world, 300, seed=1), make_split(world, 300, seed=1)
    assert np.array_equal(a.features, b.features) and a.sentences == b.sentences
    assert not np.array_equal(make_split(world, 300, seed=2).features, a.features)
    assert a.features.shape == (300, 64, 32) and len(world.vocab) == 22
    frac = {t: a.types.count(t) / 300 for t in ("single", "two-part", "ramp")}
    assert frac["single"] == pytest.approx(0.4, abs=0.08) and frac["ramp"] == pytest.approx(0.2, abs=0.07)
    assert (a.gt[:, 0] < a.gt[:, 1]).all() and a.gt.min() >= 0 and a.gt.max() <= 1
    for kind, sent, (s, e) in zip(a.types, a.sentences, a.gt):
        words = sent.split()
        if kind == "two-part":
            assert words[3] == "then" and words[2] == words[5] and words[1] != words[4]
            assert 0.28 - 1 / 64 <= e - s <= 0.6 + 1 / 64
        elif kind == "ramp":
            assert words[1] == "slowly"
        else:
            assert len(words) == 3 and 0.15 - 1 / 64 <= e - s <= 0.4 + 1 / 64


def test_two_part_gap_differs_from_the_query_blocks():
    world = make_world(ToyConfig(gap_action=0.0, noise=0.0, scene_scale=0.0, distractors=[0, 0]), seed=0)
    data = make_split(world, 40, seed=0)
    i = data.types.index("two-part")
    s, e = (data.gt[i] * 64).round().astype(int)
    feats = data.features[i, s:e]
    idle = np.isclose(feats, world.idle[None]).all(1)
    assert idle.any() and not idle[0] and not idle[-1]  # idle gap between the two action blocks


def test_batches_pad_words_and_carry_masking_weights():
    world = make_world(ToyConfig(), seed=0)
    ds = GroundingDataset(make_split(world, 10, seed=0), world.vocab, seed_offset=100)
    batch = collate([ds[i] for i in range(4)])
    n = int(batch["lengths"].max())
    assert batch["words"].shape == (4, n) and batch["video"].shape == (4, 64, 32)
    assert batch["mask_seed"].tolist() == [100, 101, 102, 103]
    pad = torch.arange(n)[None] >= batch["lengths"][:, None]
    assert (batch["words"][pad] == 0).all() and (batch["weights"][pad] == 0).all()
    assert set(batch["weights"][~pad].tolist()) <= {1.0, 2.0}


def test_bad_toy_settings_are_config_errors():
    with pytest.raises(ConfigError, match="data.mix"):
        ToyConfig(mix=[1, 0]).validate()
    with pytest.raises(ConfigError, match="too long"):
        ToyConfig(part_len=[0.3, 0.45], gap_len=[0.1, 0.2]).validate()
