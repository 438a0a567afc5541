"""The static registry index equals what importing every method package registers, and the CLI's
cheap paths (help, list, unknown names) never import a method package or torch."""

from __future__ import annotations

import subprocess
import sys

from reprozoo.runtime import registry_index


def test_index_equals_what_the_packages_register():
    from reprozoo.cli_commands import scan_commands
    from reprozoo.runtime.registry import scan

    live = {**scan(), "COMMANDS": scan_commands()}
    stored = {k: getattr(registry_index, k) for k in live}
    for key in live:
        assert stored[key] == live[key], (f"registry_index.{key} is out of date: run "
                                          "`python -m reprozoo.runtime.registry_index`")


CHEAP = [["--help"], ["list"], ["run", "nosuch"], ["bench", "nosuch"], ["report", "--help"], []]


def test_cheap_commands_import_no_method_package_and_no_torch():
    code = ("import sys\nfrom reprozoo.cli import main\n"
            f"for argv in {CHEAP!r}:\n"
            "    main(argv)\n"
            "bad = sorted(m for m in sys.modules if m == 'torch' or m.split('.')[1:2] and m.split('.')[0] == "
            "'reprozoo' and m.split('.')[1] not in ('cli', 'cli_commands', 'errors', 'runtime'))\n"
            "print('IMPORTED', bad)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120).stdout
    line = next(s for s in out.splitlines() if s.startswith("IMPORTED"))
    assert line == "IMPORTED []", line


def test_unknown_names_list_the_indexed_ones_without_importing(capsys):
    from reprozoo.cli import main

    assert main(["run", "nosuch"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: unknown experiment 'nosuch'")
    assert all(name in err[0] for name in registry_index.EXPERIMENTS)
    assert main(["bench", "nosuch", "--out", "/nonexistent-never-written"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and all(name in err[0] for name in registry_index.BENCHMARKS)


def test_list_prints_every_indexed_name(capsys):
    from reprozoo.cli import main

    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name, info in registry_index.EXPERIMENTS.items():
        assert f"  {name}  [{', '.join(info['presets'])}]" in out and info["claim"] in out
    assert all(m in out for m in registry_index.MODELS) and all(b in out for b in registry_index.BENCHMARKS)


def test_a_package_command_is_built_when_named(capsys):
    from reprozoo.cli import main

    assert main(["rexnet-info", "rexnet_100"]) == 0
    assert "params 4,796,873" in capsys.readouterr().out
