"""Face anti-spoofing metrics: frame-level and video-wise, with explicit polarity and threshold source.

Everything works on plain arrays or torch tensors: ``scores`` are per-frame probabilities that a
frame is *live* (bona fide), ``labels`` are per-frame labels, ``video_ids`` group frames into videos
(any hashable values; never derived from file names). Conventions (those of FLIP, the code base
ECLIPS builds on):

* ``live_label`` (default 1) is the label value meaning live; the other value means spoof. Labels
  are mapped to ``y = 1`` for live before anything is computed, and the polarity is stored in every
  result. Passing spoof = 1 data with the default polarity turns AUC into 1 - AUC and swaps FAR/FRR.
* a frame/video is *accepted* (predicted live) when ``score >= t``.
  ``FAR(t)`` = share of spoof accepted (APCER pooled over attack types),
  ``FRR(t)`` = share of live rejected (BPCER), ``HTER(t) = (FAR + FRR) / 2``.
  A rate over an empty class is 1.0 (FLIP's convention).
* EER: ``t`` runs over ``{0, 1/d, 2/d, ..., 1}`` plus 1.1 (``d = grid_density = 10000``); the ``t``
  with the smallest ``|FAR - FRR|`` wins, ties go to the *largest* such ``t``;
  ``EER = (FAR + FRR) / 2`` there. The comparison is done in exact integer arithmetic.
* Video-wise (the ECLIPS paper's protocol): the video score is the mean of its frames'
  *probabilities*, ``Pbar_i = mean_j P_ij``. On top of the usual numbers on ``{Pbar_i}``:
  ``Bias = mean_i (Y_i - Yhat_i)^2`` with ``Yhat_i = Pbar_i`` (``bias_mode="prob"``, a video-level
  Brier score) or ``1[Pbar_i >= t]`` (``"hard"``), and
  ``Variance = mean_i (1/M_i) sum_j (P_ij - Pbar_i)^2`` (population variance of the frame
  probabilities inside each video; a one-frame video contributes 0 and is counted in
  ``n_single_frame``). Both also per class.
* threshold sources: ``"val_eer"`` (EER threshold of a separate validation split, the honest one),
  ``"test_eer"`` (EER threshold of the evaluated set itself: the optimistic convention of the
  published OCIM tables, where HTER nearly equals EER) and ``"fixed"``.

>>> import numpy as np
>>> r = evaluate([0.9, 0.7, 0.2, 0.4], [1, 1, 0, 0], ["a", "a", "b", "b"], threshold_source="fixed",
...              threshold=0.5)
>>> round(r.variance, 4), round(r.bias, 4), r.hter, r.auc
(0.01, 0.065, 0.0, 1.0)
"""

from __future__ import annotations

import warnings
from collections.abc import Hashable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from reprozoo.errors import DataError
from reprozoo.runtime.checks import finite, finite_array, integer

THRESHOLD_SOURCES = ("val_eer", "test_eer", "fixed")
BIAS_MODES = ("prob", "hard")
LEVELS = ("video", "frame")
GRID_DENSITY = 10000


# ------------------------------------------------------------------------------------ input checks
def _array(x: Any, name: str) -> np.ndarray:
    if hasattr(x, "detach"):  # torch tensor
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    if arr.ndim != 1:
        arr = arr.reshape(-1) if arr.ndim == 2 and 1 in arr.shape else arr
    if arr.ndim != 1:
        raise DataError(f"{name} must be one-dimensional (one value per frame), got shape {arr.shape}")
    return arr


def check_scores(scores: Any, name: str = "scores", ids: Sequence[Hashable] | None = None) -> np.ndarray:
    """Scores as float64; NaN or values outside [0, 1] raise a DataError naming the first bad item."""
    s = _array(scores, name).astype(np.float64)
    bad = np.flatnonzero(~np.isfinite(s) | (s < 0) | (s > 1))
    if bad.size:
        i = int(bad[0])
        where = f"frame {i} (video '{ids[i]}')" if ids is not None else f"index {i}"
        raise DataError(f"{name} must be live probabilities in [0, 1]; {where} has {float(s[i])} "
                        f"({bad.size} bad value(s) in all); apply softmax/sigmoid first")
    return s


def live_targets(labels: Any, live_label: int = 1, name: str = "labels") -> np.ndarray:
    """Map labels to ``y`` in {0, 1} with 1 = live; anything but the two label values is an error."""
    raw = _array(labels, name)
    try:
        lab = raw.astype(np.int64)
    except (TypeError, ValueError):
        raise DataError(f"{name} must be integers (live = {live_label}), got {raw[:3].tolist()}...") from None
    if lab.size and not np.array_equal(lab, raw.astype(np.float64)):
        raise DataError(f"{name} must be integers, got non-integer values")
    if live_label not in (0, 1):
        raise DataError(f"live_label must be 0 or 1, got {live_label}")
    bad = np.flatnonzero((lab != 0) & (lab != 1))
    if bad.size:
        raise DataError(f"{name} must be 0/1 (live = {live_label}); index {int(bad[0])} has {int(lab[bad[0]])}")
    return (lab == live_label).astype(np.int64)


def _check_lengths(**arrays: np.ndarray) -> int:
    sizes = {k: len(v) for k, v in arrays.items() if v is not None}
    if len(set(sizes.values())) > 1:
        raise DataError("length mismatch: " + ", ".join(f"{k} has {n}" for k, n in sizes.items()))
    n = next(iter(sizes.values()))
    if n == 0:
        raise DataError("no frames to evaluate (empty scores)")
    return n


# ------------------------------------------------------------------------------------ threshold rates
def far_frr(scores: Any, y: Any, threshold: float) -> tuple[float, float]:
    """``(FAR, FRR)`` at ``threshold`` for live-probability ``scores`` and targets ``y`` (1 = live);
    a rate over an empty class is 1.0."""
    s, y = finite_array("scores", scores), np.asarray(y)
    threshold = finite("threshold", threshold)
    live, spoof = s[y == 1], s[y == 0]
    far = float((spoof >= threshold).mean()) if spoof.size else 1.0
    frr = float((live < threshold).mean()) if live.size else 1.0
    return far, frr


def hter(scores: Any, y: Any, threshold: float) -> float:
    far, frr = far_frr(scores, y, threshold)
    return (far + frr) / 2.0


def eer(scores: Any, y: Any, grid_density: int = GRID_DENSITY) -> tuple[float, float]:
    """``(EER, threshold)`` on the grid ``{0, 1/d, ..., 1} + {1.1}``; ties -> the largest threshold.

    Needs both classes (raises DataError otherwise: the EER is undefined)."""
    s, y = finite_array("scores", scores), np.asarray(y)
    live, spoof = np.sort(s[y == 1]), np.sort(s[y == 0])
    if live.size == 0 or spoof.size == 0:
        raise DataError(f"the EER needs live and spoof samples; got {live.size} live and {spoof.size} spoof")
    grid_density = integer("grid_density", grid_density, lo=1)
    grid = np.append(np.arange(grid_density + 1) / grid_density, 1.1)
    n_l, n_s = live.size, spoof.size
    acc_spoof = n_s - np.searchsorted(spoof, grid, side="left")  # spoof with s >= t
    rej_live = np.searchsorted(live, grid, side="left")  # live with s < t
    dist = np.abs(acc_spoof * n_l - rej_live * n_s)  # |FAR - FRR| * n_l * n_s, exact
    best = int(np.flatnonzero(dist == dist.min())[-1])
    far, frr = acc_spoof[best] / n_s, rej_live[best] / n_l
    return float((far + frr) / 2.0), float(grid[best])


def auc(scores: Any, y: Any) -> float:
    """ROC AUC with live as the positive class (ties count 1/2); DataError with one class."""
    from sklearn.metrics import roc_auc_score

    y = np.asarray(y)
    if y.min() == y.max():
        raise DataError("the AUC needs live and spoof samples; only one class is present")
    return float(roc_auc_score(y, finite_array("scores", scores)))


def roc(scores: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(fpr, tpr)`` of the full ROC curve (live positive), every threshold kept."""
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(np.asarray(y), finite_array("scores", scores), drop_intermediate=False)
    return fpr, tpr


def tpr_at_fpr(scores: Any, y: Any, fpr: float = 0.01) -> float:
    """The last TPR on the ROC curve whose FPR <= ``fpr`` (0 if none)."""
    fpr = finite("fpr", fpr, lo=0.0, hi=1.0)
    y = np.asarray(y)
    if y.min() == y.max():
        raise DataError("TPR@FPR needs live and spoof samples; only one class is present")
    f, t = roc(scores, y)
    ok = np.flatnonzero(f <= fpr)
    return float(t[ok[-1]]) if ok.size else 0.0


def acer(scores: Any, y: Any, threshold: float = 0.5, attack_types: Any = None) -> dict[str, float]:
    """OULU-style ACER = (APCER + BPCER) / 2 at a fixed threshold (0.5). With ``attack_types``
    (one entry per sample, ignored for live samples) APCER is the worst attack type's."""
    s, y = finite_array("scores", scores), np.asarray(y)
    far, frr = far_frr(s, y, threshold)
    apcer = far
    if attack_types is not None:
        types = np.asarray(attack_types)
        if len(types) != len(s):
            raise DataError(f"attack_types has {len(types)} entries for {len(s)} scores")
        per = [float((s[(y == 0) & (types == a)] >= threshold).mean()) for a in np.unique(types[y == 0])]
        apcer = max(per) if per else 1.0
    return {"apcer": apcer, "bpcer": frr, "acer": (apcer + frr) / 2.0}


# ------------------------------------------------------------------------------------ video grouping
@dataclass
class VideoScores:
    """Per-video aggregation: ``ids`` in first-appearance order, ``score`` = mean frame probability,
    ``y`` (1 = live), ``var`` = population variance of the frame probabilities, ``n_frames``."""

    ids: list
    score: np.ndarray
    y: np.ndarray
    var: np.ndarray
    n_frames: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)


def group_videos(scores: Any, labels: Any, video_ids: Any, live_label: int = 1) -> VideoScores:
    """Average frame probabilities per ``video_id`` (checked: every frame of a video has one label)."""
    ids_arr = _array(video_ids, "video_ids")
    if ids_arr.dtype == object:
        ids_arr = ids_arr.astype(str)
    y = live_targets(labels, live_label)
    s = check_scores(scores, ids=list(ids_arr))
    _check_lengths(scores=s, labels=y, video_ids=ids_arr)
    _, first, inverse = np.unique(ids_arr, return_index=True, return_inverse=True)
    order = np.argsort(first)  # first-appearance order
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    g = rank[inverse.reshape(-1)]
    n_v = order.size
    counts = np.bincount(g, minlength=n_v)
    mean = np.bincount(g, weights=s, minlength=n_v) / counts
    var = np.bincount(g, weights=(s - mean[g]) ** 2, minlength=n_v) / counts
    y_sum = np.bincount(g, weights=y, minlength=n_v)
    mixed = np.flatnonzero((y_sum != 0) & (y_sum != counts))
    ids = [ids_arr[first[o]].item() for o in order]
    if mixed.size:
        raise DataError(f"video '{ids[int(mixed[0])]}' has frames with both labels; a video has one label")
    return VideoScores(ids=ids, score=mean, y=(y_sum > 0).astype(np.int64), var=var, n_frames=counts)


def bias_variance(scores: Any, labels: Any, video_ids: Any, *, bias_mode: str = "prob",
                  threshold: float = 0.5, live_label: int = 1) -> dict[str, float]:
    """The ECLIPS paper's video-wise Bias and Variance, overall and per class (NaN for an empty class).

    ``bias_mode="prob"``: ``(Y_i - Pbar_i)^2``; ``"hard"``: ``(Y_i - 1[Pbar_i >= threshold])^2``."""
    v = group_videos(scores, labels, video_ids, live_label)
    return _bias_variance(v, bias_mode, threshold)


def _bias_variance(v: VideoScores, bias_mode: str, threshold: float) -> dict[str, float]:
    if bias_mode not in BIAS_MODES:
        raise DataError(f"bias_mode must be one of {', '.join(BIAS_MODES)}, got '{bias_mode}'")
    threshold = finite("threshold", threshold)
    yhat = v.score if bias_mode == "prob" else (v.score >= threshold).astype(np.float64)
    b = (v.y - yhat) ** 2
    out = {"bias": float(b.mean()), "variance": float(v.var.mean())}
    for name, cls in (("live", 1), ("spoof", 0)):
        m = v.y == cls
        out[f"bias_{name}"] = float(b[m].mean()) if m.any() else float("nan")
        out[f"variance_{name}"] = float(v.var[m].mean()) if m.any() else float("nan")
    return out


# ------------------------------------------------------------------------------------ evaluation
@dataclass
class FASResult:
    """Every number of one evaluation, with how it was computed (``level``, ``live_label``,
    ``threshold_source``, ``threshold``, ``bias_mode``). Undefined numbers (AUC/EER with one class,
    Bias/Variance at frame level) are NaN."""

    level: str
    live_label: int
    threshold_source: str
    threshold: float
    bias_mode: str
    n_videos: int
    n_frames: int
    n_live: int
    n_spoof: int
    n_single_frame: int
    hter: float
    far: float
    frr: float
    auc: float
    eer: float
    eer_threshold: float
    tpr_at_fpr1: float
    acer: float
    bias: float
    variance: float
    bias_live: float
    bias_spoof: float
    variance_live: float
    variance_spoof: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        pct = lambda v: "nan" if np.isnan(v) else f"{100 * v:.2f}%"  # noqa: E731
        label = {"val_eer": "validation EER threshold", "test_eer": "test-set EER threshold (optimistic)",
                 "fixed": "fixed threshold"}[self.threshold_source]
        head = (f"{self.level}-level, live label = {self.live_label}, {self.n_videos} videos "
                f"({self.n_live} live / {self.n_spoof} spoof), {self.n_frames} frames")
        line = (f"HTER {pct(self.hter)} at t={self.threshold:.4f} ({label}); AUC {pct(self.auc)}; "
                f"EER {pct(self.eer)}; TPR@FPR=1% {pct(self.tpr_at_fpr1)}; ACER@0.5 {pct(self.acer)}")
        if self.level == "video":
            line += f"; Bias {self.bias:.4f} ({self.bias_mode}); Variance {self.variance:.5f}"
        return head + "\n" + line

    __str__ = summary


def eer_threshold(scores: Any, labels: Any, video_ids: Any = None, *, level: str = "video",
                  live_label: int = 1, grid_density: int = GRID_DENSITY, name: str = "validation split") -> float:
    """The EER threshold of a (validation) split at the given level; a split without both classes
    is a DataError (the EER is undefined there)."""
    s, y = _level_scores(scores, labels, video_ids, level, live_label)[:2]
    if y.min() == y.max():
        cls = "live" if y[0] == 1 else "spoof"
        raise DataError(f"the {name} holds only {cls} samples; its EER threshold is undefined "
                        "(it needs live and spoof videos)")
    return eer(s, y, grid_density)[1]


def _level_scores(scores, labels, video_ids, level, live_label):
    if level not in LEVELS:
        raise DataError(f"level must be one of {', '.join(LEVELS)}, got '{level}'")
    if level == "video":
        if video_ids is None:
            raise DataError("video-level evaluation needs video_ids (one per frame); pass level='frame' "
                            "to score frames")
        v = group_videos(scores, labels, video_ids, live_label)
        return v.score, v.y, v
    y = live_targets(labels, live_label)
    s = check_scores(scores)
    _check_lengths(scores=s, labels=y)
    return s, y, None


def evaluate(scores: Any, labels: Any, video_ids: Any = None, *, level: str = "video",
             threshold_source: str = "test_eer", threshold: float | None = None,
             val: tuple[Any, Any, Any] | None = None, bias_mode: str = "prob", live_label: int = 1,
             grid_density: int = GRID_DENSITY) -> FASResult:
    """All metrics of one split. ``threshold_source``:

    * ``"val_eer"``: the EER threshold of ``val = (scores, labels, video_ids)`` at the same level
      (or pass that threshold as ``threshold``);
    * ``"test_eer"``: this split's own EER threshold (optimistic; needs both classes);
    * ``"fixed"``: ``threshold`` (e.g. 0.5).
    """
    if threshold_source not in THRESHOLD_SOURCES:
        raise DataError(f"threshold_source must be one of {', '.join(THRESHOLD_SOURCES)}, got '{threshold_source}'")
    if bias_mode not in BIAS_MODES:
        raise DataError(f"bias_mode must be one of {', '.join(BIAS_MODES)}, got '{bias_mode}'")
    s, y, v = _level_scores(scores, labels, video_ids, level, live_label)
    both = bool(y.min() != y.max())
    e, e_t = eer(s, y, grid_density) if both else (float("nan"), float("nan"))
    if threshold_source == "test_eer":
        if not both:
            raise DataError("threshold_source='test_eer' needs live and spoof samples in the evaluated split")
        t = e_t
    elif threshold_source == "val_eer":
        if threshold is None:
            if val is None:
                raise DataError("threshold_source='val_eer' needs val=(scores, labels, video_ids) or threshold=")
            t = eer_threshold(*val, level=level, live_label=live_label, grid_density=grid_density)
        else:
            t = finite("threshold", threshold)
    else:
        if threshold is None:
            raise DataError("threshold_source='fixed' needs threshold=, e.g. threshold=0.5")
        t = finite("threshold", threshold)
    far, frr = far_frr(s, y, t)
    if v is not None:
        bv = _bias_variance(v, bias_mode, t)
        single = int((v.n_frames == 1).sum())
        if single:
            warnings.warn(f"{single} video(s) have a single frame; their Variance is 0", stacklevel=2)
        n_videos, n_frames = len(v), int(v.n_frames.sum())
    else:
        nan = float("nan")
        bv = dict.fromkeys(("bias", "variance", "bias_live", "bias_spoof", "variance_live", "variance_spoof"), nan)
        single, n_videos, n_frames = 0, 0, len(s)
    return FASResult(
        level=level, live_label=live_label, threshold_source=threshold_source, threshold=float(t),
        bias_mode=bias_mode, n_videos=n_videos, n_frames=n_frames, n_live=int((y == 1).sum()),
        n_spoof=int((y == 0).sum()), n_single_frame=single, hter=(far + frr) / 2.0, far=far, frr=frr,
        auc=auc(s, y) if both else float("nan"), eer=e, eer_threshold=e_t,
        tpr_at_fpr1=tpr_at_fpr(s, y, 0.01) if both else float("nan"),
        acer=acer(s, y, 0.5)["acer"], **bv)
