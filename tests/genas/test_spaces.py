import numpy as np
import pytest

from reprozoo.errors import ConfigError
from reprozoo.genas.spaces import (
    DARTS_EDGES,
    NB201_SIZE,
    ArchitectureError,
    DartsGenotype,
    NB201Genotype,
    as_nb201,
    genas_genotype,
    repair_darts,
    sample_darts,
    sample_nb201,
)

BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"


def test_nb201_string_round_trip_and_index():
    g = NB201Genotype.from_string(BEST)
    assert g.to_string() == BEST and str(g) == BEST
    assert g.codes == (3, 3, 3, 1, 3, 3)
    assert g.position == ((((3 * 5 + 3) * 5 + 3) * 5 + 1) * 5 + 3) * 5 + 3 == 11_668
    assert NB201Genotype.from_position(g.position) == g
    assert g.index == 9930  # the benchmark's index (shuffled order), not the generation position
    assert NB201Genotype.from_index(g.index) == g
    assert NB201_SIZE == 15_625
    assert {NB201Genotype.from_index(i).index for i in range(0, NB201_SIZE, 97)} == set(range(0, NB201_SIZE, 97))
    assert {NB201Genotype.from_position(i).position for i in range(0, NB201_SIZE, 97)} == set(range(0, NB201_SIZE, 97))
    # short names are accepted and printed in the benchmark's spelling
    alias = NB201Genotype.from_string("|conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|conv_1x1~1|none~2|")
    assert alias.to_string() == "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_1x1~1|none~2|"


@pytest.mark.parametrize("text, match", [
    ("", "empty"),
    ("|nor_conv_3x3~0|+|none~0|skip_connect~1|", "3 nodes"),
    ("|nor_conv_3x3~0|+|none~0|+|none~0|none~1|none~2|", "node 2 needs 2 inputs"),
    ("|conv_7x7~0|+|none~0|none~1|+|none~0|none~1|none~2|", "unknown op 'conv_7x7'"),
    ("|none~1|+|none~0|none~1|+|none~0|none~1|none~2|", "written '~1'"),
    ("none~0|+|none~0|none~1|+|none~0|none~1|none~2|", "wrapped"),
    ("|none0|+|none~0|none~1|+|none~0|none~1|none~2|", "op~input"),
])
def test_malformed_strings_name_the_problem(text, match):
    with pytest.raises(ArchitectureError, match=match):
        NB201Genotype.from_string(text)


def test_genotypes_outside_the_space_are_refused():
    with pytest.raises(ArchitectureError, match="outside"):
        NB201Genotype.from_index(NB201_SIZE)
    with pytest.raises(ArchitectureError, match="outside"):
        NB201Genotype.from_position(-1)
    with pytest.raises(ArchitectureError, match="outside"):
        NB201Genotype.from_codes([0, 1, 2, 3, 4, 5])
    with pytest.raises(ArchitectureError, match="6 edges"):
        NB201Genotype(("none",) * 5)
    with pytest.raises(ArchitectureError, match="not a NAS-Bench-201 genotype"):
        as_nb201(3.5)
    assert issubclass(ArchitectureError, ConfigError)


def test_connectivity():
    assert NB201Genotype.from_string(BEST).connected
    dead = NB201Genotype.from_string("|none~0|+|none~0|skip_connect~1|+|none~0|skip_connect~1|skip_connect~2|")
    assert not dead.connected  # nodes 1 and 2 never receive the input
    assert NB201Genotype.from_codes([0] * 3 + [1, 0, 0]).connected


def test_sampling_is_seeded_and_distinct():
    a = sample_nb201(50, np.random.default_rng(3))
    b = sample_nb201(50, np.random.default_rng(3))
    assert a == b and len({g.index for g in a}) == 50
    assert all(g.connected for g in sample_nb201(40, np.random.default_rng(0), connected_only=True))
    with pytest.raises(ConfigError):
        sample_nb201(NB201_SIZE + 1, np.random.default_rng(0))


def test_darts_repair_gives_two_inputs_per_node():
    assert len(DARTS_EDGES) == 14 and DARTS_EDGES[:5] == ((2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
    rng = np.random.default_rng(0)
    for _ in range(200):
        g = sample_darts(rng)
        assert g.legal
    all_none = repair_darts([0] * 28, np.random.default_rng(1))
    assert all_none.legal and all_none.normal[:2] != (0, 0) and 0 not in all_none.normal[:2]
    full = repair_darts([4] * 28, np.random.default_rng(1))
    assert full.legal and full.normal.count(0) == 0 + 1 + 2 + 3
    legal = genas_genotype("FLATNESS_CIFAR100")
    assert legal.legal and repair_darts(legal.genes, np.random.default_rng(5)) == legal


def test_darts_genotype_of_the_model_zoo():
    g = genas_genotype("FLATNESS_CIFAR100")
    normal = g.cell_ops(reduction=False)
    # n2 = skip(n0) + sep5(n1); n3 = sep3(n1) + sep3(n2); n4 = sep3(n2) + sep5(n3); n5 = sep3(n1) + dil5(n4)
    assert normal == [(2, 0, "skip_connect"), (2, 1, "sep_conv_5x5"), (3, 1, "sep_conv_3x3"), (3, 2, "sep_conv_3x3"),
                      (4, 2, "sep_conv_3x3"), (4, 3, "sep_conv_5x5"), (5, 1, "sep_conv_3x3"), (5, 4, "dil_conv_5x5")]
    assert DartsGenotype.from_string(g.to_string()) == g
    with pytest.raises(ArchitectureError, match="28 genes"):
        DartsGenotype((1,) * 27)
    with pytest.raises(ArchitectureError, match="op code 8"):
        DartsGenotype((8,) + (0,) * 27)
    with pytest.raises(ArchitectureError, match="comma-separated"):
        DartsGenotype.from_string("a,b")
    with pytest.raises(ArchitectureError, match="unknown GeNAS genotype"):
        genas_genotype("NOPE")
