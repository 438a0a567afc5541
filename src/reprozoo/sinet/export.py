"""ONNX export of a trained SINet (normalisation included: the graph takes RGB in [0, 1]).

Uses PyTorch's TorchScript-based exporter (``dynamo=False``), which needs no extra package; the
channel shuffle reads ``tensor.shape`` so the batch dimension stays dynamic.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from reprozoo.errors import DataError, MissingDependencyError

try:
    from reprozoo.errors import OutputError
except ImportError:  # pragma: no cover - older reprozoo.errors
    OutputError = DataError  # type: ignore[misc,assignment]
from reprozoo.sinet.inference import Normalized


def export_onnx(model: nn.Module, path: str | Path, *, mean, std, image_size: int = 224,
                opset: int = 17) -> Path:
    """Write ``Normalized(model, mean, std)`` to ``path`` with input ``image`` (B, 3, S, S) float
    RGB in [0, 1] (dynamic batch) and output ``logits`` (B, C, S, S)."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{path} is a folder; pass a file name for the ONNX model (e.g. {path / 'sinet.onnx'})")
    net = Normalized(model, mean, std).eval()
    x = torch.rand(1, 3, image_size, image_size)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(net, (x,), str(tmp), input_names=["image"], output_names=["logits"],
                              opset_version=opset, dynamo=False,
                              dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}})
        tmp.replace(path)
    except OSError as err:
        raise OutputError(f"cannot write {path}: {err.strerror or err}") from None
    finally:
        tmp.unlink(missing_ok=True)
    return path


def ort_session(path: str | Path, threads: int = 1):
    try:
        import onnxruntime as ort
    except ImportError as err:
        raise MissingDependencyError("onnxruntime is not installed; pip install onnxruntime") from err
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def max_abs_diff(model: nn.Module, path: str | Path, x: torch.Tensor, *, mean, std) -> float:
    """max |ONNX Runtime - PyTorch| on input ``x`` (RGB in [0, 1])."""
    net = Normalized(model, mean, std).eval()
    with torch.no_grad():
        ref = net(x).numpy()
    out = ort_session(path).run(None, {"image": x.numpy().astype(np.float32)})[0]
    return float(np.abs(out - ref).max())
