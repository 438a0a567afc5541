"""The folder a TVQVAE was saved as before the library checkpoint format (``weights.safetensors`` +
``config.json``, format 1), written here as the former ``save`` wrote it so the tests can check that
such saves keep loading."""

from __future__ import annotations

import json
import numbers
from pathlib import Path


def write_former_save(est, folder: str | Path) -> Path:
    from safetensors.torch import save_file

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    tensors = {f"vq.{k}": v.contiguous() for k, v in est.vq_.state_dict().items()}
    tensors.update({f"topic.{k}": v.contiguous() for k, v in est.model_.state_dict().items()})
    save_file(tensors, str(out / "weights.safetensors"))
    params = est.get_params(deep=False)
    params["vq_hidden"] = [int(h) for h in params["vq_hidden"]]
    if not (params["random_state"] is None or isinstance(params["random_state"], numbers.Integral)):
        params["random_state"] = None
    meta = {"format": 1, "class": "TVQVAE", "params": params, "input_dim": est.input_dim_,
            "vocabulary": est.vocab_.to_list()}
    (out / "config.json").write_text(json.dumps(meta, indent=1))
    return out
