"""Continual-learning metrics from the final epoch of each task (never the best epoch on test data).

``task_acc[t]``: accuracy on the evaluation set after task ``t``. ``class_acc[t, c]``: accuracy of
class ``c`` after task ``t`` (NaN where a class has no test sample). Task blocks are consecutive
label ids (task ``j``'s major classes), which :func:`reprozoo.rainbow.scenarios.blurry_split`
guarantees by relabelling classes in task order.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from reprozoo.errors import DataError


def a_last(task_acc: Sequence[float]) -> float:
    """Accuracy after the last task (the paper's A_T / A_5)."""
    if len(task_acc) == 0:
        raise DataError("task_acc is empty")
    return float(task_acc[-1])


def a_avg(task_acc: Sequence[float]) -> float:
    """Mean of the accuracy after each task."""
    if len(task_acc) == 0:
        raise DataError("task_acc is empty")
    return float(np.mean(task_acc))


def task_block_accuracy(class_acc: np.ndarray, major: Sequence[Sequence[int]]) -> np.ndarray:
    """``a[k, j]`` = mean accuracy on task ``j``'s major classes after task ``k``."""
    acc = np.asarray(class_acc, dtype=float)
    return np.stack([np.nanmean(acc[:, list(m)], axis=1) for m in major], axis=1)


def forgetting(class_acc: np.ndarray, major: Sequence[Sequence[int]]) -> float:
    """Chaudhry-style forgetting at the end: ``f_j = max_{l < T-1} a[l, j] - a[T-1, j]``, averaged over
    tasks ``j < T-1`` (0 for a single task)."""
    a = task_block_accuracy(class_acc, major)
    t = a.shape[0]
    if t < 2:
        return 0.0
    f = [np.max(a[: t - 1, j]) - a[t - 1, j] for j in range(min(t - 1, a.shape[1]))]
    return float(np.mean(f))


def intransigence(joint_acc: float, task_acc: Sequence[float]) -> float:
    """The official code's final-task form: ``I = joint_acc - A_last`` (joint_acc from a joint run)."""
    return float(joint_acc - a_last(task_acc))


def intransigence_per_task(joint_task_acc: Sequence[float], acc_matrix: np.ndarray) -> float:
    """Chaudhry et al.'s form: mean over ``k`` of ``a*_k - a[k, k]`` (``a*_k``: joint model on task ``k``)."""
    a = np.asarray(acc_matrix, dtype=float)
    ref = np.asarray(joint_task_acc, dtype=float)
    return float(np.mean([ref[k] - a[k, k] for k in range(len(ref))]))


def summarize(task_acc: Sequence[float], class_acc: np.ndarray, major: Sequence[Sequence[int]],
              joint_acc: float | None = None) -> dict[str, float]:
    out = {"A_last": a_last(task_acc), "A_avg": a_avg(task_acc), "F_last": forgetting(class_acc, major)}
    if joint_acc is not None:
        out["I_last"] = intransigence(joint_acc, task_acc)
    return out
