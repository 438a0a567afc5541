"""``reprozoo segment`` and ``reprozoo export sinet``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from reprozoo.errors import DataError, OutputError, OutputExistsError, ReproZooError


def _expand(inputs: list[Path]) -> list[tuple[Path, str | None]]:
    """Files as given; folders expand to their image files. Returns (path, problem-or-None)."""
    from reprozoo.data.segfolders import IMAGE_SUFFIXES

    items: list[tuple[Path, str | None]] = []
    for p in inputs:
        if p.is_dir():
            named = sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
            files = [f for f in named if f.is_file()]
            if not files:
                items.append((p, f"folder holds no images ({', '.join(IMAGE_SUFFIXES)})"))
            items += [(f, None if f.is_file() else _not_a_file(f)) for f in named if f.is_file() or f.is_symlink()]
        elif not p.exists():
            items.append((p, _not_a_file(p)))
        else:
            items.append((p, None))
    return items


def _not_a_file(p: Path) -> str:
    if p.is_symlink() and not p.exists():
        import os

        return f"dangling symbolic link (to {os.readlink(p)})"
    return "no such file" if not p.exists() else "not a file"


def _check_outputs(items: list[tuple[Path, str | None]], names: list[str], out: Path, overwrite: bool) -> None:
    """Before the model loads: no output is one of the inputs (never, even with --overwrite), and no
    existing file is replaced without --overwrite."""
    inputs = {path.resolve() for path, _ in items}
    targets = [out / f"{stem}{suffix}" for (_, problem), stem in zip(items, names) if problem is None
               for suffix in ("_mask.png", "_overlay.png")]
    clash = [str(t) for t in targets if t.resolve() in inputs]
    if clash:
        raise OutputError(f"{clash[0]} would be written over one of the inputs" + (f" (and {len(clash) - 1} more)"
                          if len(clash) > 1 else "") + "; pass another --out folder")
    taken = [str(t) for t in targets if t.exists() or t.is_symlink()]
    if taken and not overwrite:
        raise OutputExistsError(f"{taken[0]} already exists" + (f" (and {len(taken) - 1} more outputs)"
                                if len(taken) > 1 else "") + "; pass --overwrite to replace, or another --out")


def _read(path: Path):
    """An image as a tensor, or a DataError: unreadable files and decompression bombs (an image
    with more pixels than PIL's limit) are skipped and listed, the batch goes on."""
    from PIL import Image

    from reprozoo.data.segfolders import read_image

    try:
        return read_image(path)
    except (Image.DecompressionBombError, MemoryError) as err:
        raise DataError(f"{path}: image too large to decode safely ({' '.join(str(err).split())[:120]})") from None


def _save_png(array, path: Path) -> None:
    from PIL import Image

    tmp = path.with_name(f".{path.name}.tmp")
    try:
        Image.fromarray(array).save(tmp, format="PNG")
        tmp.replace(path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"cannot write {path}: {err.strerror or err}") from None


def output_names(paths: list[Path]) -> list[str]:
    """One distinct output stem per input: the file stem, or ``<stem>_<ext>`` when two inputs share
    a stem (``a.png``, ``a.jpg`` -> ``a_png``, ``a_jpg``), with ``_<k>`` added while a name is taken
    (so ``a_2.png`` next to them keeps ``a_2`` and nothing is written twice)."""
    stems = [p.stem for p in paths]
    shared = {s for s in stems if stems.count(s) > 1}
    taken = {s for s in stems if s not in shared}
    names = []
    for p in paths:
        if p.stem not in shared:
            names.append(p.stem)
            continue
        base = f"{p.stem}_{p.suffix.lstrip('.').lower() or 'img'}"
        name, k = base, 2
        while name in taken:
            name, k = f"{base}_{k}", k + 1
        taken.add(name)
        names.append(name)
    return names


SYNTHETIC_WARNING = ("warning: this checkpoint was trained on generated portraits only; expect errors on real "
                     "photos (train on real data with `reprozoo run sinet-portrait --preset paper --set data_root=...`)")


def segment_images(images: list[Path], checkpoint: Path | None, out: Path, threshold: float | None = None,
                   warn=None, compile: bool = False, overwrite: bool = False) -> tuple[int, list[str]]:
    """Write ``<name>_mask.png`` (0/255, input size) and ``<name>_overlay.png`` for every image;
    returns (number written, problems). A bad file is skipped and reported, the rest still run.
    ``checkpoint=None``: the bundled official SINet (``Segmenter.pretrained``, images resized to
    224x224 as in the official code); a checkpoint letterboxes at its size (aspect ratio kept);
    ``threshold=None``: the checkpoint's (0.5 unless it stores one);
    ``compile``: ``torch.compile`` the network (the first image compiles it, see ``Segmenter``).
    No output replaces an input; an existing output is replaced only with ``overwrite``."""
    import numpy as np

    from reprozoo.cli_commands import check_output_folder
    from reprozoo.sinet.inference import Segmenter

    if threshold is not None and not 0.0 < threshold < 1.0:
        raise DataError(f"--threshold must be in (0, 1), got {threshold}")
    if out.exists() and not out.is_dir():
        raise OutputError(f"--out {out} is a file; pass a folder for the masks and overlays")
    check_output_folder(out, "--out")
    for p in images:
        if p.is_dir() and p.resolve() == out.resolve():
            raise OutputError(f"--out {out} is also an input folder; the masks would be segmented again on the "
                              "next run: pass another output folder")
    items = _expand(images)
    names = output_names([path for path, _ in items])
    _check_outputs(items, names, out, overwrite)
    if checkpoint is None:
        segmenter = Segmenter.pretrained(compile=compile)
    else:  # a bad checkpoint stops before any output
        segmenter = Segmenter.from_checkpoint(checkpoint, compile=compile)
    if segmenter.synthetic and warn is not None:
        warn(SYNTHETIC_WARNING)
    threshold = segmenter.threshold if threshold is None else threshold
    done, problems = 0, []
    for (path, problem), stem in zip(items, names):
        if problem is not None:
            problems.append(f"{path}: {problem}")
            continue
        try:
            image = _read(path)
        except ReproZooError as err:
            problems.append(str(err))
            continue
        prob = segmenter.probability(image).numpy()
        if done == 0:  # the folder appears with the first result (a batch of bad inputs leaves nothing)
            try:
                out.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                raise OutputError(f"cannot create the output folder {out}: {err.strerror or err}") from None
        mask = prob > threshold
        rgb = image.permute(1, 2, 0).numpy().astype(np.float32)
        tint = np.array([40, 220, 90], dtype=np.float32)
        overlay = np.where(mask[..., None], 0.55 * rgb + 0.45 * tint, 0.35 * rgb)
        _save_png((mask * 255).astype(np.uint8), out / f"{stem}_mask.png")
        _save_png(overlay.round().clip(0, 255).astype(np.uint8), out / f"{stem}_overlay.png")
        done += 1
    return done, problems


VIDEO_ONLY = ("--background", "--mask-video", "--smooth")


def segment_video_file(src: Path, out: Path, checkpoint: Path | None, *, background: str | None = None,
                       mask_video: bool = False, smooth: float = 0.0, overwrite: bool = False,
                       compile: bool = False, warn=None, echo=print) -> None:
    """``reprozoo segment clip.mp4 --out out.mp4``: check the input and the output, load the model,
    stream the video through :func:`reprozoo.sinet.video.segment_video` with a progress bar (frames
    per second), then print what was written and the end-to-end frames per second."""
    from reprozoo.runtime.progress import progress_bar
    from reprozoo.sinet.inference import Segmenter
    from reprozoo.sinet.video import engine_for, parse_background, segment_video
    from reprozoo.sinet.video_io import check_output, probe_video

    if not 0.0 <= smooth < 1.0:
        raise DataError(f"--smooth must be in [0, 1) (0: off; 0.3-0.6 is light), got {smooth}")
    info = probe_video(src)  # bad input: nothing is loaded or written
    check_output(src, out, overwrite)
    bg = parse_background(background)
    seg = Segmenter.pretrained(compile=compile) if checkpoint is None else \
        Segmenter.from_checkpoint(checkpoint, compile=compile)
    if seg.synthetic and warn is not None:
        warn(SYNTHETIC_WARNING)
    engine = engine_for(seg, compile)
    try:
        with progress_bar(info.frames or None, "segment") as bar:
            result = segment_video(src, out, engine, bg, smooth=smooth, mask_video=mask_video, overwrite=overwrite,
                                   on_frame=lambda done, fps: bar.update(description=f"segment {fps:.0f} FPS"))
    finally:
        if hasattr(engine, "close"):
            engine.close()
    total = sum(result.stages.values()) or 1.0
    split = ", ".join(f"{k} {100 * v / total:.0f}%" for k, v in result.stages.items())
    audio = f"audio {info.audio}" if info.audio else "no audio"
    what = "mask" if mask_video else f"background {background or 'blur'}"
    echo(f"segmented {result.frames} frames ({info.width}x{info.height}, {float(info.fps):.4g} fps, {audio}; "
         f"{what}) -> {out}")
    echo(f"end to end: {result.fps:.1f} frames per second ({result.seconds:.2f} s; {split})")


def register(app: typer.Typer) -> None:
    @app.command("segment")
    def segment_cmd(
        images: Annotated[list[Path], typer.Argument(help="image files or folders of images, or one video "
                                                      "(.mp4 .m4v .mov .mkv .webm .avi)")],
        out: Annotated[Path, typer.Option(help="output folder for <name>_mask.png and <name>_overlay.png; "
                                          "for a video: the output video file")],
        checkpoint: Annotated[Path | None, typer.Option(help="SINet checkpoint (*.safetensors from "
                                                        "Segmenter.save or `reprozoo run sinet-portrait`, or a "
                                                        "former sinet.pt); default: the bundled official "
                                                        "EG1800 weights")] = None,
        threshold: Annotated[float | None, typer.Option(help="foreground probability threshold (images; "
                                                        "default: the checkpoint's, 0.5)")] = None,
        compile: Annotated[bool, typer.Option("--compile", help="torch.compile the network: about 2x faster per image "
                                              "on CPU after a 20-50 s compile on the first image (needs a C++ compiler)")] = False,
        background: Annotated[str | None, typer.Option(help="video: blur | color:#RRGGBB | image:PATH "
                                                       "(default: blur)")] = None,
        mask_video: Annotated[bool, typer.Option("--mask-video", help="video: write the person's alpha "
                                                 "(white on black) instead of the composite")] = False,
        smooth: Annotated[float | None, typer.Option(help="video: temporal smoothing in [0, 1), the weight of "
                                                     "the previous frame's probabilities (default 0: off)")] = None,
        overwrite: Annotated[bool, typer.Option("--overwrite", help="replace existing output files (never "
                                                "an input)")] = False,
    ) -> None:
        """Portrait masks with SINet (default: the official EG1800 weights): any image size, mask at the
        input size. Inputs sharing a name get distinct outputs. A video input (one file) is streamed
        to a video with its background replaced, frame rate, size and audio kept. Existing outputs are
        replaced only with --overwrite; an output that would replace an input is refused."""
        from reprozoo.sinet.video_io import VIDEO_SUFFIXES, is_video_path

        if any(is_video_path(p) for p in images):
            if len(images) != 1:
                raise DataError(f"segment one video at a time (got {len(images)} inputs); images and "
                                "videos cannot be mixed")
            if threshold is not None:
                raise DataError("--threshold applies to images; a video gets a soft alpha (see --mask-video)")
            segment_video_file(images[0], out, checkpoint, background=background, mask_video=mask_video,
                               smooth=smooth or 0.0, overwrite=overwrite, compile=compile,
                               warn=lambda m: typer.echo(m, err=True), echo=typer.echo)
            return
        given = [name for name, value in zip(VIDEO_ONLY, (background, mask_video, smooth))
                 if value not in (None, False)]
        if given:
            raise DataError(f"{', '.join(given)}: options that apply to video inputs only "
                            f"({', '.join(VIDEO_SUFFIXES)})")
        done, problems = segment_images(list(images), checkpoint, out, threshold,
                                        warn=lambda m: typer.echo(m, err=True), compile=compile,
                                        overwrite=overwrite)
        typer.echo(f"segmented {done} image(s) -> {out}")
        if problems:
            for p in problems:
                typer.echo(f"  skipped {p}", err=True)
            raise DataError(f"{len(problems)} of {done + len(problems)} input(s) failed (listed above); "
                            "the others were written")

    export_app = next((g.typer_instance for g in app.registered_groups if g.name == "export"), None)
    if export_app is None:
        export_app = typer.Typer(no_args_is_help=True, help="Export trained models (ONNX).")
        app.add_typer(export_app, name="export")

    @export_app.command("sinet")
    def export_sinet_cmd(
        onnx: Annotated[Path, typer.Option(help="output .onnx file")],
        checkpoint: Annotated[Path | None, typer.Option(help="SINet checkpoint (*.safetensors or sinet.pt); default: the bundled "
                                                        "official EG1800 weights")] = None,
        size: Annotated[int, typer.Option(help="input size (default: the checkpoint's)")] = 0,
        batch: Annotated[int, typer.Option(help="batch size fixed in the graph (0: dynamic batch)")] = 1,
        deploy: Annotated[bool, typer.Option(help="deployment graph (BN folded, PReLU rewritten, no shuffles); "
                                             "--no-deploy: the plain graph")] = True,
        ort_optimized: Annotated[Path | None, typer.Option(help="also save ONNX Runtime's optimised graph here "
                                                          "(load it with optimisation off; for this CPU only)")] = None,
        threads: Annotated[int, typer.Option(help="ONNX Runtime threads used for --ort-optimized and the check")] = 2,
        check: Annotated[bool, typer.Option(help="compare ONNX Runtime with PyTorch on a random input")] = True,
        overwrite: Annotated[bool, typer.Option(help="replace existing --onnx / --ort-optimized files")] = False,
    ) -> None:
        """SINet -> ONNX (input: RGB in [0, 1], (B, 3, S, S); output: logits). The default deployment
        graph computes the same function with fewer, fusable operators (see reprozoo.sinet.deploy)."""
        import torch

        from reprozoo.cli_commands import check_new_file
        from reprozoo.sinet.checkpoint import load_segmenter
        from reprozoo.sinet.export import deploy_session, export_deploy_onnx, export_onnx
        from reprozoo.sinet.official import pretrained_checkpoint
        from reprozoo.sinet.preprocess import Normalized

        if onnx.is_dir():
            raise OutputError(f"--onnx {onnx} is a folder; pass a file name such as {onnx / 'sinet.onnx'}")
        if batch < 0:
            raise DataError(f"--batch must be >= 0 (0: dynamic), got {batch}")
        if threads < 1:
            raise DataError(f"--threads must be >= 1, got {threads}")
        model, ckpt = pretrained_checkpoint() if checkpoint is None else load_segmenter(checkpoint)
        check_new_file(onnx, "--onnx", overwrite)
        if ort_optimized is not None:
            check_new_file(ort_optimized, "--ort-optimized", overwrite)
            if ort_optimized.resolve() == onnx.resolve():
                raise DataError("--ort-optimized must differ from --onnx")
        if checkpoint is not None and checkpoint.resolve() in {onnx.resolve(), (ort_optimized or onnx).resolve()}:
            raise DataError(f"--checkpoint {checkpoint} is also an output; pass another --onnx")
        size = size or ckpt["image_size"]
        if size < 32 or size % 32:
            raise DataError(f"--size must be a multiple of 32, got {size}")
        if not deploy and ort_optimized is not None:
            raise DataError("--ort-optimized needs the deployment graph; drop --no-deploy")
        net = Normalized(model, ckpt["mean"], ckpt["std"]).eval()
        shape = f"{batch or 'B'}x3x{size}x{size}"
        if deploy:
            onnx.parent.mkdir(parents=True, exist_ok=True)
            example = torch.rand(batch or 1, 3, size, size)
            _, info = export_deploy_onnx(net, onnx, example, dynamic_batch=batch == 0, threads=threads,
                                         optimized_path=ort_optimized)
            typer.echo(f"wrote {onnx} (deployment graph, input 'image' {shape} RGB in [0,1], output 'logits'; "
                       + ", ".join(f"{k}={v}" for k, v in info.items()) + ")")
            if ort_optimized is not None:
                typer.echo(f"wrote {ort_optimized} (ONNX Runtime's optimised graph for this CPU)")
        else:
            export_onnx(model, onnx, mean=ckpt["mean"], std=ckpt["std"], image_size=size)
            typer.echo(f"wrote {onnx} (input 'image' Bx3x{size}x{size} RGB in [0,1], output 'logits')")
        if check:
            n = batch or 2
            x = torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(0))
            with torch.no_grad():
                ref = net(x).numpy()
            out = deploy_session(onnx, threads).run(None, {"image": x.numpy()})[0]
            typer.echo(f"max |ONNX Runtime - PyTorch| = {float(abs(out - ref).max()):.2e}")
