"""Write the dot-pattern images (:mod:`reprozoo.data.dot_patterns`) as a tiny ImageFolder on disk
(``root/train/<class>/<i>.png`` and ``root/val/<class>/<i>.png``): a real-format fixture for
training entries that read torchvision's ImageFolder layout, generated offline in a second."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from reprozoo.data.dot_patterns import CLASSES, dot_pattern_splits


def write_pattern_imagefolder(root: str | Path, n_train: int = 20, n_val: int = 10, classes: int = 2,
                              size: int = 32, seed: int = 0) -> Path:
    """Write ``n_train`` / ``n_val`` RGB PNGs spread over the first ``classes`` dot-pattern classes."""
    from PIL import Image

    root = Path(root)
    classes = max(1, min(int(classes), len(CLASSES)))
    sets = dot_pattern_splits(n_train * 10 // classes + 10, n_val * 10 // classes + 10, seed=seed, size=size)
    for split, (x, y), n in zip(("train", "val"), sets, (n_train, n_val)):
        keep = np.flatnonzero(y.numpy() < classes)[:n]
        for c in range(classes):
            (root / split / CLASSES[c]).mkdir(parents=True, exist_ok=True)
        for i in keep:
            img = (np.clip(x[i, 0].numpy(), 0, 1) * 255).astype(np.uint8)
            Image.fromarray(np.stack([img] * 3, -1)).save(root / split / CLASSES[int(y[i])] / f"{i}.png")
    return root
