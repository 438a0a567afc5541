"""The ``reprozoo`` command: thin parsing over the library. User errors print one line, exit 2;
Ctrl-C or SIGTERM in any command prints ``interrupted`` and exits 130.

The core commands are in :mod:`reprozoo.cli_experiments`. Method packages may add commands by
defining ``reprozoo/<method>/cli.py`` with ``register(app: typer.Typer)``. Those commands are listed from the static registry index and their
package is imported only when one of them runs (:mod:`reprozoo.cli_commands`), so ``--help``,
``list`` and an unknown name answer without importing torch.
"""

from __future__ import annotations

import signal
import sys
from typing import Annotated

import typer

from reprozoo.cli_commands import LazyGroup
from reprozoo.cli_experiments import bench_cmd, list_cmd, redecide_cmd, report_cmd, results_cmd, run_cmd
from reprozoo.errors import ReproZooError, RunInterrupted

app = typer.Typer(cls=LazyGroup, add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="reprozoo: ten research papers as tested PyTorch software.")


for _name, _fn in (("list", list_cmd), ("run", run_cmd), ("redecide", redecide_cmd), ("report", report_cmd),
                   ("results", results_cmd), ("bench", bench_cmd)):
    app.command(_name)(_fn)


def _register_method_commands(packages: list[str] | None = None) -> None:
    """Register the commands of ``packages`` (default: every method package) on ``app`` now (those the
    registry index lists are otherwise built when the command line names them)."""
    from reprozoo.runtime.registry import import_or_warn, method_packages

    for name in method_packages() if packages is None else packages:
        mod = None if name in _REGISTERED else import_or_warn(f"reprozoo.{name}.cli")
        if mod:
            mod.register(app)
            _REGISTERED.add(name)


_REGISTERED: set[str] = set()  # packages whose commands are on `app` itself (not built on demand)


def _end_distributed() -> None:
    """Under `accelerate launch`/`torchrun`, tear the process group down before exit: a gloo/NCCL group
    left to interpreter shutdown can abort a rank."""
    dist = sys.modules.get("torch.distributed")  # never imported here: --help stays torch-free
    try:
        active = dist is not None and dist.is_available() and dist.is_initialized()
    except AttributeError:  # a torch import cut short by Ctrl-C
        return
    if active:
        dist.barrier()
        dist.destroy_process_group()


def _version(value: bool) -> None:
    if value:
        from reprozoo import __version__

        typer.echo(f"reprozoo {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                help="print the version and exit")] = False,
          verbose: Annotated[int, typer.Option("--verbose", "-v", count=True,
                                               help="log the library's progress (-v) and details (-vv)")] = 0,
          ) -> None:
    """reprozoo: ten research papers as tested PyTorch software."""
    _configure_logging(verbose)


def _configure_logging(verbose: int) -> None:
    """The library logs through ``logging.getLogger(__name__)``; the command line shows its warnings,
    and its INFO / DEBUG records with -v / -vv, on stderr."""
    import logging
    import sys

    logger = logging.getLogger("reprozoo")
    ours = [h for h in logger.handlers if getattr(h, "_reprozoo_cli", False)]
    if ours:
        ours[0].stream = sys.stderr  # this call's stderr (the earlier one may be closed: no flush)
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        handler._reprozoo_cli = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbose >= 2 else logging.INFO if verbose == 1 else logging.WARNING)


def _one_line(message: str) -> str:
    """Error messages that quote a library's multi-line text still print on one line (and without
    torch's paragraph about ``weights_only``, which a user of the command line cannot act on)."""
    import re

    message = " ".join(message.split())
    key = "Weights only load failed"
    at = message.find(key)
    if at < 0 or "weights_only" not in message[at:]:
        return message
    rest = message[at + len(key):]
    detail = re.search(r"WeightsUnpickler error: (.*?)(?: Check the documentation|\.\.\.|$)", rest)
    ends = [m.end() for m in re.finditer(r"torch\.load\.html\.?|trusted source\.|\.\.\.", rest)]
    tail = rest[max(ends):] if ends else re.search(r"\)*$", rest).group()
    return message[:at] + key + (f" ({detail.group(1).strip()})" if detail else "") + tail


def _sigterm_as_interrupt(signum, frame):  # SIGTERM ends a run like Ctrl-C: keep trials, exit 130
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    from reprozoo.runtime.registry import unindexed_packages

    _register_method_commands(unindexed_packages())
    previous = signal.getsignal(signal.SIGTERM)
    try:
        signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    except ValueError:  # not the main thread
        previous = None
    try:
        rc = app(args=argv, standalone_mode=False, prog_name="reprozoo")
        _end_distributed()
        if rc == 130:  # typer turns a KeyboardInterrupt inside any command into Exit(130)
            typer.echo("interrupted", err=True)
        if isinstance(rc, int) and rc:  # click returns (not raises) an Exit's code without standalone mode
            return rc
    except ReproZooError as err:
        typer.echo(f"error: {_one_line(str(err))}", err=True)
        return 2
    except RunInterrupted as err:
        typer.echo(f"interrupted; resume with: {err}", err=True)
        return 130
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        return 130
    except ImportError as err:  # an optional package missing where no require() caught it: name its extra
        from reprozoo.runtime.extras import explain

        missing = explain(err)
        if missing is None:
            raise
        typer.echo(f"error: {missing}", err=True)
        return 2
    except OSError as err:  # a file problem in any command: one line naming the path
        where = f": {err.filename}" if getattr(err, "filename", None) else ""
        typer.echo(f"error: {_one_line(str(err.strerror or err))}{where}", err=True)
        return 2
    except Exception as err:
        name = type(err).__name__
        if name == "Abort":  # click turns Ctrl-C outside a run into Abort
            typer.echo("interrupted", err=True)
            return 130
        if name == "Exit":
            return int(getattr(err, "exit_code", 0) or 0)
        if name == "NoArgsIsHelpError":  # `reprozoo`, `reprozoo export`: help (rich has printed it), exit 2
            if err.format_message().strip():
                typer.echo(err.format_message())
            return 2
        # click's (or typer's vendored click's) usage errors: bad option, missing argument
        if hasattr(err, "format_message") and hasattr(err, "exit_code"):
            typer.echo(f"error: {_one_line(err.format_message())}", err=True)
            return 2
        raise
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return 0


if __name__ == "__main__":
    sys.exit(main())
