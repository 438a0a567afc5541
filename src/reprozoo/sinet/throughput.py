"""Throughput mode: foreground probabilities for many video frames at once.

:class:`FrameEngine` turns a batch of uint8 RGB frames ``(N, H, W, 3)`` into float32 foreground
probabilities ``(N, h, w)`` at the model's input resolution (the caller upsamples them to the frame).
Two back ends compute the same function:

* ``kind="ort"``: the deployment export of :mod:`reprozoo.sinet.export` (BN folded, shuffles
  absorbed, PReLU as convolution pairs, ...), exported once at construction and optimised by ONNX
  Runtime once (the optimised graph is kept in memory, the temporary files are removed). Two ways to
  use the machine's cores:

  - ``mode="batch"``: one session with ``threads`` intra-op threads runs ``batch_size`` frames per call;
  - ``mode="sessions"``: one single-thread session per core; the frames are split into one contiguous
    chunk per session and the chunks run in parallel Python threads (ONNX Runtime releases the GIL),
    ``batch_size`` frames per call within a chunk.

* ``kind="eager"``: the model in PyTorch (for users without ONNX Runtime), ``batch_size`` frames per call.

``kind="auto"`` (default) takes ONNX Runtime when it is installed. Both back ends share one
preprocessing (:meth:`FrameEngine.preprocess`): the uint8 frames are resized to the model's input
size in uint8 (antialiased bilinear, torch's vectorised channels-last path, the same filter as
:class:`reprozoo.sinet.inference.Segmenter`), then converted to float and normalised in one pass
(about 0.3 ms per 640x480 frame here).

Two things made the bundled pretrained SINet as fast as the untrained architecture (it was 1.7-5x
slower): its subnormal weights are set to zero (:func:`flush_denormals`) and ONNX Runtime runs on
threads that flush subnormal activations to zero (:func:`ort_session_ftz`); its first layer's two
PReLU slopes above 1 are mirrored (:func:`mirror_steep_prelus`) so that every PReLU fuses into its
convolution.
"""

from __future__ import annotations

import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from reprozoo.errors import ConfigError, DataError

KINDS = ("auto", "eager", "ort")
MODES = ("batch", "sessions")

# Defaults measured on this machine (2 vCPUs, Sapphire Rapids class VM, ONNX Runtime 1.32), model only,
# 224x224, 48 frames per call, 5 interleaved rounds while another session kept the machine busy (load
# average 2.5-3.0, so FPS medians are low and noisy; the best round is closer to idle, and CPU time per
# frame is least affected by the load). Best-round FPS / CPU-ms per frame:
#                         batch b=1    b=4      b=8      | sessions b=1  b=2      b=4      b=8
#   SINet (untrained)     232/6.5   299/6.1  330/5.5   |     567/3.9   517/4.3  435/4.8  339/5.3
#   SINet (pretrained)    245/5.9   255/5.7  309/6.1   |     512/3.9   453/4.5  400/5.2  321/5.9
#   LR-ASPP MobileNetV3   161/10.0  221/9.6  225/10.4  |     262/8.0   231/8.3  230/8.5  203/9.1
# One single-thread session per core at batch 1 was the fastest and the cheapest for every model, so
# it is the default (an earlier round at load 1.4-1.6 gave the same order).
DEFAULT_MODE = "sessions"
DEFAULT_BATCH = 1


def cores() -> int:
    """CPU cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


class ProbabilityHead(nn.Module):
    """``model`` followed by the foreground probability: softmax channel 1 (as ``sigmoid(l1 - l0)``
    for two classes) or the sigmoid of a single logit. Output (N, S, S)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.model(x)
        if logits.shape[1] == 1:
            return torch.sigmoid(logits[:, 0])
        if logits.shape[1] == 2:
            return torch.sigmoid(logits[:, 1] - logits[:, 0])
        return torch.softmax(logits, 1)[:, 1]


def _from_segmenter(seg: Any) -> tuple[nn.Module, Any, Any, int, str]:
    net = getattr(seg, "net", None)
    model, mean, std = getattr(net, "model", None), getattr(net, "mean", None), getattr(net, "std", None)
    if not isinstance(model, nn.Module) or mean is None or std is None:
        raise ConfigError("FrameEngine needs a Segmenter built without compile=True (or a model with mean, std "
                          "and image_size)")
    return model, mean.flatten().tolist(), std.flatten().tolist(), int(seg.image_size), seg.fit


@torch.no_grad()
def flush_denormals(model: nn.Module) -> tuple[nn.Module, int]:
    """A copy of ``model`` with every subnormal float parameter/buffer (|v| < 1.18e-38) set to 0.
    The bundled official SINet holds 3,364 such weights; x86 multiplies them in microcode, which made
    the pretrained model about 3x slower in ONNX Runtime here (19.6 -> 6.3 CPU-ms per 224x224 frame,
    1 thread) and 2x slower in eager PyTorch (48 -> 25 ms), for a change of < 1.2e-38 per weight (the
    outputs were bit-identical in that check). Returns (copy, values flushed)."""
    import copy

    net, tiny, flushed = copy.deepcopy(model), torch.finfo(torch.float32).tiny, 0
    for t in list(net.parameters()) + list(net.buffers()):
        if t.is_floating_point():
            small = (t != 0) & (t.abs() < tiny)
            flushed += int(small.sum())
            t.masked_fill_(small, 0.0)
    return net, flushed


def ort_session_ftz(path: str | Path, threads: int, spin: bool = False):
    """The settings of :func:`reprozoo.sinet.export.deploy_session` for a graph saved optimised
    (sequential execution, ``threads`` intra-op threads, no further optimisation, spinning off by
    default) plus ``session.set_denormal_as_zero`` for ORT's own worker threads. The thread that
    calls ``run`` computes too: FrameEngine runs every call on its own threads, started with
    ``torch.set_flush_denormal(True)`` (flush-to-zero and denormals-are-zero in that thread's MXCSR).
    The pretrained SINet's activations underflow into subnormal floats; with them flushed it ran at
    the untrained model's speed (3.5 vs 5.6-5.8 CPU-ms per 224x224 frame, 1 thread, same output mean)."""
    from reprozoo.sinet.export import ort_module

    ort = ort_module()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    for key in ("session.intra_op.allow_spinning", "session.inter_op.allow_spinning"):
        opts.add_session_config_entry(key, "1" if spin else "0")
    opts.add_session_config_entry("session.set_denormal_as_zero", "1")
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


class ChannelScale(nn.Module):
    """``x * scale`` per channel (one Mul by a constant, which ONNX Runtime keeps in its blocked layout)."""

    def __init__(self, scale: torch.Tensor):
        super().__init__()
        self.register_buffer("scale", scale.detach().float().reshape(1, -1, 1, 1).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale


@torch.no_grad()
def mirror_steep_prelus(model: nn.Module) -> int:
    """In place (BatchNorm folded first): every ``conv [-> Identity] -> PReLU`` in an ``nn.Sequential``
    whose slopes ``a`` include some > 1 is rewritten, for those channels, as the convolution negated,
    PReLU with slope ``1/a`` and a scale by ``-a`` after it: ``PReLU_a(y) = -a * PReLU_{1/a}(-y)``
    (exact up to rounding). All slopes are then <= 1, so the deployment export fuses the PReLU into
    the convolution (:class:`reprozoo.sinet.deploy_ops.ConvPReLU`) instead of keeping it as a PReLU. The
    bundled official SINet has two such slopes in its first layer (1.21, 1.31, at 112x112), which
    alone made it about 1.7x slower than the same architecture in ONNX Runtime (6.0-6.5 vs 3.5 CPU-ms
    per frame, 1 thread). Returns the number of PReLUs rewritten."""
    done = 0
    for seq in [m for m in model.modules() if isinstance(m, nn.Sequential)]:
        names = list(seq._modules)
        for i, name in enumerate(names):
            act = seq._modules[name]
            if not isinstance(act, nn.PReLU) or not (act.weight > 1).any():
                continue
            j = i - 1
            while j > 0 and isinstance(seq._modules[names[j]], nn.Identity):
                j -= 1
            conv = seq._modules[names[j]] if j >= 0 else None
            if not isinstance(conv, nn.Conv2d) or act.weight.numel() != conv.out_channels:
                continue
            steep = act.weight > 1
            sign = torch.where(steep, -1.0, 1.0)
            conv.weight.mul_(sign.view(-1, 1, 1, 1))
            if conv.bias is not None:
                conv.bias.mul_(sign)
            scale = torch.where(steep, -act.weight, torch.ones_like(act.weight))
            act.weight.copy_(torch.where(steep, 1.0 / act.weight, act.weight))
            items = list(seq._modules.items())
            seq._modules.clear()
            for key, mod in items:
                seq._modules[key] = mod
                if key == name:
                    seq._modules[f"{name}_scale"] = ChannelScale(scale)
            done += 1
    return done


class FrameEngine:
    """Foreground probabilities of video frames in batches (see the module docstring).

    >>> engine = FrameEngine()                         # the bundled pretrained SINet, ONNX Runtime
    >>> prob = engine.probabilities(frames)            # uint8 (N, H, W, 3) RGB -> float32 (N, 224, 224)

    ``source``: a :class:`~reprozoo.sinet.inference.Segmenter` (default: ``Segmenter.pretrained()``;
    its image size, mean/std and fit are used) or a plain ``nn.Module`` returning logits, with
    ``mean``, ``std`` (RGB, [0, 1] scale) and ``image_size``. ``fit="stretch"`` resizes every frame to
    ``image_size`` squared; ``"letterbox"`` keeps the aspect ratio, pads with gray 0.5 and returns the
    probability of the frame's box only (``(N, nh, nw)``). ``threads``: cores to use (default: all
    this process may run on). Call :meth:`close` (or use ``with``) to stop the worker threads of
    ``mode="sessions"``.
    """

    def __init__(self, source: Any = None, *, kind: str = "auto", mode: str = DEFAULT_MODE,
                 batch_size: int = DEFAULT_BATCH, threads: int | None = None, mean=None, std=None,
                 image_size: int | None = None, fit: str | None = None, spin: bool = False):
        if kind not in KINDS:
            raise ConfigError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
        if mode not in MODES:
            raise ConfigError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
            raise ConfigError(f"threads must be an integer >= 1, got {threads!r}")
        if source is None:
            from reprozoo.sinet.inference import Segmenter

            source = Segmenter.pretrained()
        if isinstance(source, nn.Module):
            if mean is None or std is None or image_size is None:
                raise ConfigError("a plain model needs mean, std and image_size (or pass a Segmenter)")
            model, fit = source, fit or "stretch"
        else:
            model, mean0, std0, size0, fit0 = _from_segmenter(source)
            mean, std = mean if mean is not None else mean0, std if std is not None else std0
            image_size, fit = image_size or size0, fit or fit0
        if fit not in ("stretch", "letterbox"):
            raise ConfigError(f"fit must be 'stretch' or 'letterbox', got {fit!r}")
        if kind == "auto":
            try:
                import onnxruntime  # noqa: F401
                kind = "ort"
            except ImportError:
                kind = "eager"
        self.kind, self.mode, self.batch_size, self.fit = kind, mode, batch_size, fit
        self.image_size, self.threads, self.spin = int(image_size), threads or cores(), spin
        # normalisation (x / 255 - mean) / std as one multiply-add on the uint8 values
        m, s = torch.tensor(mean, dtype=torch.float32), torch.tensor(std, dtype=torch.float32)
        self._scale = (1.0 / (255.0 * s)).view(1, 3, 1, 1)
        self._shift = (-m / s).view(1, 3, 1, 1)
        model, self.denormals_flushed = flush_denormals(model)
        self.prelus_mirrored = 0
        if kind == "ort":  # ORT only: in eager the extra Mul would cost, and PReLU is not fused anyway
            from reprozoo.sinet.deploy import fold_batchnorm

            fold_batchnorm(model)
            self.prelus_mirrored = mirror_steep_prelus(model)
        self.head = ProbabilityHead(model).eval()
        self._sessions: list[dict[int, Any]] = []
        self._pool: ThreadPoolExecutor | None = None
        if kind == "ort":
            self._build_sessions()

    # -- construction ---------------------------------------------------------------------------
    def _build_sessions(self, batch: int | None = None) -> None:
        """Fixed-shape graphs (a dynamic batch made SINet's batch-1 calls up to 2x slower here: its
        upsampling sizes become runtime shape arithmetic): one for ``batch_size`` frames at
        construction, one for single frames (the rest of a chunk) when first needed; one session of
        each per worker. Exporting and optimising one graph takes a few seconds."""
        from reprozoo.sinet.export import export_deploy_onnx

        n_sessions = self.threads if self.mode == "sessions" else 1
        per_session = 1 if self.mode == "sessions" else self.threads
        if not self._sessions:
            self._sessions = [{} for _ in range(n_sessions)]
        b = batch or self.batch_size
        with tempfile.TemporaryDirectory(prefix="reprozoo-sinet-") as tmp:
            x = torch.rand(b, 3, self.image_size, self.image_size)
            opt, self.deploy_info = export_deploy_onnx(self.head, Path(tmp) / "engine.onnx", x, threads=per_session,
                                                       optimized_path=Path(tmp) / "engine.ort.onnx")
            for sessions in self._sessions:
                sessions[b] = ort_session_ftz(opt, per_session, spin=self.spin)
        if self._pool is None:  # every run happens on these threads, with denormals flushed
            self._pool = ThreadPoolExecutor(n_sessions, thread_name_prefix="sinet-engine",
                                            initializer=torch.set_flush_denormal, initargs=(True,))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def __enter__(self) -> FrameEngine:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:  # pragma: no cover - best effort
        try:
            self.close()
        except Exception:
            pass

    # -- preprocessing ----------------------------------------------------------------------------
    def _check(self, frames: Any) -> np.ndarray:
        if not isinstance(frames, np.ndarray):
            raise DataError(f"frames must be a numpy uint8 array (N, H, W, 3), got {type(frames).__name__}")
        if frames.dtype != np.uint8:
            raise DataError(f"frames must be uint8 RGB (0-255), got dtype {frames.dtype}")
        if frames.ndim != 4 or frames.shape[-1] != 3 or min(frames.shape[1:3], default=0) < 1:
            raise DataError(f"frames must have shape (N, H, W, 3) with H, W >= 1, got {frames.shape}")
        return frames

    def box(self, height: int, width: int) -> tuple[int, int, int, int]:
        """(top, left, height, width) of a frame of this size in the model's input."""
        s = self.image_size
        if self.fit == "stretch":
            return 0, 0, s, s
        scale = s / max(height, width)
        nh, nw = max(1, round(height * scale)), max(1, round(width * scale))
        return (s - nh) // 2, (s - nw) // 2, nh, nw

    def preprocess(self, frames: np.ndarray) -> np.ndarray:
        """uint8 (N, H, W, 3) RGB -> float32 (N, 3, S, S), resized and normalised (C-contiguous)."""
        frames = self._check(frames)
        n, h, w, _ = frames.shape
        s = self.image_size
        top, left, nh, nw = self.box(h, w)
        x = torch.from_numpy(frames).permute(0, 3, 1, 2)  # NCHW view of channels-last memory: no copy
        if (h, w) != (nh, nw):
            x = F.interpolate(x, size=(nh, nw), mode="bilinear", align_corners=False, antialias=True)
        out = torch.empty(n, 3, s, s, dtype=torch.float32)
        if (nh, nw) == (s, s):
            torch.addcmul(self._shift, x, self._scale, out=out)  # uint8 -> normalised float in one pass
        else:  # letterbox: gray 0.5 around the frame's box
            out.copy_((127.5 * self._scale + self._shift).expand(n, 3, s, s))
            out[:, :, top:top + nh, left:left + nw] = torch.addcmul(self._shift, x, self._scale)
        return out.numpy()

    # -- inference ------------------------------------------------------------------------------
    def infer(self, x: np.ndarray) -> np.ndarray:
        """Preprocessed float32 (N, 3, S, S) -> probabilities float32 (N, S, S) (model only)."""
        s = self.image_size
        if not isinstance(x, np.ndarray) or x.dtype != np.float32 or x.shape[1:] != (3, s, s):
            raise DataError(f"infer takes preprocessed float32 (N, 3, {s}, {s}) arrays (see preprocess), got "
                            f"{getattr(x, 'dtype', type(x).__name__)} {getattr(x, 'shape', '')}")
        x = np.ascontiguousarray(x)
        n = x.shape[0]
        out = np.empty((n, self.image_size, self.image_size), dtype=np.float32)
        if n == 0:
            return out
        if self.kind == "eager":
            with torch.inference_mode():
                for i in range(0, n, self.batch_size):
                    out[i:i + self.batch_size] = self.head(torch.from_numpy(x[i:i + self.batch_size])).numpy()
            return out
        bounds = np.linspace(0, n, len(self._sessions) + 1).round().astype(int)
        if any((b - a) % self.batch_size for a, b in zip(bounds, bounds[1:])) and 1 not in self._sessions[0]:
            self._build_sessions(1)
        jobs = [self._pool.submit(self._run_chunk, sess, x[a:b], out[a:b])
                for sess, a, b in zip(self._sessions, bounds, bounds[1:]) if b > a]
        for job in jobs:
            job.result()
        return out

    def _run_chunk(self, sessions: dict[int, Any], x: np.ndarray, out: np.ndarray) -> None:
        b, n = self.batch_size, x.shape[0]
        full = n - n % b
        for i in range(0, full, b):
            out[i:i + b] = sessions[b].run(None, {"image": x[i:i + b]})[0]
        for i in range(full, n):
            out[i:i + 1] = sessions[1].run(None, {"image": x[i:i + 1]})[0]

    def probabilities(self, frames: np.ndarray) -> np.ndarray:
        """uint8 (N, H, W, 3) RGB frames -> float32 (N, h, w) foreground probability at the model's
        input resolution: (N, S, S) for ``fit="stretch"``, the frame's box for ``"letterbox"``."""
        frames = self._check(frames)
        prob = self.infer(self.preprocess(frames))
        top, left, nh, nw = self.box(*frames.shape[1:3])
        if (nh, nw) != (self.image_size, self.image_size):
            prob = np.ascontiguousarray(prob[:, top:top + nh, left:left + nw])
        return prob
