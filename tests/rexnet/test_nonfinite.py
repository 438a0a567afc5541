"""ReXNet schedule and rank helpers refuse negative sizes and non-finite features."""

import math

import pytest
import torch

from reprozoo.errors import ConfigError, DataError
from reprozoo.rexnet.rank import rank_from_singular_values, rank_ratio, singular_values
from reprozoo.rexnet.schedule import make_divisible, rexnet_schedule, schedule_macs, stagewise_channels


def test_schedule_macs_refuses_impossible_sizes():
    s = rexnet_schedule()
    with pytest.raises(ConfigError, match=r"^image_size must be >= 1, got -5$"):
        schedule_macs(s, -5)  # used to answer a number
    with pytest.raises(ConfigError, match=r"^num_classes must be >= 1, got -5$"):
        schedule_macs(s, 224, num_classes=-5)
    with pytest.raises(ConfigError, match=r"^image_size must be an integer, got 224.5$"):
        schedule_macs(s, 224.5)
    with pytest.raises(ConfigError, match=r"^target_macs must be a finite number, got nan$"):
        stagewise_channels(math.nan)
    with pytest.raises(ConfigError, match=r"^value must be a finite number, got nan$"):
        make_divisible(math.nan)  # used to be a ValueError from int()
    assert schedule_macs(s, 224) == schedule_macs(s, 224.0) > 0


def test_rank_ratio_refuses_nan_features():
    y = torch.eye(4)
    y[1, 2] = math.nan
    with pytest.raises(DataError, match=r"^features must be finite; index \(1, 2\) is nan"):
        rank_ratio(y)  # used to be torch's LinAlgError
    with pytest.raises(DataError, match=r"^features must be finite"):
        singular_values(y)
    with pytest.raises(ConfigError, match=r"^rank_ratio needs at least one row and one channel, got \(0, 3\)$"):
        rank_ratio(torch.zeros(0, 3))
    with pytest.raises(ConfigError, match=r"^rank_ratio needs a torch tensor, got list$"):
        rank_ratio([[1.0, 0.0], [0.0, 1.0]])
    with pytest.raises(ConfigError, match=r"^threshold must be a finite number, got nan$"):
        rank_ratio(torch.eye(3), threshold=math.nan)
    with pytest.raises(DataError, match=r"^singular values must be finite"):
        rank_from_singular_values(torch.tensor([1.0, math.inf]), (2, 2))
    assert rank_ratio(torch.eye(4)) == 1.0
    assert rank_ratio(torch.ones(5, 4)) == 0.25
