"""BlurryM task streams built as a true partition of a labelled dataset.

``blurry_split(labels, n_tasks=5, blur=0.1)`` shuffles the classes with the seed, relabels them so
task ``t``'s major classes are the consecutive block ``[t*C/T, (t+1)*C/T)``, gives each task the
samples of its major classes, then moves a random ``blur`` fraction of every task's pool to the
other tasks (past and future) in equal chunks. Every sample lands in exactly one task.

``share="exact"`` (default) sends the moved part to the T-1 other tasks, so each task's foreign
share is ``blur`` (exact for equal-size pools, as the paper defines BlurryM); ``share="legacy"`` splits
it into T chunks of which one stays at home, giving the official split files' foreign share
``blur*(T-1)/T``. Legacy matches the per-task label statistics of the official Blurry10 files (every
dataset and seed) and Blurry30 seed 1, not Blurry30 seeds 2-3 (made another way); the exact files
depend on pandas' RNG: replay them with :func:`reprozoo.rainbow.official_splits.read_official_split`.
``blur=0`` is the disjoint (Blurry0) class-incremental split.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from reprozoo.errors import ConfigError, DataError
from reprozoo.runtime.checks import finite, integer, integer_labels

SHARES = ("exact", "legacy")


@dataclass
class Scenario:
    """Task streams over one labelled train set.

    ``tasks[t]``: indices into the train set (shuffled); ``labels``: the relabelled train labels
    (class ``class_order[i]`` of the original data is label ``i``); ``major[t]``: task ``t``'s major
    labels; ``blur``: the blur ratio M (0 = disjoint).
    """

    tasks: list[np.ndarray]
    labels: np.ndarray
    class_order: np.ndarray
    major: list[np.ndarray]
    blur: float
    share: str = "exact"
    seed: int = 0
    meta: dict = field(default_factory=dict)

    @property
    def n_tasks(self) -> int:
        return len(self.tasks)

    @property
    def num_classes(self) -> int:
        return len(self.class_order)

    @property
    def disjoint(self) -> bool:
        return self.blur == 0

    def relabel(self, original_labels: Sequence[int] | np.ndarray) -> np.ndarray:
        """Map original labels (e.g. of the test set) to this scenario's label ids."""
        lut = {int(c): i for i, c in enumerate(self.class_order)}
        try:
            return np.asarray([lut[int(v)] for v in np.asarray(original_labels)], dtype=np.int64)
        except KeyError as err:
            raise DataError(f"label {err.args[0]} is not one of the scenario's classes") from None

    def foreign_share(self, t: int) -> float:
        """Fraction of task ``t``'s samples whose label is not one of its major classes."""
        y = self.labels[self.tasks[t]]
        return float(np.mean(~np.isin(y, self.major[t]))) if len(y) else 0.0

    def exposed_classes(self, t: int) -> np.ndarray:
        """Labels seen in tasks 0..t (in blurry streams: usually all of them from task 0)."""
        seen = np.unique(np.concatenate([self.labels[self.tasks[k]] for k in range(t + 1)]))
        return seen.astype(np.int64)

    def eval_classes(self, t: int) -> np.ndarray:
        """Blurry: every class (all exist from task 0); disjoint: the major classes of tasks 0..t."""
        if self.disjoint:
            return np.sort(np.concatenate(self.major[: t + 1]))
        return np.arange(self.num_classes)


def blurry_split(labels: Sequence[int] | np.ndarray, n_tasks: int = 5, blur: float = 0.1, seed: int = 0,
                 share: str = "exact", classes: Sequence[int] | None = None,
                 class_order: Sequence[int] | None = None) -> Scenario:
    """Partition a labelled set into ``n_tasks`` BlurryM tasks (see the module docstring).

    ``classes``: the class ids the dataset should have (default: those present); a listed class with
    no sample raises :class:`DataError`. ``class_order``: a fixed class order instead of a seeded one.
    """
    y = integer_labels("labels", np.ravel(np.asarray(labels)))  # float labels like 1.5 are refused
    if share not in SHARES:
        raise ConfigError(f"share must be one of {list(SHARES)}, got '{share}'")
    if not 0.0 <= finite("blur", blur) < 1.0:
        raise ConfigError(f"blur must be in [0, 1), got {blur}; use 0.1 for Blurry10, 0 for disjoint")
    n_tasks, seed = integer("n_tasks", n_tasks, lo=1), integer("seed", seed, lo=0)
    if y.size and y.min() < 0:
        raise DataError(f"labels must be non-negative class ids, got {int(y.min())}; map classes to 0..C-1 first")
    present = np.unique(y)
    wanted = present if classes is None else np.unique(integer_labels("classes", classes, lo=0))
    missing = np.setdiff1d(wanted, present)
    if missing.size:
        raise DataError(f"class {missing.tolist()} has no samples, so it would be absent from every task; "
                        "add samples of it or leave it out of `classes`")
    extra = np.setdiff1d(present, wanted)
    if extra.size:
        raise DataError(f"labels {extra.tolist()} are not in `classes`; list every class of the dataset")
    rng = np.random.default_rng(seed)
    if class_order is None:
        order = rng.permutation(wanted)
    else:
        order = integer_labels("class_order", class_order, lo=0)
        if sorted(order.tolist()) != sorted(wanted.tolist()):
            absent = np.setdiff1d(wanted, order).tolist()
            raise DataError(f"class_order must list every class exactly once; class {absent} would be "
                            "absent from every task" if absent else
                            "class_order must list every class exactly once (it has duplicates or unknowns)")
    n_cls = len(order)
    if n_cls % n_tasks:
        raise ConfigError(f"{n_cls} classes cannot be split into {n_tasks} equal tasks; choose n_tasks "
                          f"dividing {n_cls}")
    lut = np.full(int(order.max()) + 1 if n_cls else 1, -1, dtype=np.int64)
    lut[order] = np.arange(n_cls)
    new_y = lut[y]
    per = n_cls // n_tasks
    major = [np.arange(t * per, (t + 1) * per) for t in range(n_tasks)]
    pools = [rng.permutation(np.flatnonzero(np.isin(new_y, m))) for m in major]
    parts: list[list[np.ndarray]] = [[] for _ in range(n_tasks)]
    for t, pool in enumerate(pools):
        n_move = int(round(blur * len(pool))) if n_tasks > 1 else 0
        home, moved = pool[: len(pool) - n_move], pool[len(pool) - n_move:]
        parts[t].append(home)
        if share == "exact":
            receivers = [k for k in range(n_tasks) if k != t]
        else:
            receivers = list(range(n_tasks))
        # rotate which receiver gets the larger chunks so rounding does not always favour task 0
        shift = int(rng.integers(len(receivers))) if receivers else 0
        receivers = receivers[shift:] + receivers[:shift]
        for k, chunk in zip(receivers, np.array_split(moved, len(receivers)) if receivers else []):
            parts[k].append(chunk)
    tasks = [rng.permutation(np.concatenate(p)).astype(np.int64) for p in parts]
    return Scenario(tasks, new_y, order, major, float(blur), share, seed)


def check_partition(scenario: Scenario, n_samples: int) -> None:
    """Raise :class:`DataError` unless every sample index appears in exactly one task."""
    allidx = np.concatenate(scenario.tasks) if scenario.tasks else np.empty(0, np.int64)
    counts = np.bincount(allidx, minlength=n_samples)
    if len(counts) != n_samples or (counts != 1).any():
        bad = np.flatnonzero(counts != 1)[:5].tolist()
        raise DataError(f"tasks are not a partition of the {n_samples} samples (e.g. indices {bad})")


def scenario_from_tasks(labels: Sequence[int] | np.ndarray, tasks: Sequence[Sequence[int]],
                        major: Sequence[Sequence[int]], num_classes: int, blur: float = 0.0) -> Scenario:
    """Wrap user-made task index lists (labels already 0..C-1 in task order). Every class in
    ``range(num_classes)`` must occur in some task."""
    num_classes = integer("num_classes", num_classes, lo=1)
    y = integer_labels("labels", labels, lo=0, hi=num_classes - 1)
    tasks_np = [integer_labels(f"tasks[{i}]", t, lo=0, hi=len(y) - 1) for i, t in enumerate(tasks)]
    seen = np.unique(np.concatenate([y[t] for t in tasks_np])) if tasks_np else np.empty(0, np.int64)
    absent = np.setdiff1d(np.arange(num_classes), seen)
    if absent.size:
        raise DataError(f"class {absent.tolist()} is absent from every task; every class needs at least one "
                        "training sample in some task")
    return Scenario(tasks_np, y, np.arange(num_classes), [np.asarray(m, dtype=np.int64) for m in major],
                    float(blur))
