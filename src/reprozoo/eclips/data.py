"""Leave-one-domain-out splits of the synthetic FAS videos (:mod:`reprozoo.data.fas_synth`).

Identities are disjoint between splits: the first ``n_train_ids`` LFW faces train (on the source
domains, ``frames_train`` frames per video), the next ``n_val_ids`` form the source-domain
validation split (thresholds come from here), and the test identities are shown only through the
held-out target camera (``frames_test`` frames per video).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from reprozoo.data.fas_synth import DEFAULT_DOMAINS, FASVideos, cached_fas
from reprozoo.errors import ConfigError


@dataclass
class LODOSplit:
    target: str
    train: FASVideos
    val: FASVideos
    test: FASVideos


def domain_names() -> list[str]:
    return [d.name for d in DEFAULT_DOMAINS]


def lodo_split(target: str, *, size: int = 32, frames_train: int = 8, frames_test: int = 16,
               n_train_ids: int = 50, n_val_ids: int = 10, n_test_ids: int = 40, seed: int = 0) -> LODOSplit:
    names = domain_names()
    if target not in names:
        raise ConfigError(f"unknown target domain '{target}'; choose from {', '.join(names)}")
    n_ids = n_train_ids + n_val_ids + n_test_ids
    if n_ids > 100:
        raise ConfigError(f"n_train_ids + n_val_ids + n_test_ids must be <= 100 (LFW faces), got {n_ids}")
    frames = max(frames_train, frames_test)
    data = cached_fas(DEFAULT_DOMAINS, range(n_ids), n_frames=frames, size=size, seed=seed)
    t = names.index(target)
    source = data.domain != t
    train = data.subset(source & (data.identity < n_train_ids)).first_frames(frames_train)
    val_ids = (data.identity >= n_train_ids) & (data.identity < n_train_ids + n_val_ids)
    val = data.subset(source & val_ids).first_frames(frames_test)
    test = data.subset((data.domain == t) & (data.identity >= n_train_ids + n_val_ids)).first_frames(frames_test)
    # renumber the training domains 0..n_sources-1 for the bucket sampler
    remap = torch.full((len(names),), -1, dtype=torch.long)
    remap[[i for i in range(len(names)) if i != t]] = torch.arange(len(names) - 1)
    train.domain = remap[train.domain]
    return LODOSplit(target, train, val, test)
