"""report.html: the full report of one run, self-contained (charts as inline SVG, plots inlined),
so one link works without any other request, and readable on a phone.

Everything in it is escaped with ``html.escape``: user text (the model's strings, area names,
the params diff, branch names) is text, never markup. No scripts.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Sequence
from dataclasses import dataclass

from modelrun.domain import formatting as fmt
from modelrun.domain import sections
from modelrun.domain.charts import BASE_COLOUR, COD_MAX, LEVEL_BAND, STANDARD_COLOUR, THIS_COLOUR, decile_labels
from modelrun.domain.documents import METRIC_KEYS, Report
from modelrun.domain.run import RunRecord
from modelrun.domain.sections import verdict_title
from modelrun.domain.verdict import verdict_of

_esc = html.escape


@dataclass(frozen=True)
class Distribution:
    """Counts of sales ratios (estimate / price) in equal bins, for this run and main."""

    low: float
    high: float
    this: list[int]
    base: list[int] | None = None


@dataclass(frozen=True)
class _Series:
    name: str
    values: Sequence[float | None]
    colour: str
    kind: str  # "bar", "line" or "points" (values of unordered categories: nothing joins them)


def _bar_line_svg(title: str, labels: Sequence[str], series: Sequence[_Series], y_range: tuple[float, float]) -> str:
    """A small bar-and-line chart as SVG that scales to its container (viewBox, width 100%)."""
    # A narrow canvas, so that scaled to a phone's width its text stays legible.
    width, height, left, right, top, bottom = 600, 320, 50, 10, 30, 78
    plot_w, plot_h = width - left - right, height - top - bottom
    low, high = y_range
    n = max(len(labels), 1)
    slot = plot_w / n

    def y(v: float) -> float:
        return top + plot_h - (min(max(v, low), high) - low) / (high - low) * plot_h

    out = [
        f'<svg viewBox="0 0 {width} {height}" role="img" aria-label="{_esc(title)}" '
        'xmlns="http://www.w3.org/2000/svg" class="chart">',
        f'<text x="{width / 2}" y="18" text-anchor="middle" class="title">{_esc(title)}</text>',
    ]
    for i in range(5):
        tick = low + (high - low) * i / 4
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" class="grid"/>')
        out.append(f'<text x="{left - 6}" y="{y(tick) + 4:.1f}" text-anchor="end">{tick:.2f}</text>')
    bars = [s for s in series if s.kind == "bar"]
    bar_w = slot * 0.7 / max(len(bars), 1)
    for b, s in enumerate(bars):
        for i, v in enumerate(s.values):
            if v is None or not math.isfinite(v):
                continue
            x = left + i * slot + slot * 0.15 + b * bar_w
            out.append(
                f'<rect x="{x:.1f}" y="{y(v):.1f}" width="{bar_w:.1f}" height="{top + plot_h - y(v):.1f}" '
                f'fill="{s.colour}"><title>{_esc(s.name)} {_esc(labels[i])}: {v:.3f}</title></rect>'
            )
    for s in series:
        if s.kind != "line":
            continue
        points = [
            f"{left + (i + 0.5) * slot:.1f},{y(v):.1f}"
            for i, v in enumerate(s.values)
            if v is not None and math.isfinite(v)
        ]
        out.append(f'<polyline points="{" ".join(points)}" fill="none" stroke="{s.colour}" stroke-width="2"/>')
    for s in series:
        if s.kind != "points":
            continue
        for i, v in enumerate(s.values):
            if v is not None and math.isfinite(v):
                out.append(
                    f'<circle cx="{left + (i + 0.5) * slot:.1f}" cy="{y(v):.1f}" r="4" fill="{s.colour}" '
                    f'stroke="#fff"><title>{_esc(s.name)} {_esc(labels[i])}: {v:.3f}</title></circle>'
                )
    for i, text in enumerate(labels):
        x = left + (i + 0.5) * slot
        out.append(
            f'<text x="{x:.1f}" y="{top + plot_h + 14}" text-anchor="end" '
            f'transform="rotate(-45 {x:.1f} {top + plot_h + 14})">{_esc(text)}</text>'
        )
    out.append("</svg>")
    marks = {"bar": "■", "line": "━", "points": "●"}
    legend = " ".join(f'<span style="color:{s.colour}">{marks[s.kind]}</span> {_esc(s.name)}' for s in series if s.name)
    return f"<figure>{''.join(out)}<figcaption>{legend}</figcaption></figure>"


def _decile_chart(report: Report, base_name: str) -> str:
    rows = [d for d in report.deciles if d.this is not None]
    if len(rows) < 2:
        return "<p>No decile view: too few holdout sales.</p>"
    labels = decile_labels(rows)
    series = [_Series("this run", [d.this for d in rows], THIS_COLOUR, "bar")]
    if any(d.base is not None for d in rows):
        series.append(_Series(base_name, [d.base for d in rows], BASE_COLOUR, "line"))
    series += [
        _Series("IAAO 0.90 to 1.10", [LEVEL_BAND[0]] * len(rows), STANDARD_COLOUR, "line"),
        _Series("", [LEVEL_BAND[1]] * len(rows), STANDARD_COLOUR, "line"),
    ]
    values = [v for s in series for v in s.values if v is not None]
    # a step to spare each side: the band's lines stay off the frame
    low, high = math.floor(min(values) * 20) / 20 - 0.05, math.ceil(max(values) * 20) / 20 + 0.05
    return _bar_line_svg("Median sales ratio by sale-price decile", labels, series, (low, high))


def _area_chart(report: Report, base_name: str) -> str:
    rows = [a for a in sections.first_grouping(report.by_area) if a.ratio_study.value("cod") is not None]
    if not rows:
        return ""
    theirs = {a.area: a.ratio_study.value("cod") for a in report.baseline.by_area} if report.baseline else {}
    series = [_Series("this run", [a.ratio_study.value("cod") for a in rows], THIS_COLOUR, "bar")]
    if theirs:
        series.append(_Series(base_name, [theirs.get(a.area) for a in rows], BASE_COLOUR, "points"))
    series.append(_Series("IAAO upper limit 15.0", [COD_MAX] * len(rows), STANDARD_COLOUR, "line"))
    top = max(v for s in series for v in s.values if v is not None)
    return _bar_line_svg("COD by market area", [a.area[:16] for a in rows], series, (0.0, math.ceil(top / 5) * 5))


def _distribution_chart(dist: Distribution | None, base_name: str) -> str:
    if dist is None or not sum(dist.this):
        return ""
    bins = len(dist.this)
    width = (dist.high - dist.low) / bins
    labels = [f"{dist.low + i * width:.2f}" for i in range(bins)]
    total = sum(dist.this)
    series = [_Series("this run", [c / total for c in dist.this], THIS_COLOUR, "bar")]
    if dist.base and sum(dist.base):
        base_total = sum(dist.base)
        series.append(_Series(base_name, [c / base_total for c in dist.base], BASE_COLOUR, "line"))
    top = max(v for s in series for v in s.values if v is not None)
    return _bar_line_svg(
        "Sales ratio distribution (share of holdout sales)", labels, series, (0.0, math.ceil(top * 20) / 20)
    )


def _table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    cells = "<tr>" + "".join(f"<th>{_esc(c)}</th>" for c in head) + "</tr>"
    cells += "".join("<tr>" + "".join(f"<td>{_esc(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f'<div class="scroll"><table>{cells}</table></div>'


def _change(report: Report, key: str) -> tuple[str, str]:
    found = report.paired_change(key)
    if found is None:
        return fmt.DASH, ""
    return fmt.interval(key, found.low, found.high, change=True), "≈" if found.verdict == "same" else found.verdict


def _metric_rows(report: Report) -> list[list[str]]:
    rows = []
    base = report.baseline
    for key in METRIC_KEYS:
        this = report.metrics.value(key) if report.metrics else None
        theirs = base.metrics.value(key) if base else None
        ci, verdict = _change(report, key)
        change = fmt.delta(key, this - theirs) if this is not None and theirs is not None else fmt.DASH
        rows.append([fmt.LABELS[key], fmt.value(key, this), fmt.value(key, theirs), change, ci, verdict])
    for key, stat in report.ratio_study.items() if report.ratio_study else []:
        theirs = base.ratio_study.value(key) if base else None
        ci, verdict = _change(report, key)
        change = fmt.delta(key, stat.value - theirs) if stat.value is not None and theirs is not None else fmt.DASH
        rows.append([fmt.LABELS[key], fmt.value(key, stat.value), fmt.value(key, theirs), change, ci, verdict])
    return rows


def _area_rows(report: Report) -> list[list[str]]:
    theirs = {a.area: a for a in report.baseline.by_area} if report.baseline else {}
    rows = []
    for a in report.by_area:
        other = theirs.get(a.area)
        rows.append(
            [
                a.area,
                fmt.count(a.n),
                fmt.value("cod", a.ratio_study.value("cod")),
                fmt.value("cod", other.ratio_study.value("cod")) if other else fmt.DASH,
                fmt.value("prd", a.ratio_study.value("prd")),
                fmt.value("prd", other.ratio_study.value("prd")) if other else fmt.DASH,
                fmt.value("mdape", a.metrics.value("mdape")),
                fmt.value("mdape", other.metrics.value("mdape")) if other else fmt.DASH,
            ]
        )
    return rows


_STYLE = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:1em auto;padding:0 .8em;line-height:1.4}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.6em}
.scroll{overflow-x:auto}table{border-collapse:collapse;margin:.6em 0}
td,th{border:1px solid #ccc;padding:.3em .6em;text-align:right;white-space:nowrap}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
table.facts td{text-align:left;white-space:normal;overflow-wrap:anywhere}table.facts th{vertical-align:top}
figure{margin:1em 0}svg.chart{width:100%;height:auto;max-width:720px;font-size:13px}
svg .title{font-size:15px;font-weight:600}svg .grid{stroke:#e5e5e5}
img{max-width:100%;height:auto}pre{overflow-x:auto;background:#f6f8fa;padding:.6em}
.note{color:#555;font-size:.9em}
"""


def render_html(record: RunRecord, report: Report, images: dict[str, bytes], dist: Distribution | None = None) -> str:
    """The full report (see the module's docstring)."""
    base = report.baseline
    base_name = f"main {base.head_sha[:8]}" if base else "main"
    comparison = report.comparison
    if comparison is None or report.baseline is None:
        compared = "No paired comparison with main."
    elif comparison.status == "paired":
        compared = (
            f"Changes: this run minus {base_name}. Intervals: {comparison.confidence:.0%} paired bootstrap "
            f"({fmt.count(comparison.resamples)} resamples of the {fmt.count(comparison.n_sales)} holdout sales "
            "both runs scored); better or worse only where the interval excludes 0, ≈ otherwise."
        )
    else:
        compared = f"Not compared: {comparison.reason or 'no holdout predictions'}. Nothing is marked better or worse."
    plots = "".join(
        # An SVG shown as an <img> runs no script it holds.
        f"<figure><img alt='{_esc(name)}' src='data:image/{'svg+xml' if name.endswith('.svg') else 'png'};base64,"
        f"{base64.b64encode(data).decode()}'>"
        f"<figcaption>{_esc(name)}</figcaption></figure>"
        for name, data in sorted(images.items())
    )
    study_rows = [
        [fmt.LABELS[k], fmt.value(k, s.value), fmt.interval(k, *s.ci) if s.ci else fmt.DASH,
         fmt.stated_range(s.range, s.standard) or s.standard or fmt.DASH,
         "pass" if s.passed else "fail"]
        for k, s in (report.ratio_study.items() if report.ratio_study else [])
    ]  # fmt: skip
    model, data = report.model, report.data
    facts = [
        ("library", model.library if model else None),
        ("device", model.device_used if model else None),
        ("threads", fmt.count(model.threads) if model else None),
        ("train time", fmt.duration(model.train_seconds) if model else None),
        ("sales", fmt.count(data.rows) if data else None),
        ("train / holdout", f"{fmt.count(data.n_train)} / {fmt.count(data.n_test)}" if data else None),
        ("holdout window", f"{data.holdout.start} to {data.holdout.end}" if data and data.holdout else None),
        ("source", data.source if data else None),
        ("trimming", data.trimming if data else None),
    ]
    facts_html = "".join(f"<tr><th>{_esc(k)}</th><td>{_esc(str(v))}</td></tr>" for k, v in facts if v)
    diff = "\n".join(report.params_diff) if report.params_diff else "No change (or no params file)."
    # The comment's verdict, as the check run's title words it.
    verdict = verdict_title(verdict_of(report)) if report.has_results else ""
    disagreement = "".join(
        f"<p><strong>{_esc(line.replace('**', ''))}</strong></p>" for line in sections.disagreement_note(report)
    )
    own = [
        [m.name, fmt.reported(m.value), m.unit or fmt.DASH, m.better or fmt.DASH]
        for m in report.reported
        if m.name.lower() not in fmt.LABELS
    ]
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>modelrun report {_esc(record.run_id)}</title>
<style>{_STYLE}</style></head><body>
<h1>modelrun report</h1>
<p>Run <code>{_esc(record.run_id)}</code> · {_esc(record.repository)}
 · {_esc(record.head_ref)} @ {_esc(record.head_sha[:8])}
 · status {_esc(record.status.value)} · duration {_esc(fmt.duration(record.duration_seconds))}
 · compared with {_esc(base_name if base else "nothing yet")}</p>
{f'<p class="verdict"><strong>{_esc(verdict)}</strong></p>' if verdict else ""}
<h2>Metrics against main</h2>
{_table(["metric", "this run", base_name, "change", "95% CI of the change", ""], _metric_rows(report))}
<p class="note">{_esc(compared)}</p>
{disagreement}
<h2>IAAO ratio study</h2>
{_table(["statistic", "value", "95% CI", "IAAO range", "pass"], study_rows) if study_rows else "<p>none</p>"}
<h2>Vertical equity: median ratio by sale-price decile</h2>
{_decile_chart(report, base_name)}
<h2>Sales ratio distribution</h2>
{_distribution_chart(dist, base_name) or "<p>No holdout predictions.</p>"}
<h2>By group</h2>
{_area_chart(report, base_name)}
{
        _table(["area", "sales", "COD", "main COD", "PRD", "main PRD", "MdAPE", "main MdAPE"], _area_rows(report))
        if report.by_area
        else "<p>none</p>"
    }
<h2>What changed in the params file</h2>
<pre>{_esc(diff)}</pre>
<h2>Model and data</h2>
<table class="facts">{facts_html}</table>
<p class="note">Every statistic above is computed by modelrun from the holdout predictions.</p>
<h2>The model's own metrics (as it reported them)</h2>
{_table(["metric", "value", "unit", "better"], own) if own else "<p>none</p>"}
<h2>Plots</h2>{plots or "<p>none</p>"}
</body></html>
"""
