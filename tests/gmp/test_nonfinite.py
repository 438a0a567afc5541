"""GMP grounding refuses non-finite features and model outputs, and word ids outside the vocabulary."""

import math

import numpy as np
import pytest
import torch

from reprozoo.errors import ConfigError, DataError
from reprozoo.gmp.data import ToyConfig, make_split, make_world
from reprozoo.gmp.inference import Grounder
from reprozoo.gmp.models import GMP, GrounderConfig

from .conftest import tiny_batch, tiny_config


@pytest.fixture(scope="module")
def grounder():
    torch.manual_seed(0)
    world = make_world(ToyConfig(), seed=0)
    cfg = GrounderConfig(vocab_size=len(world.vocab), word_dim=32, frame_dim=32, d_model=16, heads=2, layers=1,
                         ffn=16, grid=16, components=[1, 2, 3], n_neg=2)
    model = GMP(cfg, torch.as_tensor(world.vocab.vectors)).eval()
    return Grounder(model, world.vocab, 64), make_split(world, 1, seed=1).features[0], world


def test_huge_features_give_an_error_not_nan_segments(grounder):
    g, feats, _ = grounder
    # 1e30 is finite in float32, but the model's outputs are not: `ground` printed "nan clips"
    with pytest.raises(DataError, match=r"^clip.npy: the model's outputs are not finite for these features "
                                        r"\(largest \|value\| 1e\+30\)"):
        g.ground(np.full_like(feats, 1e30), "person v1 o1", name="clip.npy")


@pytest.mark.parametrize("value, shown", [(math.nan, "nan"), (math.inf, "inf"), (1e39, "inf")])
def test_non_finite_features_named(grounder, value, shown):
    g, feats, _ = grounder
    bad = feats.astype(np.float64).copy()
    bad[2, 3] = value  # 1e39 overflows float32
    with pytest.raises(DataError, match=rf"^v.npy: features must be finite; index \(2, 3\) is {shown}"):
        g.ground(bad, "person v1 o1", name="v.npy")
    with pytest.raises(ConfigError, match=r"^top must be >= 1, got 0$"):
        g.ground(feats, "person v1 o1", top=0)
    r = g.ground(feats, "person v1 o1", duration=10.0)
    assert all(math.isfinite(v) for v in r["segment"]) and 0 <= r["segment"][0] < r["segment"][1] <= 10.0


def test_model_refuses_word_ids_outside_the_vocabulary():
    model = GMP(tiny_config()).eval()
    batch = tiny_batch()
    batch["words"][0, 0] = 11  # vocab_size = 10: ids 1..10; used to be an IndexError
    with pytest.raises(DataError, match=r"^word id 11 is outside the vocabulary: ids are 1..10 \(0 = padding\)$"):
        model(batch)
    batch = tiny_batch()
    batch["words"][1, 0] = -2
    with pytest.raises(DataError, match=r"^word id -2 is outside the vocabulary"):
        model(batch)
    batch = tiny_batch()
    batch["video"][0, 0, 0] = math.nan
    with pytest.raises(DataError, match=r"^video features must be finite; index \(0, 0, 0\) is nan"):
        model(batch)
    batch = tiny_batch()
    batch["lengths"][0] = 0
    with pytest.raises(DataError, match=r"^lengths must give one length in 1..5 per sentence"):
        model(batch)
    with pytest.raises(DataError, match=r"^words must be \(B, L\) integer ids, got torch.float32"):
        model({**tiny_batch(), "words": tiny_batch()["words"].float()})
