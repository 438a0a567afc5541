"""Continual-learning metrics from the final epoch of each task (never the best epoch on test data).

``task_acc[t]``: accuracy on the evaluation set after task ``t``. ``class_acc[t, c]``: accuracy of
class ``c`` after task ``t``, NaN where class ``c`` has no test image (in disjoint streams: the
classes of later tasks). Task blocks are consecutive label ids (task ``j``'s major classes), which
:func:`reprozoo.rainbow.scenarios.blurry_split` guarantees by relabelling classes in task order.

Absent classes (``absent``): the official code divides by ``n + 1e-5`` and so gives such a class
accuracy 0. We keep NaN (an accuracy on no images is undefined) and the block means and the max
over earlier tasks skip it (``absent="ignore"``, default); where a task block is either wholly tested
or wholly untested, as in the official blurry and disjoint protocols, this gives the official
forgetting exactly, while the plain max over NaN would make it NaN in every disjoint run.
``absent="zero"`` reproduces the official 0 literally (it differs only when a block is partly
tested, where the zeros pull the block mean down).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from reprozoo.errors import ConfigError, DataError
from reprozoo.runtime.checks import finite, finite_array, integer, integer_labels

ABSENT = ("ignore", "zero")
TASK_ACC_RULES = ("last", "best")


def class_accuracy_from_counts(correct: Sequence[float], total: Sequence[float]) -> np.ndarray:
    """Per-class accuracy ``correct / total``; NaN where a class has no test image (``total == 0``)."""
    c, n = finite_array("correct", correct), finite_array("total", total)
    if c.shape != n.shape or (c < 0).any() or (c > n).any():
        raise DataError(f"correct and total must be counts of one shape with 0 <= correct <= total, got shapes "
                        f"{c.shape} and {n.shape}")
    out = np.full(n.shape, np.nan)
    np.divide(c, n, out=out, where=n > 0)
    return out


def class_accuracy(pred: Sequence[int], target: Sequence[int], num_classes: int) -> np.ndarray:
    """Per-class accuracy of predictions (NaN for a class with no test image)."""
    num_classes = integer("num_classes", num_classes, lo=1)
    p = integer_labels("pred", pred, lo=0)  # a prediction outside the classes is simply wrong
    y = integer_labels("target", target, lo=0, hi=num_classes - 1)
    if p.shape != y.shape:
        raise DataError(f"pred has {len(p)} entries but target has {len(y)}")
    correct = np.bincount(y[p == y], minlength=num_classes)[:num_classes]
    total = np.bincount(y, minlength=num_classes)[:num_classes]
    return class_accuracy_from_counts(correct, total)


def task_accuracy(epoch_acc: Sequence[float], rule: str = "last") -> float:
    """The accuracy reported for a task from its per-epoch test accuracies: ``last`` (final epoch,
    default) or ``best`` (the official code: ``max(0, best epoch)``, test-set model selection)."""
    if rule not in TASK_ACC_RULES:
        raise ConfigError(f"rule must be one of {list(TASK_ACC_RULES)}, got '{rule}'")
    epoch_acc = finite_array("epoch_acc", epoch_acc, ndim=1, allow_empty=False)
    return float(epoch_acc[-1]) if rule == "last" else float(max(0.0, max(epoch_acc)))


def _absent(class_acc, absent: str) -> np.ndarray:
    if absent not in ABSENT:
        raise ConfigError(f"absent must be one of {list(ABSENT)}, got '{absent}'")
    acc = np.asarray(class_acc, dtype=float)
    if acc.ndim != 2 or np.isinf(acc).any():
        raise DataError(f"class_acc must be a (tasks, classes) matrix of accuracies (NaN = untested class), "
                        f"got shape {acc.shape}{' with inf' if np.isinf(acc).any() else ''}")
    return np.nan_to_num(acc, nan=0.0) if absent == "zero" else acc


def a_last(task_acc: Sequence[float]) -> float:
    """Accuracy after the last task (the paper's A_T / A_5)."""
    return float(finite_array("task_acc", task_acc, ndim=1, allow_empty=False)[-1])


def a_avg(task_acc: Sequence[float]) -> float:
    """Mean of the accuracy after each task."""
    return float(np.mean(finite_array("task_acc", task_acc, ndim=1, allow_empty=False)))


def task_block_accuracy(class_acc: np.ndarray, major: Sequence[Sequence[int]], absent: str = "ignore"
                        ) -> np.ndarray:
    """``a[k, j]`` = mean accuracy on task ``j``'s major classes after task ``k`` (NaN if none was tested
    with ``absent="ignore"``)."""
    acc = _absent(class_acc, absent)
    blocks = []
    for m in major:
        sub = acc[:, list(m)]
        n = (~np.isnan(sub)).sum(1)
        blocks.append(np.where(n > 0, np.nansum(sub, 1) / np.maximum(n, 1), np.nan))
    return np.stack(blocks, axis=1)


def forgetting_matrix(class_acc: np.ndarray, major: Sequence[Sequence[int]], absent: str = "ignore"
                      ) -> np.ndarray:
    """``f[k, j] = max_{l < k} a[l, j] - a[k, j]`` for ``j < k`` (NaN elsewhere); untested blocks are skipped
    in the max with ``absent="ignore"``."""
    a = task_block_accuracy(class_acc, major, absent)
    t, n_blocks = a.shape
    f = np.full((t, n_blocks), np.nan)
    for k in range(1, t):
        for j in range(min(k, n_blocks)):
            prev = a[:k, j][~np.isnan(a[:k, j])]
            if prev.size:
                f[k, j] = prev.max() - a[k, j]
    return f


def forgetting(class_acc: np.ndarray, major: Sequence[Sequence[int]], absent: str = "ignore") -> float:
    """Chaudhry-style forgetting at the end: ``f_j = max_{l < T-1} a[l, j] - a[T-1, j]``, averaged over
    tasks ``j < T-1`` (0 for a single task). ``absent``: see the module docstring."""
    f = forgetting_matrix(class_acc, major, absent)
    t = f.shape[0]
    if t < 2:
        return 0.0
    return float(np.mean(f[t - 1, : min(t - 1, f.shape[1])]))


def intransigence(joint_acc: float, task_acc: Sequence[float]) -> float:
    """The official code's final-task form: ``I = joint_acc - A_last`` (joint_acc from a joint run)."""
    return float(finite("joint_acc", joint_acc) - a_last(task_acc))


def intransigence_per_task(joint_task_acc: Sequence[float], acc_matrix: np.ndarray) -> float:
    """Chaudhry et al.'s form: mean over ``k`` of ``a*_k - a[k, k]`` (``a*_k``: joint model on task ``k``)."""
    a = finite_array("acc_matrix", acc_matrix, ndim=2)
    ref = finite_array("joint_task_acc", joint_task_acc, ndim=1, allow_empty=False)
    if min(a.shape) < len(ref):
        raise DataError(f"acc_matrix {a.shape} has no diagonal entry for each of the {len(ref)} tasks")
    return float(np.mean([ref[k] - a[k, k] for k in range(len(ref))]))


def summarize(task_acc: Sequence[float], class_acc: np.ndarray, major: Sequence[Sequence[int]],
              joint_acc: float | None = None, absent: str = "ignore") -> dict[str, float]:
    out = {"A_last": a_last(task_acc), "A_avg": a_avg(task_acc), "F_last": forgetting(class_acc, major, absent)}
    if joint_acc is not None:
        out["I_last"] = intransigence(joint_acc, task_acc)
    return out
