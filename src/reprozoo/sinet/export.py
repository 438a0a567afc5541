"""ONNX export of SINet and ONNX Runtime sessions: the plain graph (:func:`export_onnx`), the
deployment graph (:func:`export_deploy_onnx`, the rewrites of :mod:`reprozoo.sinet.deploy`), batch-1
sessions (:func:`deploy_session`) and ONNX Runtime's profiler by operator (:func:`profile_onnx`).

The graphs include the normalisation: they take RGB in [0, 1]. Uses PyTorch's TorchScript-based
exporter (``dynamo=False``), which writes the model with the ``onnx`` package, and ONNX Runtime for
sessions (``pip install 'reprozoo[onnx]'``). The channel shuffle reads ``tensor.shape`` so the batch
dimension stays dynamic.
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from reprozoo.errors import OutputError
from reprozoo.runtime.extras import require
from reprozoo.sinet.deploy import deploy_model
from reprozoo.sinet.preprocess import Normalized


def export_onnx(model: nn.Module, path: str | Path, *, mean, std, image_size: int = 224,
                opset: int = 17) -> Path:
    """Write ``Normalized(model, mean, std)`` to ``path`` with input ``image`` (B, 3, S, S) float
    RGB in [0, 1] (dynamic batch) and output ``logits`` (B, C, S, S)."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{path} is a folder; pass a file name for the ONNX model (e.g. {path / 'sinet.onnx'})")
    net = Normalized(model, mean, std).eval()
    x = torch.rand(1, 3, image_size, image_size)
    require("onnx", what="ONNX export")  # torch's exporter writes the model with it
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
    ort = require("onnxruntime", what="ONNX Runtime sessions")
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


def export_deploy_onnx(model: nn.Module, path: str | Path, x: torch.Tensor, *, optimized_path: str | Path | None = None,
                       threads: int = 2, dynamic_batch: bool = False) -> tuple[Path, dict]:
    """Export ``deploy_model(model)`` with shapes fixed to ``x`` (unless ``dynamic_batch``) and, when
    ``optimized_path`` is given, save ONNX Runtime's optimised graph there (optimised once, loaded
    with no further optimisation). ``model`` takes the tensor as is (wrap it in ``Normalized`` first
    for RGB input). Returns (path of the model to load, deploy info)."""
    net, info = deploy_model(model)
    path = Path(path)
    require("onnx", what="ONNX export")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (x,), str(path), input_names=["image"], output_names=["logits"],
                          opset_version=17, dynamo=False, do_constant_folding=True,
                          dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}} if dynamic_batch else None)
    if optimized_path is None:
        return path, info
    ort = ort_module()
    opts = _session_options(ort, threads)
    opts.optimized_model_filepath = str(optimized_path)
    opts.log_severity_level = 3  # the saved graph holds this CPU's blocked-layout kernels: it is for this machine
    ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return Path(optimized_path), info


def ort_module():
    """The ``onnxruntime`` module (a one-line error naming ``pip install 'reprozoo[onnx]'`` without it)."""
    return require("onnxruntime", what="ONNX Runtime sessions")


def _session_options(ort, threads: int, *, optimize: bool = True, profile_prefix: str | None = None,
                     spin: bool | None = None, parallel: bool = False):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 2 if parallel else 1
    # batch 1: one op at a time, all threads on it (``parallel``: independent branches at once)
    opts.execution_mode = ort.ExecutionMode.ORT_PARALLEL if parallel else ort.ExecutionMode.ORT_SEQUENTIAL
    if spin is not None:  # idle worker threads busy-wait for the next op (ORT's default) or sleep
        opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
        opts.add_session_config_entry("session.inter_op.allow_spinning", "1" if spin else "0")
    opts.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimize
                                     else ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    if profile_prefix is not None:
        opts.enable_profiling = True
        opts.profile_file_prefix = profile_prefix
    return opts


def deploy_session(path: str | Path, threads: int = 2, *, preoptimized: bool = False, spin: bool | None = None,
                   parallel: bool = False):
    """ONNX Runtime session for batch-1 deployment: sequential execution (``parallel``: ORT's
    parallel executor, 2 inter-op threads), ``threads`` intra-op threads, full graph optimisation
    (none when ``preoptimized``: the graph was saved optimised); ``spin`` sets
    ``session.intra_op.allow_spinning`` (None: ORT's default, on)."""
    ort = ort_module()
    opts = _session_options(ort, threads, optimize=not preoptimized, spin=spin, parallel=parallel)
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def profile_onnx(path: str | Path, feed: dict, *, threads: int = 2, runs: int = 20,
                 spin: bool | None = None) -> dict[str, float]:
    """ONNX Runtime's own profiler (``SessionOptions.enable_profiling``): kernel milliseconds per
    run by operator type, sorted, largest first (after the graph optimiser's rewrites)."""
    ort = ort_module()
    warm = 3
    with tempfile.TemporaryDirectory() as tmp:
        opts = _session_options(ort, threads, profile_prefix=os.path.join(tmp, "ort"), spin=spin)
        sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        for _ in range(warm + runs):
            sess.run(None, feed)
        with open(sess.end_profiling()) as f:
            events = json.load(f)
    starts = sorted(ev["ts"] for ev in events if ev.get("name") == "model_run")
    t0 = starts[warm] if len(starts) > warm else 0  # the warm-up runs are left out
    by_op: dict[str, float] = {}
    for ev in events:
        if ev.get("cat") == "Node" and ev.get("name", "").endswith("_kernel_time") and ev["ts"] >= t0:
            op = ev.get("args", {}).get("op_name", "?")
            by_op[op] = by_op.get(op, 0.0) + ev["dur"] / 1000.0 / runs
    return dict(sorted(by_op.items(), key=lambda kv: -kv[1]))
