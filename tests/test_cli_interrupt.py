"""Ctrl-C (SIGINT) or SIGTERM in any command, not just `run`: exit 130 with the `interrupted` line
and no traceback (subprocesses, since the exit status is what a shell sees)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

# A shell starts a command with SIGINT at its default and unblocked; a test process may have
# inherited another state (a library that blocked it around a spawn), so the launcher reports what it
# inherited and starts the command as a shell would.
LAUNCH = ("import signal, sys\n"
          "inherited = (signal.getsignal(signal.SIGINT) is signal.default_int_handler,\n"
          "             signal.SIGINT in signal.pthread_sigmask(signal.SIG_BLOCK, []))\n"
          "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
          "signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})\n"
          "from reprozoo.cli import main\n"
          "print('ready', 'default=%s blocked=%s' % inherited, flush=True)\n"
          "sys.exit(main(sys.argv[1:]))\n")


def _interrupt(argv: list[str], sig: int, cwd, after: float = 2.0, wait_for: str = "") -> tuple[int, str]:
    """Start ``reprozoo ARGV``; once it runs (and printed a line starting with ``wait_for``), wait
    ``after`` seconds and send ``sig``. Returns (exit status, stderr)."""
    env = dict(os.environ, REPROZOO_PROGRESS="0", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-c", LAUNCH, *argv], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    ready = proc.stdout.readline().split(maxsplit=1)
    assert ready and ready[0] == "ready", proc.stderr.read()
    while wait_for and not proc.stdout.readline().startswith(wait_for):
        assert proc.poll() is None, proc.stderr.read()
    time.sleep(after)
    assert proc.poll() is None, "the command ended before it could be interrupted"
    proc.send_signal(sig)
    try:
        _, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:  # never leave the command running after the test
        proc.kill()
        _, err = proc.communicate()
        pytest.fail(f"still running 120 s after the signal (SIGINT as inherited: {ready[1].strip()}); "
                    f"stderr:\n{err[-3000:]}")
    return proc.returncode, err


@pytest.fixture()
def corpus(tmp_path):
    from reprozoo.data.textcorpora import procedural_corpus

    c = procedural_corpus(400, 4, words_per_doc=20, seed=0)
    path = tmp_path / "docs.txt"
    path.write_text("\n".join(c.texts) + "\n")
    return path


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_topics_interrupted_exits_130_with_the_message(corpus, tmp_path, sig):
    out = tmp_path / "topics"
    code, err = _interrupt(["topics", str(corpus), "--k", "4", "--out", str(out), "--vq-epochs", "500",
                            "--topic-epochs", "5000"], sig, tmp_path)
    assert code == 130, err
    assert err.strip().splitlines()[-1] == "interrupted" and "Traceback" not in err
    assert not (out / "topics.json").exists()  # nothing half-written


def test_bench_interrupted_exits_130_and_writes_no_result(tmp_path):
    out = tmp_path / "bench"
    code, err = _interrupt(["bench", "nara", "--out", str(out)], signal.SIGINT, tmp_path, after=1.0,
                           wait_for="== nara")  # inside the measurement
    assert code == 130, err
    assert err.strip().splitlines()[-1] == "interrupted" and "Traceback" not in err
    assert not (out / "nara.json").exists()


def test_bench_defaults_to_a_fresh_folder_never_the_tracked_results(tmp_path, monkeypatch, capsys):
    from reprozoo.cli import main
    from reprozoo.runtime import registry

    monkeypatch.chdir(tmp_path)
    (tmp_path / "benchmarks" / "results").mkdir(parents=True)
    monkeypatch.setitem(registry._BENCHMARKS, "_fake", registry.BenchmarkSpec("_fake", "a fake",
                                                                              lambda quick=False: {"rows": []}))
    assert main(["bench", "_fake"]) == 0
    assert main(["bench", "_fake"]) == 0  # a second run in the same second gets its own folder
    written = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("_fake.json"))
    assert len(written) == 2 and all(w.startswith("runs/bench-") for w in written), written
    assert not any((tmp_path / "benchmarks" / "results").iterdir())
    out = tmp_path / "mine"
    assert main(["bench", "_fake", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["bench", "_fake", "--out", str(out)]) == 2
    assert "already exist" in capsys.readouterr().err
    (out / "_fake.json").write_text("{}")
    assert main(["bench", "_fake", "--out", str(out), "--overwrite"]) == 0
    assert json.loads((out / "_fake.json").read_text()) == {"rows": []}


@pytest.mark.parametrize("argv", [[], ["export"]], ids=["reprozoo", "reprozoo export"])
def test_no_arguments_print_the_help_and_no_empty_error_line(argv, tmp_path):
    env = dict(os.environ, COLUMNS="100")
    res = subprocess.run([sys.executable, "-m", "reprozoo", *argv], capture_output=True, text=True, env=env,
                         cwd=tmp_path, timeout=120)
    assert res.returncode == 2  # typer's no_args_is_help status
    assert "Usage:" in res.stdout + res.stderr and "Commands" in res.stdout + res.stderr
    assert not any(line.strip() == "error:" or line.startswith("error: ") for line in res.stderr.splitlines())
