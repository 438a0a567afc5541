"""Every `reprozoo ...` line in a shell block of the README and the docs parses with the real command
line: the command exists, its options exist and take the values given, a `run` names a registered
experiment and one of its presets, and its `--set` overrides and `--seeds` are valid for that preset
(the checks `run` makes before it writes anything). The commands are not executed: most of them train
for minutes; the python blocks are executed by ``test_doc_examples.py``."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest
import typer

from reprozoo.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
PAGES = ["README.md", *sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").glob("*.md")),
         *sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "docs" / "experiments").glob("*.md"))]
FENCE = re.compile(r"^```(bash|sh|shell|console)\n(.*?)^```", re.S | re.M)


def _commands(page: str) -> list[list[str]]:
    """The argv after `reprozoo` of every command line in the page's shell blocks (continuation lines
    joined, comments dropped, optional ``[--flag]`` written as ``--flag``)."""
    out = []
    for _, body in FENCE.findall((ROOT / page).read_text()):
        for line in body.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if "reprozoo" not in words or (words[0] not in ("reprozoo", "accelerate")):
                continue
            argv = [w[1:-1] if w.startswith("[") and w.endswith("]") else w
                    for w in words[words.index("reprozoo") + 1:] if w != "..."]  # a synopsis's "..."
            if "|" in argv:  # a synopsis's alternatives: `results --record RUN | --write-docs`
                cut = argv.index("|")
                out += [argv[:cut], argv[:1] + argv[cut + 1:]]
            else:
                out.append(argv)
    return out


CASES = [pytest.param(page, argv, id=f"{page}:{' '.join(argv)[:60]}") for page in PAGES for argv in _commands(page)]


def test_the_docs_show_commands():
    assert len(CASES) >= 40 and {"README.md", "docs/cli.md"} <= {c.values[0] for c in CASES}


def _rest(ctx: click.Context) -> list[str]:
    """What a group left for its subcommand (click 8.2 keeps the command name in ``_protected_args``)."""
    return [*(getattr(ctx, "protected_args", None) or getattr(ctx, "_protected_args", None) or []), *ctx.args]


def _parse(argv: list[str]) -> tuple[str, dict]:
    """(command name, parsed parameters) of ``reprozoo ARGV``; click raises on an unknown command or
    option, a missing argument or a value of the wrong type."""
    from reprozoo.cli import app

    group = typer.main.get_command(app)
    with group.make_context("reprozoo", list(argv), resilient_parsing=False) as ctx:
        name, cmd, rest = group.resolve_command(ctx, _rest(ctx))
        assert cmd is not None, f"no command {name}"
        if isinstance(cmd, click.Group):  # e.g. `export onnx`
            sub = cmd.make_context(name, rest, parent=ctx)
            name2, cmd, rest = cmd.resolve_command(sub, _rest(sub))
            name = f"{name} {name2}"
        with cmd.make_context(name, rest, parent=ctx) as inner:
            return name, dict(inner.params)


@pytest.mark.parametrize(("page", "argv"), CASES)
def test_command_parses(page, argv):
    try:
        name, params = _parse(argv)
    except (click.exceptions.Exit, typer.Exit):  # --help / --version
        return
    except click.ClickException as err:
        pytest.fail(f"{page}: `reprozoo {' '.join(argv)}`: {err.format_message()}")
    if name == "run" and params.get("name") not in ("NAME", "all"):
        from reprozoo.runtime.registry import get_experiment
        from reprozoo.runtime.runner import resolve_config

        spec = get_experiment(params["name"])
        preset = params.get("preset") or "quick"
        assert preset in spec.config_cls.PRESETS, f"{page}: {params['name']} has no preset {preset}"
        seeds = params.get("seeds")
        if isinstance(seeds, str):
            seeds = [int(s) for s in seeds.split(",")]
        overrides = list(params.get("set_") or [])
        if any(o.startswith("data_root=") for o in overrides):  # a user's dataset: check it is the needed key
            overrides = [o for o in overrides if not o.startswith("data_root=")]
            with pytest.raises(ConfigError, match="data_root"):
                resolve_config(spec, preset, seeds, overrides)
            return
        resolve_config(spec, preset, seeds, overrides)
    if name == "bench" and params.get("name") not in (None, "all", "NAME"):
        from reprozoo.runtime.registry import list_benchmarks

        assert params["name"] in {b.name for b in list_benchmarks()}, f"{page}: no benchmark {params['name']}"
