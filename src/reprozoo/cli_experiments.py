"""The core commands of ``reprozoo``: ``list``, ``run``, ``report``, ``results`` and ``bench``
(registered on the app in :mod:`reprozoo.cli`). Each parses its options, checks them before any
work, and calls the library.
"""

from __future__ import annotations

import inspect
import json
import os
from pathlib import Path
from typing import Annotated

import typer

from reprozoo.errors import ConfigError, OutputExistsError, ReproZooError, RunInterrupted


class ExperimentsFailed(ReproZooError):
    """Some experiments of `run all` raised; the others ran and the index was built."""


def _parse_seeds(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        return [int(s) for s in text.replace(" ", "").split(",") if s != ""]
    except ValueError:
        raise ConfigError(f"--seeds expects comma-separated integers like 0,1,2, got '{text}'") from None


def list_cmd() -> None:
    """List experiments (paper, claim, presets), models and benchmarks."""
    from reprozoo.runtime.registry import experiment_infos, index_names

    exps = experiment_infos()
    typer.echo("experiments:" if exps else "experiments: (none registered yet)")
    for e in exps:
        typer.echo(f"  {e['name']}  [{', '.join(e['presets'])}]\n    paper: {e['paper']}\n    claim: {e['claim']}")
    models = index_names("model")
    typer.echo(f"models ({len(models)}): " + (", ".join(models) if models else "(none)"))
    benches = index_names("benchmark")
    typer.echo("benchmarks: " + (", ".join(benches) if benches else "(none)"))


def run_cmd(
    name: Annotated[str, typer.Argument(help="experiment name, or 'all'")],
    preset: Annotated[str, typer.Option(help="smoke | quick | full | paper (per experiment: `reprozoo list`)")] = "quick",
    seeds: Annotated[str | None, typer.Option(help="comma-separated seeds, e.g. 0,1,2")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="config override key=value")] = None,
    out: Annotated[Path | None, typer.Option(help="output folder (for 'all': a root folder)")] = None,
    resume: Annotated[bool, typer.Option(help="continue an interrupted run in --out")] = False,
    overwrite: Annotated[bool, typer.Option(help="replace a run in --out (only the files it wrote)")] = False,
    executor: Annotated[str | None, typer.Option(help="how trials run: serial | local | ray")] = None,
    workers: Annotated[int | None, typer.Option(help="local worker processes (0 = as many as fit)")] = None,
) -> None:
    """Run an experiment (or all of them) and write metrics.json, report.md and figures."""
    import time

    from reprozoo.runtime.registry import get_experiment, list_experiments

    for spec in list_experiments() if name == "all" else [get_experiment(name)]:  # before the runner is imported
        if preset not in spec.presets:
            raise ConfigError(f"unknown preset '{preset}' for {spec.name}; choose one of: {', '.join(spec.presets)}")
    from reprozoo.runtime.report import build_index
    from reprozoo.runtime.runner import resolve_config, run_experiment

    seed_list = _parse_seeds(seeds)
    overrides = list(set_ or [])
    if executor is not None:
        overrides.append(f"executor.kind={executor}")
    if workers is not None:
        overrides.append(f"executor.workers={workers}")
    if resume and out is None:
        raise ConfigError("--resume needs --out pointing at the run to continue")
    if name == "all":
        specs = list_experiments()
        root = out or Path("runs")
        for spec in specs:  # check every config before running anything
            resolve_config(spec, preset, seed_list, overrides)
        if not specs:
            typer.echo("no experiments are registered yet; nothing to run")
        failed = []
        start = time.perf_counter()
        for i, spec in enumerate(specs, 1):
            typer.echo(f"== [{i}/{len(specs)}] {spec.name} ({preset}), {_clock(time.perf_counter() - start)} elapsed")
            try:
                out_dir, data = run_experiment(spec.name, preset, seeds=seed_list, overrides=overrides,
                                               out_dir=(root / spec.name) if out else None,
                                               runs_root=root, resume=resume, overwrite=overwrite or not out)
            except RunInterrupted:
                raise
            except Exception as err:  # keep going: one broken experiment should not hide the others
                failed.append(spec.name)
                typer.echo(f"   FAILED: {type(err).__name__}: {err}", err=True)
                continue
            typer.echo(f"   {data['verdict']}: {data['evidence']}  ({data['runtime_s']:.0f} s, {out_dir})")
        typer.echo(f"all {len(specs)} experiments done in {_clock(time.perf_counter() - start)}")
        index = build_index(root, {s.name: s.paper for s in specs})
        typer.echo(f"index: {index}")
        if failed:
            raise ExperimentsFailed(f"{len(failed)} experiment(s) failed: {', '.join(failed)} (see messages above)")
        return
    out_dir, data = run_experiment(name, preset, seeds=seed_list, overrides=overrides, out_dir=out,
                                   resume=resume, overwrite=overwrite)
    typer.echo(f"{name} ({preset}): {data['verdict']}\n  claim: {data['claim']}\n  evidence: {data['evidence']}")
    typer.echo(f"  runtime {data['runtime_s']:.1f} s; results in {out_dir}")


def redecide_cmd(
    run: Annotated[Path, typer.Argument(help="a finished run folder")],
    out: Annotated[Path, typer.Option(help="a new folder for the run decided again")],
) -> None:
    """Decide a finished run again from its stored trials under the current rule (no trial runs again)."""
    from reprozoo.runtime.redecide import redecide_run

    out_dir, data = redecide_run(run, out)
    typer.echo(f"{data['experiment']} ({data['preset']}) decided again: {data['verdict']}\n"
               f"  evidence: {data['evidence']}\n  results in {out_dir}")


def report_cmd(runs_dir: Annotated[Path, typer.Argument(help="folder of runs")] = Path("runs")) -> None:
    """Build RUNS_DIR/index.html from every run's metrics.json (latest run per experiment)."""
    from reprozoo.runtime.registry import experiment_infos
    from reprozoo.runtime.report import build_index, latest_runs

    if not runs_dir.is_dir():
        raise ConfigError(f"{runs_dir} is not a folder of runs" + (" (it is a file)" if runs_dir.exists() else ""))
    papers = {e["name"]: e["paper"] for e in experiment_infos()}
    skipped: list[str] = []
    path = build_index(runs_dir, papers, skipped=skipped)
    for item in skipped:
        typer.echo(f"warning: skipped {item}", err=True)
    typer.echo(f"{len(latest_runs(runs_dir))} experiment(s) -> {path}")


def results_cmd(
    record: Annotated[list[Path] | None, typer.Option(help="run folder to make the run of record (repeatable)")] = None,
    write_docs: Annotated[bool, typer.Option("--write-docs", help="regenerate the results text of README.md "
                                             "and docs/experiments/<package>.md from results/")] = False,
    check: Annotated[bool, typer.Option("--check", help="exit 1 when README/docs disagree with results/")] = False,
    label: Annotated[str | None, typer.Option(help="with --record: keep the run as an earlier run under this "
                                              "label (results/<experiment>/history/)")] = None,
    replication: Annotated[bool, typer.Option("--replication", help="with --record: keep the run as a repeat of "
                                              "the run of record on disjoint seeds (results/<experiment>/"
                                              "replications/)")] = False,
    results_dir: Annotated[Path, typer.Option("--results", help="folder of runs of record")] = Path("results"),
    root: Annotated[Path, typer.Option(help="repository root holding README.md and docs/")] = Path("."),
) -> None:
    """Runs of record (results/<experiment>/<preset>.json) and the README/docs text made from them."""
    from reprozoo.runtime import records as R
    from reprozoo.runtime.registry import experiment_infos

    for run in record or []:
        typer.echo(f"recorded {run} -> {R.record_run(run, results_dir, label, replication)}")
    data, history = R.load_records(results_dir), R.load_history(results_dir)
    reps = R.load_replications(results_dir)
    packages = {e["name"]: e["package"] for e in experiment_infos()}
    if write_docs:
        changed = R.write_docs(root, data, packages, history, reps)
        typer.echo(f"{len(changed)} file(s) regenerated" + (": " + ", ".join(map(str, changed)) if changed else ""))
    if check:
        stale = R.stale_docs(root, data, packages, history, reps)
        if stale:
            typer.echo("out of date with results/: " + ", ".join(map(str, stale))
                       + " (run `reprozoo results --write-docs`)", err=True)
            raise typer.Exit(1)
        typer.echo("README and docs agree with results/")
    if not (record or write_docs or check):
        typer.echo(R.results_table(data, replications=reps))


def bench_cmd(
    name: Annotated[str, typer.Argument(help="benchmark name or 'all'")] = "all",
    quick: Annotated[bool, typer.Option(help="fewer repeats")] = False,
    out: Annotated[Path | None, typer.Option(help="folder for <name>.json results (default: a new "
                                             "runs/bench-<time>; the results of record: benchmarks/results)")] = None,
    option: Annotated[list[str] | None, typer.Option("--option", help="benchmark keyword key=value")] = None,
    overwrite: Annotated[bool, typer.Option(help="replace <name>.json files already in --out")] = False,
) -> None:
    """Speed/memory comparisons, printed as ratios against a baseline measured in the same run."""
    from reprozoo.runtime.registry import get_benchmark, list_benchmarks

    specs = list_benchmarks() if name == "all" else [get_benchmark(name)]
    from reprozoo.runtime.report import atomic_write_text
    options = _parse_options(option or [])
    out = out or _fresh_folder(Path("runs"), "bench")
    _check_writable_folder(out, "--out")
    for spec in specs:  # check options before measuring anything
        try:
            inspect.signature(spec.run).bind(quick=quick, **options)
        except TypeError:
            params = [p for p in inspect.signature(spec.run).parameters if p != "quick"]
            raise ConfigError(f"benchmark '{spec.name}' takes options {params}, got {sorted(options)}") from None
    taken = [str(out / f"{s.name}.json") for s in specs if (out / f"{s.name}.json").exists()]
    if taken and not overwrite:
        raise OutputExistsError(f"{', '.join(taken)} already exist(s); pass --overwrite to replace, or another --out")
    if not specs:
        typer.echo("no benchmarks are registered yet")
    for spec in specs:
        typer.echo(f"== {spec.name}: {spec.description}")
        result = spec.run(quick=quick, **options)
        if result.get("peak_flops"):  # the machine's limit, measured in the same run
            typer.echo(f"   limit: float32 matmul peak {result['peak_flops'] / 1e9:.1f} GFLOP/s"
                       + (f" on {int(result['threads'])} thread(s)" if result.get("threads") else "")
                       + "; limit_fraction = achieved FLOP/s / peak (near 1: compute-bound; a few %: overhead-bound)")
        for row in result.get("rows", []):
            typer.echo("   " + "  ".join(f"{k}={_fmt(v)}" for k, v in row.items()))
        for key, value in result.get("ratios", {}).items():
            typer.echo(f"   ratio {key}: {_fmt(value)}")
        if "goal" in result:
            typer.echo(f"   goal: {result['goal']} -> {'met' if result.get('met') else 'NOT met'}")
        atomic_write_text(out / f"{spec.name}.json", json.dumps(result, indent=2, default=str) + "\n")


def _fresh_folder(root: Path, prefix: str) -> Path:
    """``root/<prefix>-<YYYYmmdd-HHMMSS>``, with ``-2``, ``-3``, ... while the name is taken."""
    import time

    base = root / f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}"
    path, k = base, 2
    while path.exists() or path.is_symlink():
        path, k = base.with_name(f"{base.name}-{k}"), k + 1
    return path


def _clock(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    return f"{m}m{s:02d}s"


def _parse_options(items: list[str]) -> dict[str, object]:
    import yaml

    options: dict[str, object] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--option '{item}' must look like key=value")
        key, value = item.split("=", 1)
        if not key.strip():
            raise ConfigError(f"--option '{item}' has no key; it must look like key=value")
        try:
            options[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise ConfigError(f"--option {key.strip()}: cannot read the value '{value}' (a number, true/false, "
                              "a string or a [list])") from None
    return options


def _fmt(v: object) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _check_writable_folder(path: Path, what: str) -> None:
    """Before any work: ``path`` is (or can become) a folder we can write into."""
    from reprozoo.cli_commands import check_output_folder
    from reprozoo.errors import OutputError

    check_output_folder(path, what)
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    if not p.is_dir():
        raise OutputError(f"{what} {path}: {p} is a file, not a folder")
    if not os.access(p, os.W_OK):
        raise OutputError(f"{what} {path}: {p} is not writable")
