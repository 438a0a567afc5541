"""``reprozoo transcribe --checkpoint CKPT FILE.wav...``: one transcript per file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from reprozoo.errors import DataError, ReproZooError


def transcribe_files(files: list[Path], checkpoint: Path) -> tuple[list[tuple[Path, str]], list[str]]:
    """(path, transcript) for every readable file, and the problems of the others (named)."""
    from reprozoo.activeasr.inference import Transcriber
    from reprozoo.data.speech import load_audio

    tr = Transcriber.from_checkpoint(checkpoint)  # a bad checkpoint stops before reading audio
    import torch

    done, problems = [], []
    for path in files:
        try:
            wave = torch.from_numpy(load_audio(path, tr.features.sample_rate))
        except ReproZooError as err:
            problems.append(str(err))
            continue
        done.append((path, tr.transcribe_waves([wave])[0]))
    return done, problems


def register(app: typer.Typer) -> None:
    @app.command("transcribe")
    def transcribe_cmd(
        files: Annotated[list[Path], typer.Argument(help="audio files (WAV/FLAC/OGG, any sample rate, mono or stereo)")],
        checkpoint: Annotated[Path, typer.Option(help="CTC checkpoint (e.g. trials/al_cr__seed0/model.safetensors of an active-asr run)")],
        as_json: Annotated[bool, typer.Option("--json", help="one JSON object per line: {file, text}")] = False,
    ) -> None:
        """Transcribe speech with a trained activeasr CTC model (greedy decoding)."""
        done, problems = transcribe_files(list(files), checkpoint)
        for path, text in done:
            typer.echo(json.dumps({"file": str(path), "text": text}) if as_json else f"{path}\t{text}")
        if problems:
            for p in problems:
                typer.echo(f"  skipped {p}", err=True)
            raise DataError(f"{len(problems)} of {len(files)} file(s) could not be transcribed (listed above)")
