"""The offline results page ``runs/index.html``: a summary (one row per experiment: headline
verdict, the evidence that decided it, runtime, link), then one section per experiment (claim,
every sub-claim, the method-vs-alternatives table, figures at a readable size that enlarge on
click, overrides, resolved config, environment), then the benchmarks. One self-contained file:
figures are embedded as data URIs, no scripts, no network."""

from __future__ import annotations

import base64
import html
import json
import os
from pathlib import Path
from typing import Any

from reprozoo.runtime.report import headline_rows, metrics_rows

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:0 auto;padding:1.5em 2em;max-width:1180px;
 color:#222;line-height:1.45}
h1{margin-bottom:.2em}h2{margin-top:2.2em;border-bottom:2px solid #ddd;padding-bottom:.2em}h3{margin-top:1.4em}
table{border-collapse:collapse;width:100%;margin:.6em 0;font-size:.92em}
td,th{border:1px solid #d5d5d5;padding:5px 8px;vertical-align:top;text-align:left;overflow-wrap:anywhere}th{background:#f3f4f6}
.v{font-weight:600;white-space:nowrap;padding:1px 7px;border-radius:4px}
.held{color:#0f5a23;background:#e3f5e8}.not{color:#8c1111;background:#fbe4e4}.inconclusive{color:#6b5400;background:#fbf3d5}
.claim{font-size:1.05em;background:#f8f9fb;border-left:4px solid #8aa2c8;padding:.5em .9em}
.figs{display:flex;flex-wrap:wrap;gap:14px}.figs figure{margin:0;flex:1 1 520px;max-width:100%}
.figs img{width:100%;border:1px solid #ddd;cursor:zoom-in}.figs figcaption{font-size:.85em;color:#555}
.lightbox{display:none;position:fixed;inset:0;background:rgba(0,0,0,.85);z-index:10;align-items:center;
 justify-content:center}.lightbox:target{display:flex}.lightbox img{max-width:96vw;max-height:94vh;background:#fff}
pre{background:#f6f8fa;padding:.7em;overflow:auto;font-size:.85em;white-space:pre-wrap}small{color:#666}.hl{font-size:.8em;color:#445}
"""


def _cls(verdict: str) -> str:
    return {"held": "held", "not held": "not"}.get(verdict, "inconclusive")


def _verdict(v: str) -> str:
    return f'<span class="v {_cls(v)}">{html.escape(v)}</span>'


def _decider(evidence: str, limit: int = 220) -> str:
    """The part of an evidence line that decided the headline (before the control and other tasks)."""
    parts = evidence.split("; negative control")[0].split(" | ")
    head = " — ".join(parts[:2]) if parts[0].startswith("inconclusive:") and len(parts) > 1 else parts[0]
    return head if len(head) <= limit else head[:limit].rsplit(" ", 1)[0] + " …"


def _anchor(name: str) -> str:
    return "exp-" + "".join(c if c.isalnum() else "-" for c in name)


def _table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys]

    def cell(v: Any) -> str:
        return html.escape(f"{v:.4g}" if isinstance(v, float) else str(v))

    head = "".join(f"<th>{html.escape(k)}</th>" for k in keys)
    body = "".join("<tr>" + "".join(f"<td>{cell(r.get(k, ''))}</td>" for k in keys) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _figures(run: Path, anchor: str) -> str:
    figs = sorted((run / "figures").glob("*.png")) if (run / "figures").is_dir() else []
    if not figs:
        return ""
    parts, boxes = [], []
    for i, p in enumerate(figs):
        uri = "data:image/png;base64," + base64.b64encode(p.read_bytes()).decode()
        fid = f"{anchor}-fig{i}"
        title = html.escape(p.stem.replace("_", " "))
        parts.append(f'<figure><a href="#{fid}"><img alt="{title}" src="{uri}"></a><figcaption>{title}</figcaption>'
                     "</figure>")
        boxes.append(f'<a class="lightbox" id="{fid}" href="#{anchor}"><img alt="{title}" src="{uri}"></a>')
    return "<h3>Figures</h3><div class='figs'>" + "".join(parts) + "</div>" + "".join(boxes)


def _section(name: str, run: Path, data: dict[str, Any], paper: str, runs_dir: Path) -> str:
    a = _anchor(name)
    out = [f'<h2 id="{a}">{html.escape(name)} <small>({html.escape(data["preset"])})</small></h2>']
    if paper:
        out.append(f"<p><b>Paper:</b> {html.escape(paper)}</p>")
    out.append(f'<p class="claim"><b>Claim:</b> {html.escape(data["claim"])}<br><b>Verdict:</b> '
               f'{_verdict(data["verdict"])} &nbsp; {html.escape(data["evidence"])}</p>')
    if data.get("headline"):
        out.append("<h3>Headline test, controls and gates</h3>" + _table(headline_rows(data["headline"])))
    claims = data.get("claims") or []
    if claims:
        rows = "".join(
            f"<tr><td>{html.escape(str(c.get('claim', '')))}"
            f"{' <span class=hl>(headline)</span>' if c.get('headline') else ''}</td>"
            f"<td>{_verdict(str(c.get('verdict', '')))}</td><td>{html.escape(str(c.get('evidence', '')))}</td></tr>"
            for c in claims)
        out.append(f"<h3>Claims</h3><table><tr><th>claim</th><th>verdict</th><th>evidence</th></tr>{rows}</table>")
    out.append("<h3>Method vs alternatives</h3>" + _table(metrics_rows(data["metrics"])))
    out.append(_figures(run, a))
    overrides = data.get("overrides") or []
    out.append(f"<p><b>Seeds:</b> {html.escape(str(data['seeds']))} &nbsp; <b>Overrides:</b> "
               f"{html.escape(' '.join(overrides)) if overrides else 'none (preset as shipped)'} &nbsp; "
               f"<b>Runtime:</b> {data['runtime_s']:.1f} s &nbsp; "
               f'<a href="{html.escape(os.path.relpath(run / "report.md", runs_dir))}">report.md</a></p>')
    config = run / "config.yaml"
    if config.is_file():
        out.append(f"<details><summary>Resolved config</summary><pre>{html.escape(config.read_text())}</pre></details>")
    env = data.get("environment", {})
    out.append(f"<details><summary>Environment</summary><pre>{html.escape(json.dumps(env, indent=1))}</pre></details>")
    return "\n".join(out)


def _benchmarks(bench_dir: Path | None) -> str:
    if bench_dir is None or not bench_dir.is_dir():
        return ""
    parts = []
    for path in sorted(bench_dir.glob("*.json")):
        try:
            result = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        parts.append(f"<h3>{html.escape(path.stem)}</h3>")
        if result.get("goal"):
            met = bool(result.get("met"))
            parts.append(f"<p><b>Goal:</b> {html.escape(str(result['goal']))} <span class='v {'held' if met else 'not'}'>"
                         f"{'met' if met else 'not met'}</span></p>")
        parts.append(_table(result.get("rows", [])))
        ratios = result.get("ratios", {})
        if ratios:
            parts.append(_table([{"ratio": k, "value": v} for k, v in ratios.items()]))
    return ("<h2 id='benchmarks'>Benchmarks</h2><p><small>Ratios are measured against a baseline in the same run.</small></p>"
            + "".join(parts)) if parts else ""


def render_index(runs_dir: Path, latest: dict[str, tuple[Path, dict[str, Any]]], papers: dict[str, str],
                 bench_dir: Path | None) -> str:
    if latest:
        rows = "".join(
            f"<tr><td><a href='#{_anchor(n)}'>{html.escape(n)}</a></td>"
            f"<td>{html.escape(papers.get(n) or d.get('paper', ''))}</td><td>{_verdict(d['verdict'])}</td>"
            f"<td>{html.escape(_decider(d['evidence']))}</td><td>{d['runtime_s']:.0f} s</td></tr>"
            for n, (_, d) in latest.items())
        summary = ("<table><tr><th>experiment</th><th>paper</th><th>headline verdict</th><th>what decided it</th>"
                   f"<th>runtime</th></tr>{rows}</table>")
        sections = "".join(_section(n, r, d, papers.get(n) or d.get("paper", ""), runs_dir)
                           for n, (r, d) in latest.items())
    else:
        summary = (f"<p>No experiment runs found under <code>{html.escape(runs_dir.name)}</code> yet. Run "
                   "<code>reprozoo run all --preset quick</code> (or <code>make demo</code>).</p>")
        sections = ""
    return ("<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width,initial-scale=1'><title>reprozoo results</title>"
            f"<style>{_CSS}</style></head><body><h1>reprozoo: reproduction results</h1>"
            "<p>Each verdict comes from a rule fixed in code before the numbers existed: the method against "
            "the strongest simple alternative over paired seeds, with a negative control that must lose.</p>"
            f"<h2>Summary</h2>{summary}{sections}{_benchmarks(bench_dir)}</body></html>")
