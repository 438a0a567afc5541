"""Building the HF Accelerate ``Accelerator`` the same way everywhere.

``split_batches=True``: the batch size a user sets is the *global* batch, so one process and
N processes see the same optimisation (the distributed test checks this).
"""

from __future__ import annotations

from accelerate import Accelerator
from accelerate.utils import DataLoaderConfiguration

from reprozoo.errors import ConfigError

_DEVICES = ("auto", "cpu", "cuda", "mps")


def make_accelerator(device: str = "auto", mixed_precision: str = "no") -> Accelerator:
    """``device``: auto (GPU if present / as launched) | cpu | cuda | mps."""
    if device not in _DEVICES:
        raise ConfigError(f"device must be one of {list(_DEVICES)}, got '{device}'")
    if mixed_precision not in ("no", "fp16", "bf16"):
        raise ConfigError(f"mixed_precision must be no|fp16|bf16, got '{mixed_precision}'")
    return Accelerator(
        cpu=device == "cpu",
        mixed_precision=mixed_precision,
        dataloader_config=DataLoaderConfiguration(split_batches=True),
    )
