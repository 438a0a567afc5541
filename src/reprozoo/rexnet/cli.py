"""ReXNet commands: ``reprozoo rexnet-info MODEL`` (schedule, params, MACs) and
``reprozoo rexnet-convert MODEL SRC DST`` (official/timm checkpoint -> a ``reprozoo.checkpoint/1`` file,
the format of :func:`reprozoo.runtime.checkpoint.save_checkpoint`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def _rexnet(model: str, **kwargs):
    """A registered model that must be a ReXNet (one-line ConfigError otherwise)."""
    from reprozoo.errors import ConfigError
    from reprozoo.rexnet.models import ReXNet
    from reprozoo.runtime.registry import create_model

    net = create_model(model, **kwargs)
    if not isinstance(net, ReXNet):
        raise ConfigError(f"'{model}' is not a ReXNet; use a ReXNet such as rexnet_100 or rexnet_lite_130 "
                          "(see `reprozoo list`)")
    return net


def _write_checkpoint(net, dst: Path) -> None:
    """``save_checkpoint`` (the library's format: weights + model name and kwargs); any failure to
    write is one OutputError and leaves nothing behind."""
    from reprozoo.errors import OutputError
    from reprozoo.runtime.checkpoint import save_checkpoint

    try:
        save_checkpoint(net, dst, source="rexnet-convert")
    except Exception as err:  # OSError, or safetensors' own error type for the same I/O failures
        why = getattr(err, "strerror", None) or " ".join(str(err).split())
        raise OutputError(f"cannot write {dst}: {why}") from None


def register(app: typer.Typer) -> None:
    if any(getattr(c, "name", None) == "rexnet-info" for c in app.registered_commands):
        return

    @app.command("rexnet-info")
    def info_cmd(model: Annotated[str, typer.Argument(help="e.g. rexnet_100, rexnet_lite_130")] = "rexnet_100",
                 image_size: Annotated[int, typer.Option(help="input side for the MAC count")] = 224) -> None:
        """Channel schedule, parameter count and MACs of a registered ReXNet."""
        from reprozoo.errors import ConfigError
        from reprozoo.rexnet.schedule import schedule_macs
        from reprozoo.runtime.profile import count_params

        if image_size < 1:
            raise ConfigError(f"--image-size must be a positive number of pixels, got {image_size}")
        net = _rexnet(model)
        s = net.schedule
        typer.echo(f"{model}: stem {s.stem_chs}, blocks {' '.join(map(str, s.out_channels))}, pen {s.pen_chs}")
        typer.echo(f"params {count_params(net):,}  MACs@{image_size} "
                   f"{schedule_macs(s, image_size, num_classes=net.num_classes, lite=net.lite):,}")

    @app.command("rexnet-convert")
    def convert_cmd(model: Annotated[str, typer.Argument(help="registered model the weights belong to")],
                    src: Annotated[Path, typer.Argument(help="official / timm / our checkpoint (.pth, .safetensors)")],
                    dst: Annotated[Path, typer.Argument(help="output .safetensors file")],
                    num_classes: Annotated[int, typer.Option(help="classes of the checkpoint")] = 1000,
                    overwrite: Annotated[bool, typer.Option(help="replace an existing DST file")] = False) -> None:
        """Convert an official / timm checkpoint to a reprozoo checkpoint (strict: refuses missing or
        unexpected keys); the file loads with create_model(MODEL, checkpoint_path=DST)."""
        from reprozoo.cli_commands import check_new_file
        from reprozoo.errors import ConfigError
        from reprozoo.rexnet.checkpoint import load_pretrained

        if dst.suffix != ".safetensors":
            raise ConfigError(f"the output must end in .safetensors, got {dst.name}")
        if src.resolve() == dst.resolve():
            raise ConfigError(f"DST {dst} is the input checkpoint; write the converted weights elsewhere")
        check_new_file(dst, "DST", overwrite)
        if num_classes < 1:
            raise ConfigError(f"--num-classes must be >= 1, got {num_classes}")
        net = load_pretrained(_rexnet(model, num_classes=num_classes), src)
        _write_checkpoint(net, dst)
        typer.echo(f"wrote {dst} ({len(net.state_dict())} tensors; load it with "
                   f"create_model('{model}', checkpoint_path=...))")
