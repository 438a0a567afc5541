"""``reprozoo ground``: the predicted moment of a sentence in one video's clip features."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from reprozoo.errors import DataError


def read_features(path: Path, key: str | None = None):
    """(N, D) features from a ``.npy`` file or one video of an HDF5 file (``--key VIDEO``)."""
    import numpy as np

    from reprozoo.data.grounding import FeatureStore

    if not path.is_file():
        raise DataError(f"no feature file {path}")
    if path.suffix == ".npy":
        try:
            return np.load(path, allow_pickle=False)
        except ValueError as err:
            raise DataError(f"{path} is not a .npy array: {err}") from err
    if path.suffix in (".h5", ".hdf5"):
        if not key:
            raise DataError(f"{path} is an HDF5 file: pass --key VIDEO_ID to pick the video")
        return FeatureStore(path).get(key)
    raise DataError(f"{path}: features must be a .npy file or an .h5/.hdf5 file with --key")


def ground_text(checkpoint: Path, features: Path, query: str, duration: float | None = None, top: int = 5,
                key: str | None = None) -> str:
    from reprozoo.gmp.inference import Grounder

    if top < 1:
        raise DataError(f"--top must be >= 1, got {top}")
    grounder = Grounder.from_checkpoint(checkpoint)
    res = grounder.ground(read_features(features, key), query, duration=duration, top=top, name=str(features))
    unit = "s" if duration is not None else " clips"
    s, e = res["segment"]
    lines = [f"query: {query!r} (words used: {' '.join(res['words'])})",
             f"segment: {s:.2f}{unit} - {e:.2f}{unit} of {res['length']:.2f}{unit}",
             f"top-{len(res['proposals'])} proposals (lowest reconstruction loss first):"]
    lines += [f"  {i + 1}. {a:.2f}{unit} - {b:.2f}{unit}  (loss {c:.3f})" for i, (a, b, c) in enumerate(res["proposals"])]
    return "\n".join(lines)


def register(app: typer.Typer) -> None:
    @app.command("ground")
    def ground_cmd(
        checkpoint: Annotated[Path, typer.Option(help="grounder.safetensors written by `reprozoo run gmp-grounding`")],
        features: Annotated[Path, typer.Option(help="(N, D) clip features: a .npy file, or .h5 with --key")],
        query: Annotated[str, typer.Option(help="the sentence to ground")],
        duration: Annotated[float | None, typer.Option(help="video length in seconds (default: N clips)")] = None,
        top: Annotated[int, typer.Option(help="how many proposals to list")] = 5,
        key: Annotated[str | None, typer.Option(help="video id inside an HDF5 feature file")] = None,
    ) -> None:
        """Ground a sentence in a video's pre-extracted features with a trained CPL/PPS model."""
        typer.echo(ground_text(checkpoint, features, query, duration, top, key))
