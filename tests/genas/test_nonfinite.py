"""Non-finite numbers at the public entry points of reprozoo.genas.correlation."""

import math

import pytest

from reprozoo.errors import ConfigError, DataError
from reprozoo.genas.correlation import (
    bootstrap_ci,
    correlation_report,
    kendall,
    regret,
    spearman,
    top_k_agreement,
)


@pytest.mark.parametrize("fn", [kendall, spearman, regret, lambda s, t: top_k_agreement(s, t, 1)])
def test_nan_score_is_refused_not_dropped(fn):
    # kendall([1, nan, 3], [1, 2, 3]) used to answer a perfect 1.0, regret 0.0
    with pytest.raises(DataError, match=r"^scores must be finite; index 1 is nan \(1 non-finite in all\)$"):
        fn([1, math.nan, 3], [1, 2, 3])
    with pytest.raises(DataError, match=r"^ground truth must be finite; index 2 is inf"):
        fn([1, 2, 3], [1, 2, math.inf])


def test_omit_policy_drops_pairs_explicitly():
    assert kendall([1, math.nan, 3], [1, 5, 2], nan_policy="omit") == pytest.approx(1.0)
    assert regret([0.1, math.nan, 0.5], [0.7, 0.9, 0.8], nan_policy="omit") == pytest.approx(0.0)
    with pytest.raises(ConfigError, match=r"^nan_policy must be one of raise, omit, got 'drop'$"):
        kendall([1, 2], [1, 2], nan_policy="drop")


def test_other_arguments():
    with pytest.raises(DataError, match=r"^scores must be numbers"):
        kendall(["a", "b"], [1, 2])
    with pytest.raises(ConfigError, match=r"^k must be an integer, got 2.5$"):
        top_k_agreement([1, 2, 3], [1, 2, 3], 2.5)
    with pytest.raises(ConfigError, match=r"^level must be a finite number, got nan$"):
        bootstrap_ci(kendall, [([1, 2, 3], [1, 2, 3])], level=math.nan)
    with pytest.raises(DataError, match="scores must be finite"):
        correlation_report({"p": [1, 2, math.nan]}, [1, 2, 3], k=1, n_boot=5)
    with pytest.raises(DataError, match="needs at least one group"):
        bootstrap_ci(kendall, [([math.nan], [1.0])], nan_policy="omit")
    assert kendall([1, 2, 3, 4], [1, 2, 4, 3]) == pytest.approx(4 / 6)


def test_evolution_refuses_non_finite_scores():
    import numpy as np

    from reprozoo.genas.evolution import EvolutionConfig, NB201Space, evolve

    def score(g):
        return math.nan if "none" in g.ops else float(len(set(g.ops)))

    with pytest.raises(DataError, match=r"^score_fn returned nan for .*; a search needs finite scores$"):
        evolve(score, NB201Space(), EvolutionConfig(generations=2), np.random.default_rng(0))
    with pytest.raises(DataError, match=r"^score_fn must return a number, got str"):
        evolve(lambda g: "high", NB201Space(), EvolutionConfig(generations=1), np.random.default_rng(0))
