"""Search spaces: the NAS-Bench-201 cell (string notation, index <-> genotype) and the DARTS cell
space of the GeNAS code (28-gene genotypes, normal + reduction cell, randomized repair).

NAS-Bench-201 (Dong & Yang, ICLR 2020): a cell has 4 nodes; node j sums one op applied to every
earlier node, so there are 6 edges in the order 1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2, each one of
5 ops; 5**6 = 15,625 cells. The string notation is ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``.

DARTS (Liu et al., ICLR 2019) as used by GeNAS: 8 ops indexed 0..7, 14 edges per cell (node
n2..n5 has an edge from every earlier node), 14 genes for the normal cell then 14 for the
reduction cell; a legal cell gives every intermediate node exactly 2 non-``none`` inputs.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from reprozoo.errors import ConfigError

# ------------------------------------------------------------------------------ NAS-Bench-201
NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
NB201_ALIASES = {"conv_1x1": "nor_conv_1x1", "conv_3x3": "nor_conv_3x3", "skip": "skip_connect",
                 "avgpool_3x3": "avg_pool_3x3", "identity": "skip_connect"}
NB201_EDGES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))  # (to, from), the string's order
NB201_NODES = 4
NB201_SIZE = len(NB201_OPS) ** len(NB201_EDGES)  # 15,625


NB201_SHUFFLE_SEED = 88  # the benchmark's generate_meta_info: random.seed(88); random.shuffle(archs)


@functools.cache
def _nb201_order() -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(generation position of each benchmark index, benchmark index of each generation position).

    NAS-Bench-201 enumerates the cells in generation order (base 5, first edge most significant),
    then shuffles the list once with Python's Mersenne Twister seeded 88; benchmark index i is the
    cell at position i after the shuffle. The permutation of a list depends only on its length,
    so shuffling the positions 0..15,624 reproduces it."""
    order = list(range(NB201_SIZE))
    random.Random(NB201_SHUFFLE_SEED).shuffle(order)
    inverse = [0] * NB201_SIZE
    for i, pos in enumerate(order):
        inverse[pos] = i
    return tuple(order), tuple(inverse)


class ArchitectureError(ConfigError):
    """A malformed architecture string, an unknown op, or a genotype outside the space."""


@dataclass(frozen=True)
class NB201Genotype:
    """One NAS-Bench-201 cell: the op name of each of the 6 edges, in :data:`NB201_EDGES` order."""

    ops: tuple[str, ...]

    def __post_init__(self):
        ops = tuple(self.ops)
        if len(ops) != len(NB201_EDGES):
            raise ArchitectureError(f"a NAS-Bench-201 cell has {len(NB201_EDGES)} edges, got {len(ops)} ops")
        bad = [o for o in ops if o not in NB201_OPS]
        if bad:
            raise ArchitectureError(f"unknown op '{bad[0]}'; NAS-Bench-201 ops are {', '.join(NB201_OPS)}")
        object.__setattr__(self, "ops", ops)

    # -------------------------------------------------------------- notation
    @classmethod
    def from_string(cls, text: str) -> NB201Genotype:
        """Parse ``|nor_conv_3x3~0|+|none~0|skip_connect~1|+|...~0|...~1|...~2|``.

        ``conv_1x1`` / ``conv_3x3`` are accepted for ``nor_conv_1x1`` / ``nor_conv_3x3``."""
        if not isinstance(text, str) or not text.strip():
            raise ArchitectureError("empty architecture string; expected '|op~0|+|op~0|op~1|+|op~0|op~1|op~2|'")
        nodes = text.strip().split("+")
        if len(nodes) != NB201_NODES - 1:
            raise ArchitectureError(f"malformed architecture string '{text}': expected {NB201_NODES - 1} "
                                    f"nodes separated by '+', found {len(nodes)}")
        ops = []
        for j, node in enumerate(nodes, start=1):
            if not (node.startswith("|") and node.endswith("|")) or len(node) < 2:
                raise ArchitectureError(f"malformed architecture string '{text}': node {j} '{node}' must be "
                                        "wrapped in '|'")
            items = node[1:-1].split("|")
            if len(items) != j:
                raise ArchitectureError(f"malformed architecture string '{text}': node {j} needs {j} inputs, "
                                        f"found {len(items)}")
            for i, item in enumerate(items):
                if item.count("~") != 1:
                    raise ArchitectureError(f"malformed architecture string '{text}': '{item}' must be 'op~input'")
                op, src = item.split("~")
                if src != str(i):
                    raise ArchitectureError(f"malformed architecture string '{text}': input {i} of node {j} "
                                            f"is written '~{src}'")
                op = NB201_ALIASES.get(op, op)
                if op not in NB201_OPS:
                    raise ArchitectureError(f"unknown op '{op}' in '{text}'; NAS-Bench-201 ops are "
                                            f"{', '.join(NB201_OPS)}")
                ops.append(op)
        return cls(tuple(ops))

    def to_string(self) -> str:
        it = iter(self.ops)
        nodes = ["|" + "|".join(f"{next(it)}~{i}" for i in range(j)) + "|" for j in range(1, NB201_NODES)]
        return "+".join(nodes)

    __str__ = to_string

    # -------------------------------------------------------------- integer codes
    @property
    def codes(self) -> tuple[int, ...]:
        return tuple(NB201_OPS.index(o) for o in self.ops)

    @classmethod
    def from_codes(cls, codes: Sequence[int]) -> NB201Genotype:
        codes = [int(c) for c in codes]
        bad = [c for c in codes if not 0 <= c < len(NB201_OPS)]
        if bad:
            raise ArchitectureError(f"op code {bad[0]} outside the NAS-Bench-201 space (0..{len(NB201_OPS) - 1})")
        return cls(tuple(NB201_OPS[c] for c in codes))

    @property
    def position(self) -> int:
        """Generation-order position in 0..15,624: the six op codes as a base-5 number, first
        edge most significant (the order in which the benchmark code enumerates the cells)."""
        out = 0
        for c in self.codes:
            out = out * len(NB201_OPS) + c
        return out

    @classmethod
    def from_position(cls, position: int) -> NB201Genotype:
        position = int(position)
        if not 0 <= position < NB201_SIZE:
            raise ArchitectureError(f"genotype position {position} outside the NAS-Bench-201 space "
                                    f"(0..{NB201_SIZE - 1})")
        codes = []
        for _ in NB201_EDGES:
            position, c = divmod(position, len(NB201_OPS))
            codes.append(c)
        return cls.from_codes(codes[::-1])

    @property
    def index(self) -> int:
        """The NAS-Bench-201 benchmark index (0..15,624) of this cell: the one its API and tables use."""
        return _nb201_order()[1][self.position]

    @classmethod
    def from_index(cls, index: int) -> NB201Genotype:
        """The cell at NAS-Bench-201 benchmark index ``index``."""
        index = int(index)
        if not 0 <= index < NB201_SIZE:
            raise ArchitectureError(f"genotype index {index} outside the NAS-Bench-201 space (0..{NB201_SIZE - 1})")
        return cls.from_position(_nb201_order()[0][index])

    # -------------------------------------------------------------- structure
    def live_nodes(self) -> list[bool]:
        """Which nodes carry signal from the input (node 0) through non-``none`` edges."""
        live = [True] + [False] * (NB201_NODES - 1)
        for (to, frm), op in zip(NB201_EDGES, self.ops):
            if op != "none" and live[frm]:
                live[to] = True
        return live

    @property
    def connected(self) -> bool:
        """False when the cell's output (node 3) is the constant zero."""
        return self.live_nodes()[-1]


def as_nb201(genotype) -> NB201Genotype:
    """A genotype, its string, its benchmark index or its 6 op codes -> :class:`NB201Genotype`."""
    if isinstance(genotype, NB201Genotype):
        return genotype
    if isinstance(genotype, str):
        return NB201Genotype.from_string(genotype)
    if isinstance(genotype, (int, np.integer)):
        return NB201Genotype.from_index(int(genotype))
    if isinstance(genotype, (list, tuple)) and all(isinstance(c, (int, np.integer)) for c in genotype):
        return NB201Genotype.from_codes(genotype)
    raise ArchitectureError(f"not a NAS-Bench-201 genotype: {genotype!r} (give a string, an index or 6 op codes)")


def sample_nb201(n: int, rng: np.random.Generator, *, replace: bool = False,
                 connected_only: bool = False) -> list[NB201Genotype]:
    """``n`` genotypes drawn uniformly from the 15,625 (distinct unless ``replace``)."""
    if n < 0 or (not replace and n > NB201_SIZE):
        raise ConfigError(f"cannot draw {n} distinct genotypes from a space of {NB201_SIZE}")
    out: list[NB201Genotype] = []
    seen: set[int] = set()
    while len(out) < n:
        g = NB201Genotype.from_position(int(rng.integers(NB201_SIZE)))
        if (not replace and g.position in seen) or (connected_only and not g.connected):
            continue
        seen.add(g.position)
        out.append(g)
    return out


# ------------------------------------------------------------------------------ DARTS
DARTS_OPS = ("none", "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5",
             "dil_conv_3x3", "dil_conv_5x5")
DARTS_STEPS = 4  # intermediate nodes n2..n5
# (to, from) for the 14 edges: n2<-{0,1}, n3<-{0,1,2}, n4<-{0..3}, n5<-{0..4}
DARTS_EDGES = tuple((j + 2, i) for j in range(DARTS_STEPS) for i in range(j + 2))
DARTS_GENES = 2 * len(DARTS_EDGES)  # 28


@dataclass(frozen=True)
class DartsGenotype:
    """28 op codes: 14 for the normal cell, then 14 for the reduction cell (edge order
    :data:`DARTS_EDGES`); legal when every intermediate node has exactly two non-``none`` inputs."""

    genes: tuple[int, ...]

    def __post_init__(self):
        genes = tuple(int(g) for g in self.genes)
        if len(genes) != DARTS_GENES:
            raise ArchitectureError(f"a DARTS genotype has {DARTS_GENES} genes (14 normal + 14 reduction), "
                                    f"got {len(genes)}")
        bad = [g for g in genes if not 0 <= g < len(DARTS_OPS)]
        if bad:
            raise ArchitectureError(f"op code {bad[0]} outside the DARTS space (0..{len(DARTS_OPS) - 1})")
        object.__setattr__(self, "genes", genes)

    @classmethod
    def from_string(cls, text: str) -> DartsGenotype:
        try:
            genes = [int(t) for t in text.replace(" ", "").split(",") if t]
        except ValueError:
            raise ArchitectureError(f"malformed DARTS genotype '{text}': expected 28 comma-separated op codes") from None
        return cls(tuple(genes))

    def to_string(self) -> str:
        return ",".join(map(str, self.genes))

    __str__ = to_string

    @property
    def normal(self) -> tuple[int, ...]:
        return self.genes[: len(DARTS_EDGES)]

    @property
    def reduce(self) -> tuple[int, ...]:
        return self.genes[len(DARTS_EDGES):]

    def cell_ops(self, reduction: bool) -> list[tuple[int, int, str]]:
        """``(to, from, op name)`` for the non-``none`` edges of one cell."""
        genes = self.reduce if reduction else self.normal
        return [(to, frm, DARTS_OPS[g]) for (to, frm), g in zip(DARTS_EDGES, genes) if g != 0]

    @property
    def legal(self) -> bool:
        return all(_node_inputs(cell, j) == 2 for cell in (self.normal, self.reduce) for j in range(DARTS_STEPS))


def _node_slice(j: int) -> slice:
    start = sum(k + 2 for k in range(j))
    return slice(start, start + j + 2)


def _node_inputs(cell: Sequence[int], j: int) -> int:
    return sum(1 for g in cell[_node_slice(j)] if g != 0)


def repair_darts(genes: Sequence[int], rng: np.random.Generator) -> DartsGenotype:
    """The GeNAS/RLNAS ``check_cand`` repair: node k (k edges of k+2 must be ``none``) gets
    randomly chosen non-none edges set to none when too few are none, and randomly chosen none
    edges given a random op from 1..7 when too many are none."""
    out = [int(g) for g in genes]
    DartsGenotype(tuple(out))  # range check
    for cell in range(2):
        base = cell * len(DARTS_EDGES)
        for j in range(DARTS_STEPS):
            sl = _node_slice(j)
            idx = list(range(base + sl.start, base + sl.stop))
            nones = [i for i in idx if out[i] == 0]
            others = [i for i in idx if out[i] != 0]
            need = j  # node j has j + 2 inputs, j of them must be none
            if len(nones) < need:
                for i in rng.choice(others, size=need - len(nones), replace=False):
                    out[int(i)] = 0
            elif len(nones) > need:
                for i in rng.choice(nones, size=len(nones) - need, replace=False):
                    out[int(i)] = int(rng.integers(1, len(DARTS_OPS)))
    return DartsGenotype(tuple(out))


def sample_darts(rng: np.random.Generator) -> DartsGenotype:
    """Each of the 28 genes uniform in 0..7, then :func:`repair_darts` (the training-time sampler)."""
    return repair_darts(rng.integers(0, len(DARTS_OPS), size=DARTS_GENES).tolist(), rng)


# searched cells of the GeNAS model zoo (normal then reduction), DARTS op indices
GENAS_GENOTYPES = {
    "FLATNESS_CIFAR10": "3,6,0,4,4,0,6,6,0,0,0,0,4,3,5,2,0,6,4,0,3,0,6,0,0,5,0,7",
    "ANGLE_FLATNESS_CIFAR10": "5,4,4,4,0,4,5,0,0,4,0,0,0,4,7,7,2,3,0,4,1,0,0,0,0,0,5,6",
    "FLATNESS_CIFAR100": "3,5,0,4,4,0,0,4,5,0,4,0,0,7,6,3,2,0,5,0,5,0,7,0,1,1,0,0",
    "ANGLE_FLATNESS_CIFAR100": "3,5,1,4,0,0,4,0,4,0,4,0,0,5,6,4,0,7,2,1,3,0,0,0,4,0,0,7",
}
GENAS_INIT_CHANNELS = {"FLATNESS_CIFAR10": 52, "ANGLE_FLATNESS_CIFAR10": 44, "FLATNESS_CIFAR100": 46,
                       "ANGLE_FLATNESS_CIFAR100": 48}


def genas_genotype(name: str) -> DartsGenotype:
    if name not in GENAS_GENOTYPES:
        raise ArchitectureError(f"unknown GeNAS genotype '{name}'; known: {', '.join(GENAS_GENOTYPES)}")
    return DartsGenotype.from_string(GENAS_GENOTYPES[name])
