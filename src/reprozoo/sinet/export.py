"""ONNX export of a trained SINet (normalisation included: the graph takes RGB in [0, 1]).

Uses PyTorch's TorchScript-based exporter (``dynamo=False``); it writes the model with the ``onnx``
package (``pip install 'reprozoo[onnx]'``). The channel shuffle reads ``tensor.shape`` so the batch
dimension stays dynamic.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from reprozoo.errors import DataError

try:
    from reprozoo.errors import OutputError
except ImportError:  # pragma: no cover - older reprozoo.errors
    OutputError = DataError  # type: ignore[misc,assignment]
from reprozoo.runtime.extras import require
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


# ---------------------------------------------------------------------------------------------
# Deployment path: the same function, fewer and cheaper operators.
#
# ONNX Runtime's profiler on the plain export shows SINet's time going to PRelu (about half of the
# kernel time) and to the layout reorders around it, not to arithmetic. ``deploy_model`` therefore
# (1) folds every BatchNorm that directly follows a convolution into that convolution's weights and
# bias (also across SINet's bilinear upsampling, which is a per-channel convex combination and so
# commutes with a per-channel affine map), and (2) writes PReLU as ``max(x, a * x)``, which equals
# PReLU exactly when every slope ``a <= 1`` (a > 1 would flip the two branches: such a PReLU is kept).
# ---------------------------------------------------------------------------------------------


class MaxPReLU(nn.Module):
    """``max(x, a * x)`` with per-channel slopes ``a <= 1``: equal to PReLU, but an elementwise
    Max/Mul pair that ONNX Runtime runs in its blocked layout."""

    def __init__(self, weight: torch.Tensor):
        super().__init__()
        self.register_buffer("weight", weight.detach().clone().float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight
        if w.numel() > 1:
            w = w.view(1, -1, *([1] * (x.dim() - 2)))
        return torch.maximum(x, x * w)


def prelu_rewritable(prelu: nn.PReLU) -> bool:
    """``max(x, a*x) == PReLU(x)`` for every x iff every slope a <= 1."""
    return bool((prelu.weight.detach() <= 1.0).all())


def replace_children(model: nn.Module, make) -> int:
    """In place: every submodule ``child`` for which ``make(child)`` returns a module is replaced by
    that module in its parent (the replacements themselves are not visited). Returns the number
    replaced."""
    done = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            new = make(child)
            if new is not None:
                setattr(parent, name, new)
                done += 1
    return done


def rewrite_prelu(model: nn.Module) -> tuple[int, int]:
    """In place: PReLU -> :class:`MaxPReLU` where valid. Returns (rewritten, kept)."""
    kept = sum(isinstance(m, nn.PReLU) and not prelu_rewritable(m) for m in model.modules())
    done = replace_children(model, lambda c: MaxPReLU(c.weight)
                            if isinstance(c, nn.PReLU) and prelu_rewritable(c) else None)
    return done, kept


@torch.no_grad()
def fold_bn_into_conv(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """A convolution computing ``bn(conv(x))`` (eval-mode BN statistics)."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                      conv.dilation, conv.groups, bias=True, padding_mode=conv.padding_mode)
    fused.weight.copy_(conv.weight * scale.view(-1, 1, 1, 1))
    bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
    fused.bias.copy_((bias - bn.running_mean) * scale + bn.bias)
    return fused.to(conv.weight.device)


def fold_batchnorm(model: nn.Module) -> int:
    """In place: fold BatchNorm2d into the convolution before it. Handles ``nn.Sequential`` runs
    (conv, bn, ...) anywhere in the model and SINet's S2 blocks (depthwise conv -> BN, pointwise
    conv -> [bilinear upsample] -> BN). Returns the number of BatchNorms folded."""
    from reprozoo.sinet.blocks import S2Block

    folded = 0
    for module in list(model.modules()):
        if isinstance(module, S2Block):
            if isinstance(module.br[0], nn.BatchNorm2d):
                module.dw = fold_bn_into_conv(module.dw, module.br[0])
                module.br[0] = nn.Identity()
                folded += 1
            if isinstance(module.bn, nn.BatchNorm2d):
                module.pw = fold_bn_into_conv(module.pw, module.bn)
                module.bn = nn.Identity()
                folded += 1
        elif isinstance(module, nn.Sequential):
            names = list(module._modules)
            for a, b in zip(names, names[1:]):
                conv, bn = module._modules[a], module._modules[b]
                if (isinstance(conv, nn.Conv2d) and type(bn) is nn.BatchNorm2d
                        and bn.track_running_stats and conv.out_channels == bn.num_features):
                    module._modules[a] = fold_bn_into_conv(conv, bn)
                    module._modules[b] = nn.Identity()
                    folded += 1
    return folded


class _S2ModuleNoShuffle(nn.Module):
    """An S2 module whose channel shuffle is absorbed into the two branches' weights (deployment
    only): the shuffle is a fixed channel permutation, and everything up to each branch's pointwise
    convolution acts per channel, so permuting the depthwise weights, the PReLU slopes and the
    pointwise input columns gives the same output without moving any data."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.reduce, self.branch_a, self.branch_b = module.reduce, module.branch_a, module.branch_b
        self.residual, self.br = module.residual, module.br

        self.add_branches = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.reduce(x)
        if self.add_branches:  # the branches write disjoint channels of the full output (see concat_as_add)
            y = self.branch_a(y) + self.branch_b(y)
        else:
            y = torch.cat([self.branch_a(y), self.branch_b(y)], dim=1)
        if self.residual:
            y = y + x
        return self.br(y)


@torch.no_grad()
def _pad_rows(conv: nn.Conv2d, total: int, start: int) -> nn.Conv2d:
    """``conv`` with ``total`` output channels: its own at ``start:start + out``, zero rows and zero
    bias elsewhere."""
    out = nn.Conv2d(conv.in_channels, total, conv.kernel_size, conv.stride, conv.padding, conv.dilation,
                    conv.groups, bias=True, padding_mode=conv.padding_mode).to(conv.weight.device)
    out.weight.zero_()
    out.bias.zero_()
    stop = start + conv.out_channels
    out.weight[start:stop] = conv.weight
    if conv.bias is not None:
        out.bias[start:stop] = conv.bias
    return out


def concat_as_add(model: nn.Module, block: int = 16) -> int:
    """In place (after :func:`remove_channel_shuffle`): in every S2 module whose branch widths are
    not multiples of ``block`` (SINet's level 2: 24 + 24 channels), each branch's pointwise conv
    writes its channels of the full width (zero rows elsewhere) and the concatenation becomes an
    Add. ONNX Runtime's blocked layout holds ``block`` channels per vector (16 with AVX-512, 8 with
    AVX2) and concatenates only whole blocks, so a 24 + 24 concat costs four layout reorders; an Add
    (exact: the other branch contributes 0.0) stays blocked and fuses into the convolution. Costs the
    pointwise convs' MACs once more. Only branches without pooling (no upsample after the pointwise
    conv) are changed. Returns the number of modules changed."""
    done = 0
    for module in list(model.modules()):
        if not isinstance(module, _S2ModuleNoShuffle):
            continue
        a, b = module.branch_a, module.branch_b
        ca, cb = a.pw.out_channels, b.pw.out_channels
        if (ca % block == 0 and cb % block == 0) or a.pool > 1 or b.pool > 1:
            continue
        if not all(isinstance(m.bn, nn.Identity) and isinstance(m.pw, nn.Conv2d) for m in (a, b)):
            continue
        a.pw, b.pw = _pad_rows(a.pw, ca + cb, 0), _pad_rows(b.pw, ca + cb, ca)
        module.add_branches = True
        done += 1
    return done


def shuffle_permutation(channels: int, groups: int = 2) -> torch.Tensor:
    """``channel_shuffle(y, groups) == y[:, perm]``."""
    return torch.arange(channels).view(groups, channels // groups).t().reshape(-1)


@torch.no_grad()
def _absorb_shuffle(block: nn.Module, perm: torch.Tensor) -> None:
    """Make ``block(y)`` compute what it computed on ``y[:, perm]`` (BN already folded)."""
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(len(perm))
    block.dw.weight.copy_(block.dw.weight[inv])
    if block.dw.bias is not None:
        block.dw.bias.copy_(block.dw.bias[inv])
    act = block.br[1]
    if act.weight.numel() > 1:
        act.weight.copy_(act.weight[inv])
    block.pw.weight.copy_(block.pw.weight[:, inv])


def remove_channel_shuffle(model: nn.Module) -> int:
    """In place (after :func:`fold_batchnorm`): every S2 module loses its channel shuffle."""
    from reprozoo.sinet.blocks import S2Module

    def make(c):
        if type(c) is not S2Module or not all(isinstance(b.br[0], nn.Identity) for b in (c.branch_a, c.branch_b)):
            return None
        perm = shuffle_permutation(c.reduce.out_channels, 2)
        _absorb_shuffle(c.branch_a, perm)
        _absorb_shuffle(c.branch_b, perm)
        return _S2ModuleNoShuffle(c)

    return replace_children(model, make)


class ConvPReLU(nn.Module):
    """``PReLU(conv(x))`` for slopes ``a <= 1``, written as ``conv_a(x) + relu(conv_b(x))`` where
    ``conv_a`` has weights and bias scaled by ``a`` and ``conv_b`` by ``1 - a`` (per output
    channel): ``a*y + (1-a)*relu(y) == PReLU(y)`` for ``1 - a >= 0``. Both halves are plain
    convolutions with ReLU/Add that ONNX Runtime fuses and keeps in its blocked layout, so no layout
    reorder surrounds the activation; the price is one more (usually depthwise) convolution."""

    def __init__(self, conv: nn.Conv2d, slope: torch.Tensor):
        super().__init__()
        a = slope.detach().reshape(-1).float().to(conv.weight.device)
        if a.numel() == 1:
            a = a.expand(conv.out_channels)
        self.conv_a, self.conv_b = _scaled_conv(conv, a), _scaled_conv(conv, 1 - a)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_a(x) + torch.relu(self.conv_b(x))


@torch.no_grad()
def _scaled_conv(conv: nn.Conv2d, scale: torch.Tensor) -> nn.Conv2d:
    out = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                    conv.dilation, conv.groups, bias=True, padding_mode=conv.padding_mode).to(conv.weight.device)
    out.weight.copy_(conv.weight * scale.view(-1, 1, 1, 1))
    bias = conv.bias if conv.bias is not None else torch.zeros(conv.out_channels, device=conv.weight.device)
    out.bias.copy_(bias * scale)
    return out


@torch.no_grad()
def _bn_as_conv(bn: nn.BatchNorm2d) -> nn.Conv2d:
    """An eval-mode BatchNorm2d as a 1x1 depthwise convolution."""
    c = bn.num_features
    ident = nn.Conv2d(c, c, 1, groups=c, bias=False).to(bn.running_mean.device)
    ident.weight.fill_(1.0)
    return fold_bn_into_conv(ident, bn)


def fuse_conv_prelu(model: nn.Module) -> tuple[int, int]:
    """In place (after :func:`fold_batchnorm`): every PReLU with slopes <= 1 that follows a
    convolution (``nn.Sequential`` conv [-> Identity] -> PReLU, SINet's S2-block depthwise conv ->
    PReLU) or a lone BatchNorm (``BN -> PReLU``, as a 1x1 depthwise convolution) becomes a
    :class:`ConvPReLU`. Returns (fused, PReLUs left because a slope > 1)."""
    from reprozoo.sinet.blocks import S2Block

    fused = kept = 0
    for module in list(model.modules()):
        if isinstance(module, S2Block) and isinstance(module.br[0], nn.Identity) and isinstance(module.br[1], nn.PReLU):
            if prelu_rewritable(module.br[1]):
                module.dw = ConvPReLU(module.dw, module.br[1].weight)
                module.br = nn.Identity()
                fused += 1
            else:
                kept += 1
        elif isinstance(module, nn.Sequential):
            names = list(module._modules)
            for i, name in enumerate(names):
                act = module._modules[name]
                if not isinstance(act, nn.PReLU) or i == 0:
                    continue
                j = i - 1
                while j > 0 and isinstance(module._modules[names[j]], nn.Identity):
                    j -= 1
                prev = module._modules[names[j]]
                if type(prev) is nn.BatchNorm2d and prev.track_running_stats:
                    prev = _bn_as_conv(prev)
                if not isinstance(prev, nn.Conv2d):
                    continue
                if not prelu_rewritable(act):
                    kept += 1
                    continue
                module._modules[names[j]] = ConvPReLU(prev, act.weight)
                for k in range(j + 1, i + 1):
                    module._modules[names[k]] = nn.Identity()
                fused += 1
    return fused, kept


@torch.no_grad()
def dense_from_grouped(conv: nn.Conv2d) -> nn.Conv2d:
    """A dense (groups=1) convolution computing the grouped ``conv``: block-diagonal weights, zeros
    elsewhere (exact: the zeros add exact 0.0 terms)."""
    g = conv.groups
    cin_g, cout_g = conv.in_channels // g, conv.out_channels // g
    dense = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                      conv.dilation, 1, bias=conv.bias is not None, padding_mode=conv.padding_mode)
    dense = dense.to(conv.weight.device)
    dense.weight.zero_()
    for k in range(g):
        dense.weight[k * cout_g:(k + 1) * cout_g, k * cin_g:(k + 1) * cin_g] = conv.weight[k * cout_g:(k + 1) * cout_g]
    if conv.bias is not None:
        dense.bias.copy_(conv.bias)
    return dense


def densify_grouped_convs(model: nn.Module, max_groups: int = 4) -> int:
    """In place: every grouped convolution that is not depthwise and has ``groups <= max_groups``
    (SINet's g=2 reduce convs) becomes a dense block-diagonal one. ONNX Runtime's blocked-layout
    (NCHWc) path takes dense and depthwise convolutions only; a grouped one drops out of it and costs
    a layout reorder on each side. Returns the number replaced."""
    def make(c):
        grouped = type(c) is nn.Conv2d and 1 < c.groups <= max_groups
        return dense_from_grouped(c) if grouped and not c.groups == c.in_channels == c.out_channels else None

    return replace_children(model, make)


class ConvSEGate(nn.Module):
    """SINet's SE gate with global average pooling and the Linear layers as 1x1 convolutions
    (the same function): ``GlobalAveragePool`` and the 1x1 convs run in ORT's blocked layout,
    where ``mean(dim=(2, 3))`` + ``Gemm`` needed a reorder."""

    def __init__(self, gate: nn.Module):
        super().__init__()
        layers = []
        for m in gate.fc:
            if isinstance(m, nn.Linear):
                conv = nn.Conv2d(m.in_features, m.out_features, 1, bias=m.bias is not None).to(m.weight.device)
                with torch.no_grad():
                    conv.weight.copy_(m.weight[:, :, None, None])
                    if m.bias is not None:
                        conv.bias.copy_(m.bias)
                layers.append(conv)
            else:
                layers.append(m)
        self.fc = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.fc(torch.nn.functional.adaptive_avg_pool2d(x, 1))


def se_as_conv(model: nn.Module) -> int:
    """In place: every :class:`reprozoo.sinet.blocks.SEGate` becomes a :class:`ConvSEGate`."""
    from reprozoo.sinet.blocks import SEGate

    return replace_children(model, lambda c: ConvSEGate(c) if type(c) is SEGate else None)


class RepeatedGroupConv(nn.Module):
    """A dense convolution with few outputs (``out <= narrow``, e.g. a 2-class head) as a grouped one
    over ``out`` copies of the input: group ``k`` sees the whole input and computes output ``k``
    (the same function). ORT's blocked layout would pad the few output channels to a whole block
    (16 with AVX-512: 8x the work for 2 outputs) and reorder back; a grouped convolution stays in
    the plain layout, and so does everything after it."""

    def __init__(self, conv: nn.Conv2d):
        super().__init__()
        self.copies = conv.out_channels
        self.conv = nn.Conv2d(conv.in_channels * self.copies, conv.out_channels, conv.kernel_size, conv.stride,
                              conv.padding, conv.dilation, self.copies, bias=conv.bias is not None,
                              padding_mode=conv.padding_mode).to(conv.weight.device)
        with torch.no_grad():
            self.conv.weight.copy_(conv.weight)
            if conv.bias is not None:
                self.conv.bias.copy_(conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.cat([x] * self.copies, dim=1))


def narrow_convs_plain(model: nn.Module, narrow: int = 4) -> int:
    """In place (last step): every dense convolution with ``2 <= out_channels <= narrow`` becomes a
    :class:`RepeatedGroupConv`. Returns the number replaced."""
    return replace_children(model, lambda c: RepeatedGroupConv(c)
                            if type(c) is nn.Conv2d and c.groups == 1 and 2 <= c.out_channels <= narrow else None)


def deploy_model(model: nn.Module, *, fold_bn: bool = True, max_prelu: bool = True,
                 drop_shuffle: bool = True, conv_prelu: bool = True, dense_groups: bool = True,
                 conv_se: bool = True, branch_add: bool = True, block: int = 16,
                 narrow: int = 4) -> tuple[nn.Module, dict]:
    """An eval-mode copy computing the same function with cheaper operators: BN folded into the
    convolution before it, (SINet) channel shuffles absorbed into weights, S2 branches whose widths
    break ORT's channel blocks (``block``) added instead of concatenated, grouped (non-depthwise)
    convolutions made dense, SE gates as global pooling + 1x1 convolutions, PReLU after a
    convolution or a lone BN as :class:`ConvPReLU`, any other PReLU as ``max(x, a*x)``, dense
    convolutions with at most ``narrow`` outputs (2-class heads) as :class:`RepeatedGroupConv`
    (0: off); each only where exact (a PReLU with a slope > 1 stays a PReLU). The input model is
    untouched. Returns ``(copy, info)`` with the counts ``bn_folded``, ``shuffles_removed``,
    ``conv_prelu_fused``, ``prelu_rewritten`` (to max), ``prelu_kept``, ``branch_concat_as_add``,
    ``grouped_densified``, ``se_as_conv`` and ``narrow_convs_plain``."""
    import copy

    net = copy.deepcopy(model).eval()
    info = {"bn_folded": fold_batchnorm(net) if fold_bn else 0, "shuffles_removed": 0, "conv_prelu_fused": 0,
            "prelu_rewritten": 0, "prelu_kept": 0}
    if fold_bn and drop_shuffle:
        info["shuffles_removed"] = remove_channel_shuffle(net)
    info["branch_concat_as_add"] = concat_as_add(net, block) if fold_bn and drop_shuffle and branch_add else 0
    info["grouped_densified"] = densify_grouped_convs(net) if dense_groups else 0
    info["se_as_conv"] = se_as_conv(net) if conv_se else 0
    if fold_bn and conv_prelu:
        info["conv_prelu_fused"], _ = fuse_conv_prelu(net)
    if max_prelu:  # what is left: PReLU after Linear layers, and any with a slope > 1 (kept as PReLU)
        info["prelu_rewritten"], info["prelu_kept"] = rewrite_prelu(net)
    else:
        info["prelu_kept"] = sum(isinstance(m, nn.PReLU) for m in net.modules())
    info["narrow_convs_plain"] = narrow_convs_plain(net, narrow) if narrow else 0
    for p in net.parameters():
        p.requires_grad_(False)
    return net, info


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
    ort = _ort()
    opts = _session_options(ort, threads)
    opts.optimized_model_filepath = str(optimized_path)
    opts.log_severity_level = 3  # the saved graph holds this CPU's blocked-layout kernels: it is for this machine
    ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return Path(optimized_path), info


def _ort():
    ort = require("onnxruntime", what="ONNX Runtime sessions")
    return ort


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
    ort = _ort()
    opts = _session_options(ort, threads, optimize=not preoptimized, spin=spin, parallel=parallel)
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def profile_onnx(path: str | Path, feed: dict, *, threads: int = 2, runs: int = 20,
                 spin: bool | None = None) -> dict[str, float]:
    """ONNX Runtime's own profiler (``SessionOptions.enable_profiling``): kernel milliseconds per
    run by operator type, sorted, largest first (after the graph optimiser's rewrites)."""
    import json
    import os
    import tempfile

    ort = _ort()
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
