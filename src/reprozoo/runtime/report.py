"""Run outputs: ``metrics.json`` (validated, atomic), ``config.yaml``, ``report.md``, figures,
and the offline ``index.html`` over a folder of runs."""

from __future__ import annotations

import json
import math
import os
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from reprozoo.runtime.figures import save_figure  # noqa: F401  (re-exported)
from reprozoo.runtime.verdict import VERDICTS

REQUIRED_KEYS = ("experiment", "preset", "seeds", "claim", "verdict", "evidence", "metrics",
                 "runtime_s", "environment")


@dataclass
class ExperimentResult:
    """What an experiment's ``run`` returns; the runner adds the bookkeeping fields.

    ``metrics`` keys are ``method/<name>``, ``baseline/<name>`` (or any ``group/name``) mapped to
    floats. ``claims`` optionally lists sub-claims as ``{"claim", "verdict", "evidence"}`` dicts.
    ``table`` is an optional list of row dicts rendered in report.md.
    """

    verdict: str
    evidence: str
    metrics: dict[str, float]
    claim: str | None = None
    claims: list[dict[str, str]] = field(default_factory=list)
    table: list[dict[str, Any]] = field(default_factory=list)
    figures: list[str] = field(default_factory=list)  # paths relative to the run folder
    notes: str = ""
    headline: Any = None  # a verdict.Headline: its test, interval, plan (SESOI, power, MDE) and gates

    @classmethod
    def from_headline(cls, head: Any, metrics: dict[str, float], **kwargs: Any) -> ExperimentResult:
        """The result whose verdict and evidence are those of ``head`` (a :class:`verdict.Headline`)."""
        return cls(head.verdict, head.evidence, metrics, headline=head, **kwargs)


def environment() -> dict[str, Any]:
    from reprozoo import __version__

    device = "cpu"
    if torch.cuda.is_available():
        device = f"cuda ({torch.cuda.get_device_name(0)})"
    return {
        "reprozoo": __version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": device,
        "threads": torch.get_num_threads(),
    }


def validate_metrics(data: dict[str, Any]) -> None:
    missing = [k for k in REQUIRED_KEYS if k not in data]
    if missing:
        raise ValueError(f"metrics.json is missing keys: {missing}")
    if data["verdict"] not in VERDICTS:
        raise ValueError(f"verdict must be one of {VERDICTS}, got {data['verdict']!r}")
    if not isinstance(data["metrics"], dict) or not data["metrics"]:
        raise ValueError("metrics must be a non-empty mapping of name -> number")
    for key, value in data["metrics"].items():
        if "/" not in key:
            raise ValueError(f"metric key {key!r} must look like 'method/<name>' or 'baseline/<name>'")
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise ValueError(f"metric {key!r} must be a number, got {value!r}")
    if not isinstance(data["seeds"], list) or not all(isinstance(s, int) for s in data["seeds"]):
        raise ValueError("seeds must be a list of integers")
    for key in ("claim", "evidence", "experiment", "preset"):
        if not isinstance(data[key], str) or not data[key]:
            raise ValueError(f"{key} must be a non-empty string")
    head = data.get("headline")
    if head is not None and head.get("verdict") != data["verdict"]:
        raise ValueError(f"the headline test says {head.get('verdict')!r} but the verdict is {data['verdict']!r}")


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None if math.isnan(obj) else (1e308 if obj > 0 else -1e308)
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    return obj


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename: readers see the old file
    or the new one, never half of one. A folder at ``path`` is an :class:`OutputError`."""
    from reprozoo.errors import OutputError

    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{path} is a folder; give a file path")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise OutputError(f"cannot write {path}: a parent of it is a file") from None
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_metrics(out_dir: str | Path, data: dict[str, Any]) -> Path:
    """Validate against the DESIGN.md schema, then write atomically."""
    data = dict(data)
    data["metrics"] = {k: float(v) for k, v in data["metrics"].items()}
    validate_metrics(data)
    path = Path(out_dir) / "metrics.json"
    atomic_write_text(path, json.dumps(_json_safe(data), indent=2, allow_nan=False) + "\n")
    return path


def read_metrics(path: str | Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


def md_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    keys: list[str] = []
    for row in rows:
        keys += [k for k in row if k not in keys]

    def fmt(v: Any) -> str:  # a "|" inside a cell (evidence lines use them) would split the row
        return (f"{v:.4g}" if isinstance(v, float) else str(v)).replace("|", "\\|")

    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(fmt(r.get(k, "")) for k in keys) + " |" for r in rows]
    return "\n".join(lines)


def metrics_rows(metrics: dict[str, float]) -> list[dict[str, Any]]:
    """``{"method/acc": .9, "baseline/acc": .8}`` -> rows ``name | method | baseline``."""
    groups: list[str] = []
    names: dict[str, dict[str, float]] = {}
    for key, value in metrics.items():
        group, name = key.split("/", 1)
        if group not in groups:
            groups.append(group)
        names.setdefault(name, {})[group] = value
    return [{"metric": n, **{g: vals.get(g, "") for g in groups}} for n, vals in names.items()]


def write_report(out_dir: str | Path, data: dict[str, Any], result: ExperimentResult | None = None,
                 paper: str = "") -> Path:
    out = Path(out_dir)
    parts = [f"# {data['experiment']} ({data['preset']})", ""]
    if paper:
        parts += [f"**Paper:** {paper}", ""]
    parts += [f"**Claim:** {data['claim']}", "", f"**Verdict:** {data['verdict']}", "",
              f"**Evidence:** {data['evidence']}", ""]
    head = data.get("headline")
    if head:
        parts += ["## Headline test", "", md_table(headline_rows(head)), ""]
    if result is not None and result.claims:
        rows = [{k: v for k, v in c.items() if k != "test"} for c in result.claims]
        parts += ["## Sub-claims", "", md_table(rows), ""]
    parts += ["## Metrics", "", md_table(metrics_rows(data["metrics"])), ""]
    if result is not None and result.table:
        parts += ["## Details", "", md_table(result.table), ""]
    if result is not None and result.notes:
        parts += ["## Notes", "", result.notes, ""]
    figures = sorted((out / "figures").glob("*.png")) if (out / "figures").is_dir() else []
    if figures:
        parts += ["## Figures", ""] + [f"![{f.stem}](figures/{f.name})" for f in figures] + [""]
    env = data["environment"]
    parts += [f"Seeds {data['seeds']}, runtime {data['runtime_s']:.1f} s, "
              f"torch {env.get('torch')}, device {env.get('device')}, threads {env.get('threads')}."]
    path = out / "report.md"
    atomic_write_text(path, "\n".join(parts) + "\n")
    return path


def fmt_interval(rec: dict[str, Any]) -> str:
    lo, hi = rec.get("interval", [None, None])
    if lo is None or hi is None:
        return ""
    return f"[{lo:+.4g}, {hi:+.4g}]"


def headline_rows(head: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows for a headline's test, its gates and its plan (used by report.md and the results page)."""
    t = head["test"]
    rows = [{"role": "headline test", "verdict": t["verdict"], "estimate": t.get("estimate"),
             "90% CI": fmt_interval(t), "margin": t.get("margin"), "n": t.get("n"),
             "MDE (80%)": t.get("mde", "")}]
    for role in ("negative_control", "positive_control", "mechanism", "calibration"):
        for g in head.get(role, []):
            rows.append({"role": role.replace("_", " "), "verdict": g["verdict"], "estimate": g.get("estimate"),
                         "90% CI": fmt_interval(g) if g.get("kind") != "threshold" else "",
                         "margin": g.get("margin"), "n": g.get("n"), "MDE (80%)": g.get("mde", ""),
                         "what": g.get("evidence", "")})
    plan = head.get("plan")
    if plan:
        rows.append({"role": "plan", "verdict": "", "estimate": plan["sesoi"], "90% CI": "",
                     "margin": plan["margin"], "n": plan["planned_n"], "MDE (80%)": "",
                     "what": f"SESOI {plan['sesoi']:g} ({plan['sesoi_source']}); pilot SD {plan['pilot_sd']:g} "
                             f"({plan['pilot_source']}); {plan['planned_n']} seeds for "
                             f"{plan['planned_power']:.0%} power{_null_power_text(plan)}{_assurance_text(plan)}; power at this run's n "
                             f"{plan.get('power_at_run_n', float('nan')):.0%}"})
    if head.get("reasons"):
        rows.append({"role": "why inconclusive", "verdict": "", "what": "; ".join(head["reasons"])})
    return rows


def _null_power_text(plan: dict) -> str:
    if not plan.get("null_power"):
        return ""
    at_n = plan.get("null_power_at_run_n")
    tail = f", {at_n:.0%} at this run's n" if at_n is not None else ""
    return f" at the SESOI and for 'not held' at no true gain{tail}"


def _assurance_text(plan: dict) -> str:
    q = plan.get("mde_assurance")
    if q is None:
        return ""
    pct = f"{q:.0%}"
    article = "an" if pct.startswith(("8", "11", "18")) else "a"
    return f" and {article} {pct} chance that the run's MDE <= SESOI"


def find_runs(runs_dir: str | Path) -> list[Path]:
    """Every folder under ``runs_dir`` that holds a metrics.json."""
    return sorted(p.parent for p in Path(runs_dir).rglob("metrics.json"))


def latest_runs(runs_dir: str | Path, skipped: list[str] | None = None) -> dict[str, tuple[Path, dict[str, Any]]]:
    """The most recent run of each experiment (by file modification time). Runs whose
    metrics.json cannot be read are listed in ``skipped`` (path and reason) when given."""
    latest: dict[str, tuple[Path, dict[str, Any], float]] = {}
    for run in find_runs(runs_dir):
        try:
            data = read_metrics(run / "metrics.json")
            validate_metrics(data)
        except (ValueError, OSError) as err:
            if skipped is not None:
                skipped.append(f"{run / 'metrics.json'}: {err}")
            continue
        mtime = (run / "metrics.json").stat().st_mtime
        name = data["experiment"]
        if name not in latest or mtime > latest[name][2]:
            latest[name] = (run, data, mtime)
    return {k: (v[0], v[1]) for k, v in sorted(latest.items())}


def build_index(runs_dir: str | Path, papers: dict[str, str] | None = None, *,
                bench_dir: str | Path | None = "benchmarks/results", skipped: list[str] | None = None) -> Path:
    """Write ``<runs_dir>/index.html`` (see :mod:`reprozoo.runtime.index_page`)."""
    from reprozoo.runtime.index_page import render_index

    runs_dir = Path(runs_dir)
    runs_dir.mkdir(parents=True, exist_ok=True)
    page = render_index(runs_dir, latest_runs(runs_dir, skipped), papers or {},
                        Path(bench_dir) if bench_dir else None)
    path = runs_dir / "index.html"
    atomic_write_text(path, page)
    return path
