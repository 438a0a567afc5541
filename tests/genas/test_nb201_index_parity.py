"""NB201Genotype.index is NAS-Bench-201's own benchmark index.

The fixture ``nb201_facts.json`` was made with the benchmark authors' code
(D-X-Y/AutoDL-Projects, ``exps/NAS-Bench-201/main.py`` generate_meta_info): the cells its
``main.py`` asserts, the best CIFAR-10 cell's index, generation position -> benchmark index
examples and the sha256 of the JSON list of all 15,625 strings in benchmark order."""

import hashlib
import json
from pathlib import Path

import pytest

from reprozoo.genas.spaces import NB201_SIZE, NB201Genotype, as_nb201

FACTS = json.loads((Path(__file__).parents[1] / "fixtures" / "genas" / "nb201_facts.json").read_text())
BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"


def test_parity_best_cell_has_benchmark_index_9930():
    g = NB201Genotype.from_string(BEST)
    assert FACTS["best_cifar10_cell"]["string"] == BEST
    assert g.index == FACTS["best_cifar10_cell"]["benchmark_index"] == 9930
    assert g.position == FACTS["best_cifar10_cell"]["gen_all_position"] == 11_668
    assert NB201Genotype.from_index(9930).to_string() == BEST
    assert as_nb201(9930) == g


@pytest.mark.parametrize("index", sorted(int(i) for i in FACTS["asserted_in_main_py"]))
def test_parity_cells_asserted_by_the_benchmark_code(index):
    text = FACTS["asserted_in_main_py"][str(index)]
    assert NB201Genotype.from_index(index).to_string() == text
    assert NB201Genotype.from_string(text).index == index


def test_parity_generation_positions_map_to_benchmark_indices():
    none = NB201Genotype.from_string(FACTS["all_none_cell"]["string"])
    assert none.position == 0 and none.index == FACTS["all_none_cell"]["benchmark_index"] == 1651
    for pos, idx in FACTS["examples_gen_all_position_to_benchmark_index"].items():
        assert NB201Genotype.from_position(int(pos)).index == idx
    first = [NB201Genotype.from_index(i).position for i in range(10)]
    assert first == FACTS["benchmark_index_to_gen_all_position_first_10"]


def test_parity_all_15625_cells_in_benchmark_order_hash_to_the_official_list():
    strings = [NB201Genotype.from_index(i).to_string() for i in range(NB201_SIZE)]
    assert len(set(strings)) == NB201_SIZE
    payload = json.dumps(strings, separators=(",", ":")).encode()  # the benchmark list's JSON form
    assert hashlib.sha256(payload).hexdigest() == FACTS["archs_json_sha256"]
    assert all(NB201Genotype.from_string(s).index == i for i, s in enumerate(strings))
