"""``reprozoo antispoof --checkpoint CKPT VIDEO_OR_FRAME_FOLDER...``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from reprozoo.errors import DataError


def antispoof(inputs: list[Path], checkpoint: Path, frames: str = "uniform:16", seed: int = 0) -> list[dict]:
    """Score every input video; all inputs are read (and checked) before any is scored."""
    from reprozoo.data.fas_videos import read_frames, sample_indices
    from reprozoo.eclips.inference import AntiSpoofer

    sample_indices(1, frames)  # validates the option
    if not inputs:
        raise DataError("give at least one video file or frame folder")
    spoofer = AntiSpoofer.from_checkpoint(checkpoint, seed=seed)
    videos = [(str(p), read_frames(p, frames)) for p in inputs]
    return [spoofer.score_video(name, x).to_dict() for name, x in videos]


def register(app: typer.Typer) -> None:
    @app.command("antispoof")
    def antispoof_cmd(
        inputs: Annotated[list[Path], typer.Argument(help="video files or folders of frames (one video each)")],
        checkpoint: Annotated[Path, typer.Option(help="ECLIPS checkpoint (eclips.safetensors from `reprozoo run eclips-fas`)")],
        frames: Annotated[str, typer.Option(help="frames scored per video: all | uniform:M")] = "uniform:16",
        as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
        seed: Annotated[int, typer.Option(help="seed of the MC-dropout masks")] = 0,
    ) -> None:
        """Face anti-spoofing per video: live probability, uncertainty, frame spread, decision."""
        rows = antispoof(list(inputs), checkpoint, frames, seed)
        if as_json:
            typer.echo(json.dumps(rows, indent=2))
            return
        t = rows[0]["threshold"]
        typer.echo(f"decision: live if P(live) >= {t:.4f} (the checkpoint's validation EER threshold)")
        typer.echo(f"{'video':40s} {'frames':>6s} {'P(live)':>8s} {'uncert.':>8s} {'frame sd':>8s}  decision")
        for r in rows:
            typer.echo(f"{r['video'][-40:]:40s} {r['n_frames']:6d} {r['live_probability']:8.4f} "
                       f"{r['uncertainty']:8.5f} {r['frame_std']:8.4f}  {r['decision']}")
