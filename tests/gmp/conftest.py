import pytest
import torch

from reprozoo.gmp.models import GrounderConfig


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """Every test of this package runs on one torch thread (the shared fixture of tests/conftest.py)."""


def tiny_config(**kw) -> GrounderConfig:
    base = dict(vocab_size=10, word_dim=8, frame_dim=6, d_model=16, heads=2, layers=1, ffn=16, grid=8,
                components=[1, 2, 3], n_neg=2, dropout=0.0)
    base.update(kw)
    return GrounderConfig(**base)


def tiny_batch(b: int = 4, t: int = 12, seed: int = 0, lengths=None) -> dict:
    g = torch.Generator().manual_seed(seed)
    lengths = torch.as_tensor(lengths if lengths is not None else [3 + (i % 3) for i in range(b)])
    n = int(lengths.max())
    words = torch.randint(1, 11, (b, n), generator=g)
    words[torch.arange(n)[None] >= lengths[:, None]] = 0
    return {"video": torch.randn(b, t, 6, generator=g), "words": words, "lengths": lengths,
            "weights": (words > 0).float() * 2, "mask_seed": torch.arange(b) + 100 * seed,
            "gt": torch.tensor([[0.2, 0.5]]).expand(b, 2)}


def select(batch: dict, idx) -> dict:
    out = {k: v[idx] for k, v in batch.items()}
    n = int(out["lengths"].max())
    out["words"], out["weights"] = out["words"][:, :n], out["weights"][:, :n]
    return out
