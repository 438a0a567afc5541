"""Evolutionary search over any proxy (SPOS / RLNAS / GeNAS): an all-time elite, mutation and
crossover children of the elite (repaired, never re-visited), random fill-up, a score cache so
no genotype is evaluated twice.

Defaults (DARTS space in the GeNAS code): population 50, elite 10, 25 mutations, 25 crossovers,
per-gene mutation probability 0.1, 20 generations. :data:`NB201_SETTINGS` gives the RLNAS
NAS-Bench-201 ones (population 100, elite 30, 50 + 50 children).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from reprozoo.errors import ConfigError, DataError
from reprozoo.genas.spaces import (
    DARTS_EDGES,
    DARTS_GENES,
    DARTS_OPS,
    NB201_EDGES,
    NB201_OPS,
    DartsGenotype,
    NB201Genotype,
    repair_darts,
    sample_darts,
)


@dataclass
class EvolutionConfig:
    population: int = 50
    top_k: int = 10
    n_mutation: int = 25
    n_crossover: int = 25
    p_mutation: float = 0.1
    generations: int = 20
    max_tries_factor: int = 10  # give up on children after factor x wanted tries

    def validate(self) -> None:
        if self.population < 1 or self.top_k < 1 or self.generations < 1:
            raise ConfigError("evolution population, top_k and generations must be >= 1, got "
                              f"{self.population}, {self.top_k}, {self.generations}")
        if self.n_mutation < 0 or self.n_crossover < 0 or self.n_mutation + self.n_crossover > self.population:
            raise ConfigError(f"n_mutation + n_crossover ({self.n_mutation} + {self.n_crossover}) must be "
                              f"between 0 and the population ({self.population})")
        if not 0 <= self.p_mutation <= 1:
            raise ConfigError(f"p_mutation must be in [0, 1], got {self.p_mutation}")
        if self.max_tries_factor < 1:
            raise ConfigError(f"max_tries_factor must be >= 1, got {self.max_tries_factor}")


NB201_SETTINGS = {"population": 100, "top_k": 30, "n_mutation": 50, "n_crossover": 50, "p_mutation": 0.1,
                  "generations": 20}


@dataclass
class NB201Space:
    """Every cell is legal: mutation redraws each edge with probability p; crossover mixes per edge.
    ``connected_only=True`` leaves out the cells whose output is the constant zero (no path from
    input to output): a sampled, mutated or crossed cell that is disconnected is drawn again."""

    connected_only: bool = False
    max_redraws: int = 1000

    def _legal(self, make) -> NB201Genotype:
        for _ in range(self.max_redraws):
            g = make()
            if not self.connected_only or g.connected:
                return g
        raise DataError(f"no connected cell in {self.max_redraws} draws")

    def sample(self, rng: np.random.Generator) -> NB201Genotype:
        return self._legal(lambda: NB201Genotype.from_codes(
            rng.integers(0, len(NB201_OPS), len(NB201_EDGES)).tolist()))

    def mutate(self, g: NB201Genotype, p: float, rng: np.random.Generator) -> NB201Genotype:
        return self._legal(lambda: NB201Genotype.from_codes(
            [int(rng.integers(len(NB201_OPS))) if rng.random() < p else c for c in g.codes]))

    def crossover(self, a: NB201Genotype, b: NB201Genotype, rng: np.random.Generator) -> NB201Genotype:
        return self._legal(lambda: NB201Genotype.from_codes(
            [x if rng.random() < 0.5 else y for x, y in zip(a.codes, b.codes)]))


@dataclass
class DartsSpace:
    """28-gene DARTS genotypes, repaired after every operator. ``mutate_reduction=False``
    reproduces the official code (mutation only touches the 14 normal-cell genes)."""

    mutate_reduction: bool = False

    def sample(self, rng: np.random.Generator) -> DartsGenotype:
        return sample_darts(rng)

    def mutate(self, g: DartsGenotype, p: float, rng: np.random.Generator) -> DartsGenotype:
        genes = list(g.genes)
        upto = DARTS_GENES if self.mutate_reduction else len(DARTS_EDGES)
        for i in range(upto):
            if rng.random() < p:
                genes[i] = int(rng.integers(len(DARTS_OPS)))
        return repair_darts(genes, rng)

    def crossover(self, a: DartsGenotype, b: DartsGenotype, rng: np.random.Generator) -> DartsGenotype:
        return repair_darts([x if rng.random() < 0.5 else y for x, y in zip(a.genes, b.genes)], rng)


@dataclass
class SearchResult:
    best: Any
    best_score: float
    elite: list[tuple[Any, float]]
    history: list[dict[str, float]] = field(default_factory=list)  # per generation
    n_evaluated: int = 0


def _score(score_fn: Callable[[Any], float], genotype: Any) -> float:
    """``score_fn(genotype)`` as a float; NaN or inf would make the ranking depend on the order of
    the population (sorting is undefined with NaN), so it is an error naming the genotype."""
    value = score_fn(genotype)
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise DataError(f"score_fn must return a number, got {type(value).__name__} for {genotype}") from None
    if not math.isfinite(v):
        raise DataError(f"score_fn returned {v} for {genotype}; a search needs finite scores")
    return v


def evolve(score_fn: Callable[[Any], float], space: Any, cfg: EvolutionConfig | None = None,
           rng: np.random.Generator | None = None, on_generation: Callable[[int, list], None] | None = None) -> SearchResult:
    """Maximise ``score_fn`` over ``space``; returns the all-time best genotype."""
    cfg = cfg or EvolutionConfig()
    cfg.validate()
    rng = rng if rng is not None else np.random.default_rng(0)
    scores: dict[Any, float] = {}

    def unseen_random(n: int, taken: set) -> list:
        out, tries = [], 0
        while len(out) < n and tries < cfg.max_tries_factor * max(n, 1) * 10:
            tries += 1
            g = space.sample(rng)
            if g not in scores and g not in taken:
                out.append(g)
                taken.add(g)
        return out

    def children(n: int, make: Callable[[], Any], taken: set) -> list:
        out, tries = [], 0
        while len(out) < n and tries < cfg.max_tries_factor * n:
            tries += 1
            g = make()
            if g in scores or g in taken:  # the visited check uses the repaired genotype
                continue
            out.append(g)
            taken.add(g)
        return out

    pop = unseen_random(cfg.population, set())
    elite: list[tuple[Any, float]] = []
    history = []
    for gen in range(cfg.generations):
        for g in pop:
            if g not in scores:
                scores[g] = _score(score_fn, g)
        pool = {g: s for g, s in elite}
        pool.update({g: scores[g] for g in pop})
        elite = sorted(pool.items(), key=lambda kv: -kv[1])[: cfg.top_k]
        history.append({"generation": gen, "best": elite[0][1], "evaluated": len(scores)})
        if on_generation is not None:
            on_generation(gen, elite)
        if gen + 1 == cfg.generations:
            break
        parents = [g for g, _ in elite]
        taken: set = set()
        def pick(parents=parents):
            return parents[int(rng.integers(len(parents)))]

        kids = children(cfg.n_mutation, lambda pick=pick: space.mutate(pick(), cfg.p_mutation, rng), taken)
        kids += children(cfg.n_crossover, lambda pick=pick: space.crossover(pick(), pick(), rng), taken)
        pop = kids + unseen_random(cfg.population - len(kids), taken)
    return SearchResult(elite[0][0], elite[0][1], elite, history, len(scores))
