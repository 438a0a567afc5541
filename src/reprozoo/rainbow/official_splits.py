"""Replay the official Rainbow Memory streams from its split files (``collections/<dataset>/*.json``).

The official repository ships its task streams as JSON files, one per task:
``{dataset}_train_{exp}_rand{seed}_cls{n}_task{t}.json`` (``exp`` = ``blurry10``, ``blurry30`` or
``disjoint``; ``n`` = classes per task) and ``{dataset}_test_rand{seed}_cls{n}_task{t}.json`` (the
test images of task ``t``'s classes). Each file is a list of records ``{"file_name": "train/9/45787.png",
"klass": 9, "label": 1}``: ``file_name`` is relative to the dataset folder, ``klass`` the original class
(an int for MNIST, a name for CIFAR), ``label`` the class's position in the seed's class order, so
task ``t``'s major classes are labels ``[t * n, (t + 1) * n)``.

:func:`read_official_split` turns such a set of files (plain or gzipped) into a :class:`Scenario`
over the train records in file order (task 0's records first), plus the file names, so the official
streams can be run with :class:`reprozoo.rainbow.ContinualLearner` once the images are loaded
(:meth:`OfficialSplit.load_images`).
"""

from __future__ import annotations

import gzip
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from reprozoo.errors import DataError
from reprozoo.rainbow.scenarios import Scenario


@dataclass
class OfficialSplit:
    """One official stream. ``scenario.tasks[t]`` indexes ``train_files`` / ``scenario.labels``;
    ``test_task[i]`` is the test file (task) record ``i`` came from; ``klass_of_label[c]`` is label
    ``c``'s original class."""

    scenario: Scenario
    train_files: list[str]
    test_files: list[str]
    test_labels: np.ndarray
    test_task: np.ndarray
    klass_of_label: list
    dataset: str
    exp: str
    seed: int
    files: list[str] = field(default_factory=list)

    def load_images(self, dataset_root: str | Path, split: str = "train") -> torch.Tensor:
        """The images of ``split`` (``train`` | ``test``) as uint8 ``(N, 3, H, W)`` RGB (as the official code
        reads them, MNIST included), from ``dataset_root/<file_name>``."""
        from PIL import Image

        names = self.train_files if split == "train" else self.test_files
        root = Path(dataset_root)
        arrs = []
        for name in names:
            path = root / name
            if not path.is_file():
                raise DataError(f"{path} not found: dataset_root must be the folder the split's file names are "
                                f"relative to (the official dataset/{self.dataset}/)")
            with Image.open(path) as img:
                arrs.append(np.asarray(img.convert("RGB")))
        if not arrs:
            return torch.empty(0, 3, 0, 0, dtype=torch.uint8)
        if len({a.shape for a in arrs}) > 1:
            raise DataError(f"images under {root} differ in size; resize them to one size first")
        return torch.from_numpy(np.stack(arrs).transpose(0, 3, 1, 2).copy())


def _load(path: Path) -> list[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as fh:
            records = json.load(fh)
    except (OSError, json.JSONDecodeError) as err:
        raise DataError(f"{path}: not a readable official split file ({err})") from None
    if not isinstance(records, list) or any(not {"file_name", "klass", "label"} <= set(r) for r in records):
        raise DataError(f"{path}: expected a JSON list of records with file_name, klass and label")
    return records


def _task_files(folder: Path, stem: str) -> list[Path]:
    out = []
    for t in range(10_000):
        hits = [folder / f"{stem}_task{t}.json{ext}" for ext in ("", ".gz")]
        hit = next((h for h in hits if h.is_file()), None)
        if hit is None:
            break
        out.append(hit)
    return out


def _blur_of(exp: str) -> float:
    if exp == "disjoint":
        return 0.0
    m = re.fullmatch(r"blurry(\d+)", exp)
    if not m:
        raise DataError(f"unknown split kind '{exp}'; the official files use blurry10, blurry30 or disjoint")
    return int(m.group(1)) / 100.0


def read_official_split(folder: str | Path, dataset: str, exp: str = "blurry10", seed: int = 1,
                        n_cls: int | None = None, class_names: list[str] | None = None) -> OfficialSplit:
    """Read the official train (and, if present, test) files of one stream from ``folder``.

    ``n_cls``: classes per task (the ``cls`` in the names; found from the files when omitted).
    ``class_names``: the dataset's class list (e.g. torchvision's ``CIFAR10.classes``) to map string
    ``klass`` values onto integer class ids for :meth:`Scenario.relabel`; integer ``klass`` values
    (MNIST) are used as they are.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"split folder {folder} not found (the official files live in collections/{dataset}/)")
    if n_cls is None:
        pat = re.compile(rf"^{re.escape(dataset)}_train_{re.escape(exp)}_rand{seed}_cls(\d+)_task0\.json(\.gz)?$")
        found = sorted({int(m.group(1)) for p in folder.iterdir() if (m := pat.match(p.name))})
        if not found:
            raise DataError(f"{folder} holds no {dataset}_train_{exp}_rand{seed}_cls*_task0.json(.gz) file")
        if len(found) > 1:
            raise DataError(f"{folder} holds {dataset}_train_{exp}_rand{seed} files for cls {found}; pass n_cls")
        n_cls = found[0]
    train_paths = _task_files(folder, f"{dataset}_train_{exp}_rand{seed}_cls{n_cls}")
    if not train_paths:
        raise DataError(f"{folder} holds no {dataset}_train_{exp}_rand{seed}_cls{n_cls}_task0.json(.gz)")
    test_paths = _task_files(folder, f"{dataset}_test_rand{seed}_cls{n_cls}")
    train = [_load(p) for p in train_paths]
    test = [_load(p) for p in test_paths]
    klass_of: dict[int, object] = {}
    for rec in (r for task in train + test for r in task):
        lab = int(rec["label"])
        if klass_of.setdefault(lab, rec["klass"]) != rec["klass"]:
            raise DataError(f"label {lab} stands for two classes ({klass_of[lab]!r}, {rec['klass']!r}) in the split files")
    n_classes = len(klass_of)
    if sorted(klass_of) != list(range(n_classes)):
        raise DataError(f"the split files' labels are not 0..{n_classes - 1}: {sorted(klass_of)[:10]}...")
    n_tasks = len(train)
    if n_classes != n_tasks * n_cls:
        raise DataError(f"{n_classes} classes in {n_tasks} task files, but the names say {n_cls} classes per task")
    klass_of_label = [klass_of[c] for c in range(n_classes)]
    if all(isinstance(k, int) for k in klass_of_label):
        class_order = np.asarray(klass_of_label, dtype=np.int64)
    elif class_names is not None:
        missing = [k for k in klass_of_label if k not in class_names]
        if missing:
            raise DataError(f"class {missing[:3]} of the split files is not in class_names")
        class_order = np.asarray([list(class_names).index(k) for k in klass_of_label], dtype=np.int64)
    else:
        class_order = np.arange(n_classes, dtype=np.int64)
    labels = np.asarray([int(r["label"]) for task in train for r in task], dtype=np.int64)
    sizes = np.cumsum([0] + [len(task) for task in train])
    tasks = [np.arange(sizes[t], sizes[t + 1], dtype=np.int64) for t in range(n_tasks)]
    major = [np.arange(t * n_cls, (t + 1) * n_cls, dtype=np.int64) for t in range(n_tasks)]
    scenario = Scenario(tasks, labels, class_order, major, _blur_of(exp), share="file", seed=seed,
                        meta={"source": "official split files", "klass_of_label": klass_of_label})
    return OfficialSplit(
        scenario=scenario,
        train_files=[r["file_name"] for task in train for r in task],
        test_files=[r["file_name"] for task in test for r in task],
        test_labels=np.asarray([int(r["label"]) for task in test for r in task], dtype=np.int64),
        test_task=np.asarray([t for t, task in enumerate(test) for _ in task], dtype=np.int64),
        klass_of_label=klass_of_label, dataset=dataset, exp=exp, seed=seed,
        files=[p.name for p in train_paths + test_paths])
