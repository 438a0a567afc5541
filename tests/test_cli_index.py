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
            "'reprozoo' and m.split('.')[1] not in ('cli', 'cli_commands', 'cli_experiments', 'errors', 'runtime'))\n"
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


def test_one_name_imports_only_its_own_package():
    code = ("import sys\nfrom reprozoo.runtime.registry import get_experiment, get_benchmark\n"
            "get_experiment('nara'); get_benchmark('nara')\n"
            "print('PACKAGES', sorted({m.split('.')[1] for m in sys.modules if m.startswith('reprozoo.')}\n"
            "                         - {'data', 'errors', 'runtime'}))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300).stdout
    line = next(s for s in out.splitlines() if s.startswith("PACKAGES"))
    assert line == "PACKAGES ['nara']", line  # no other method package


def test_an_indexed_module_that_fails_to_import_is_one_line(tmp_path, monkeypatch, capsys):
    from reprozoo.cli import main
    from reprozoo.runtime import registry

    (tmp_path / "reprozoo_broken_for_test.py").write_text("raise ImportError('needs the frobnicate package')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(registry_index.EXPERIMENTS, "_broken", {"module": "reprozoo_broken_for_test"})
    monkeypatch.delitem(registry.BROKEN, "reprozoo_broken_for_test", raising=False)
    assert main(["run", "_broken", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == ("error: experiment '_broken' is unavailable: reprozoo_broken_for_test failed to import "
                       "(ImportError: needs the frobnicate package)"), err
    assert not (tmp_path / "o").exists()


def test_a_listed_command_whose_package_fails_to_import_is_one_line(tmp_path):
    # in a fresh process: in this one the package's commands may already be registered by other tests
    script = (
        "import importlib, sys\n"
        "real = importlib.import_module\n"
        "def fake(name, package=None):\n"
        "    if name == 'reprozoo.rainbow.cli':\n"
        "        raise ImportError('needs the frobnicate package')\n"
        "    return real(name, package)\n"
        "importlib.import_module = fake\n"
        "from reprozoo.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    out = tmp_path / "never-written.json"
    done = subprocess.run([sys.executable, "-c", script, "rainbow-split", "--out", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    err = done.stderr.strip().splitlines()
    assert err[-1] == ("error: command 'rainbow-split' is unavailable (reprozoo.rainbow.cli: ImportError: needs "
                       "the frobnicate package)"), err
    assert not out.exists()
