"""The Markdown sections the comment and the check run share: this run against main.

Each function takes the typed report of one run and returns lines of Markdown. A change is
marked better or worse only where the paired bootstrap says so (``Comparison``); without a
paired comparison nothing is marked. User text (metric names cannot be: the schema closes
them; the model's strings, area names, the params diff can) goes through ``inert``, ``code``
or ``code_block``.
"""

from __future__ import annotations

from modelrun.domain import formatting as fmt
from modelrun.domain.charts import Chart, area_chart, decile_chart
from modelrun.domain.documents import METRIC_KEYS, AreaStats, Baseline, RatioStat, Report
from modelrun.domain.text import code, code_block, inert
from modelrun.domain.verdict import Verdict

VERDICTS = {"better": "🟢 better", "worse": "🔴 worse", "same": "≈"}
PARAMS_DIFF_LINES = 80


def baseline_label(baseline: Baseline | None) -> str:
    return f"main {code(baseline.head_sha[:8])}" if baseline else "main"


def baseline_text(baseline: Baseline | None) -> str:
    """Which main run the PR is compared with, in words."""
    if baseline is None:
        return "none yet (no verified run of the default branch has succeeded)"
    sha = code(baseline.head_sha[:8])
    if baseline.which == "base_commit":
        return f"main's run of this PR's base commit {sha}"
    if baseline.which == "latest":
        return f"the latest main run {sha} (the PR's base commit has no run)"
    return f"main run {sha}"


def _change_cells(report: Report, key: str, this: float | None, base: float | None) -> list[str]:
    """change, its interval, the verdict: the verdict only from a paired interval."""
    if this is None or base is None:
        return [fmt.DASH, fmt.DASH, ""]
    difference = fmt.delta(key, this - base)
    if key in METRIC_KEYS and key not in ("r2", "median_ratio"):
        difference += f" ({fmt.percent_change(this, base)})"
    found = report.paired_change(key)
    if found is None:
        return [difference, fmt.DASH, ""]
    return [difference, fmt.interval(key, found.low, found.high, change=True), VERDICTS[found.verdict]]


def metrics_table(report: Report) -> list[str]:
    metrics = report.metrics
    if metrics is None:
        return []
    baseline = report.baseline
    if baseline is None:
        rows = ["| metric | this run |", "|---|---:|"]
        rows += [f"| {fmt.LABELS[k]} | {fmt.value(k, metrics.value(k))} |" for k in METRIC_KEYS]
        return rows
    rows = [
        f"| metric | this run | {baseline_label(baseline)} | change | 95% CI of the change | |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for key in METRIC_KEYS:
        this, base = metrics.value(key), baseline.metrics.value(key)
        cells = [fmt.LABELS[key], fmt.value(key, this), fmt.value(key, base), *_change_cells(report, key, this, base)]
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def standard_range(stat: RatioStat) -> str:
    return fmt.stated_range(stat.range, stat.standard) or inert(stat.standard or fmt.DASH, 30)


def _verdict(stat: RatioStat) -> str:
    return "✅ pass" if stat.passed else "❌ fail" if stat.passed is False else fmt.DASH


def ratio_table(report: Report) -> list[str]:
    study = report.ratio_study
    if study is None or not list(study.items()):
        return []
    baseline = report.baseline
    head = "| IAAO statistic | this run | 95% CI | IAAO range | |"
    rule = "|---|---:|---:|---:|---|"
    if baseline is not None:
        head += f" {baseline_label(baseline)} | change | 95% CI of the change | |"
        rule += "---:|---:|---:|---|"
    rows = [head, rule]
    for key, stat in study.items():
        ci = fmt.interval(key, *stat.ci) if stat.ci else fmt.DASH
        cells = [fmt.LABELS[key], fmt.value(key, stat.value), ci, standard_range(stat), _verdict(stat)]
        if baseline is not None:
            base = baseline.ratio_study.value(key)
            cells += [fmt.value(key, base), *_change_cells(report, key, stat.value, base)]
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def comparison_note(report: Report) -> list[str]:
    """What the marks mean, or why there are none."""
    comparison = report.comparison
    if report.baseline is None:
        return []
    if comparison is None:
        return ["<sub>No paired comparison was made: changes are not marked better or worse.</sub>"]
    if comparison.status == "paired":
        level = f"{comparison.confidence:.0%}"
        return [
            f"<sub>🟢/🔴: the {level} paired bootstrap interval of the change excludes 0 "
            f"({fmt.count(comparison.resamples)} resamples of the {fmt.count(comparison.n_sales)} holdout sales "
            "both runs scored; for the median ratio, PRD, PRB and MKI, better means nearer the ideal: 1, 1, 0 and 1). "
            "≈: the interval includes 0, so the runs can't be told apart.</sub>"
        ]
    if comparison.status == "differ":
        why = inert(comparison.reason or "the holdouts differ", 200)
        return [f"<sub>Not compared: {why}. The data changed, so no change is marked better or worse.</sub>"]
    why = inert(comparison.reason or "no holdout predictions", 300)
    return [f"<sub>Not compared: {why}. No change is marked better or worse.</sub>"]


def disagreement_note(report: Report) -> list[str]:
    """Where the model reported one of modelrun's statistics otherwise: said, never shown as the result."""
    if not report.disagreements:
        return []
    said = ", ".join(
        f"{fmt.LABELS[d.key]} {fmt.value(d.key, d.reported)} (modelrun: {fmt.value(d.key, d.computed)})"
        for d in report.disagreements
        if d.key in fmt.LABELS
    )
    return [
        f"⚠️ **The model's own numbers disagree with modelrun's:** it reported {said}. "
        "The tables show modelrun's, computed from its holdout predictions."
    ]


def reported_table(report: Report) -> list[str]:
    """The model's own extra metrics, as it reported them (modelrun's statistics are not among them)."""
    own = [m for m in report.reported if m.name.lower() not in fmt.LABELS]
    if not own:
        return []
    rows = ["| metric (as the model reported it) | value | unit | better |", "|---|---:|---|---|"]
    for m in own:
        unit = inert(m.unit or fmt.DASH, 20)
        rows.append(f"| {inert(m.name, 64)} | {fmt.reported(m.value)} | {unit} | {m.better or fmt.DASH} |")
    return rows


def first_grouping(groups: list[AreaStats]) -> list[AreaStats]:
    """The groups of the first grouping column: what the COD chart shows (the tables show all)."""
    return [g for g in groups if g.column == groups[0].column] if groups else []


def charts(report: Report) -> list[Chart]:
    label = baseline_label(report.baseline) if report.baseline else None
    paired = report.comparison is not None and report.comparison.status == "paired"
    found = [
        decile_chart(report.deciles, label if paired else None),
        area_chart(first_grouping(report.by_area), report.baseline.by_area if report.baseline else None, label),
    ]
    return [c for c in found if c is not None]


def area_against_main(report: Report) -> list[str]:
    """COD of each market area, this run against main, folded: what the area chart does not
    draw (the areas have no order to join main's values by). Narrow: four columns."""
    baseline = report.baseline
    theirs = {a.area: a.ratio_study.value("cod") for a in baseline.by_area} if baseline else {}
    if not report.by_area or not theirs:
        return []
    rows = [f"| area | this run | {baseline_label(baseline)} | change |", "|---|---:|---:|---:|"]
    for area in report.by_area:
        this, base = area.ratio_study.value("cod"), theirs.get(area.area)
        change = fmt.delta("cod", this - base) if this is not None and base is not None else fmt.DASH
        rows.append(f"| {inert(area.area, 40)} | {fmt.value('cod', this)} | {fmt.value('cod', base)} | {change} |")
    return [
        f"<details><summary>COD by market area against main ({len(report.by_area)} areas)</summary>",
        "",
        *rows,
        "",
        "</details>",
    ]


def model_line(report: Report) -> str:
    model, data = report.model, report.data
    library = inert(model.library if model and model.library else "model", 30)
    device = inert(model.device_used if model and model.device_used else "?", 10)
    n_train = fmt.count(data.n_train) if data else fmt.DASH
    n_test = fmt.count(data.n_test) if data else fmt.DASH
    return (
        f"<sub>{library} on {device} · {n_train} train / {n_test} holdout sales · statistics computed by "
        f"modelrun from the predictions · baseline: {baseline_text(report.baseline)}</sub>"
    )


def _area_cells(area: AreaStats | None) -> list[str]:
    if area is None:
        return [fmt.DASH] * 3
    return [
        fmt.value("cod", area.ratio_study.value("cod")),
        fmt.value("prd", area.ratio_study.value("prd")),
        fmt.value("mdape", area.metrics.value("mdape")),
    ]


def area_table(report: Report) -> list[str]:
    """Every group (market area...), this run against main: COD, PRD and MdAPE."""
    if not report.by_area:
        return []
    baseline = report.baseline
    theirs = {(a.column, a.area): a for a in baseline.by_area} if baseline else {}
    columns = {a.column for a in report.by_area}
    several = len(columns) > 1
    named = next(iter(columns)) if not several else None
    head = f"| {inert(named, 40) if named else 'group'} | sales | COD | PRD | MdAPE |"
    rule = "|---|---:|---:|---:|---:|"
    if baseline is not None:
        head += " main COD | main PRD | main MdAPE |"
        rule += "---:|---:|---:|"
    rows = [head, rule]
    for area in report.by_area:
        label = f"{area.column}: {area.area}" if several else area.area
        cells = [inert(label, 80), fmt.count(area.n), *_area_cells(area)]
        if baseline is not None:
            cells += _area_cells(theirs.get((area.column, area.area)))
        rows.append("| " + " | ".join(cells) + " |")
    return rows


def details(report: Report) -> list[str]:
    """The model and the data, as the model reported them."""
    model, data = report.model, report.data
    lines: list[str] = []
    if model is not None:
        facts = [
            f"library {inert(model.library or '?', 30)}",
            f"device {inert(model.device_used or '?', 10)} (asked for {inert(model.device_requested or '?', 10)})",
            f"{fmt.count(model.threads)} threads",
            f"trained in {fmt.duration(model.train_seconds)}",
        ]
        lines.append("- **Model:** " + ", ".join(facts))
    if data is not None:
        window = f", holdout {inert(data.holdout.start, 12)} to {inert(data.holdout.end, 12)}" if data.holdout else ""
        lines.append(
            f"- **Data:** {fmt.count(data.rows)} sales, {fmt.count(data.n_train)} train, "
            f"{fmt.count(data.n_test)} holdout ({fmt.count(data.n_ratio_study)} in the ratio study){window}"
        )
        if data.source:
            lines.append(f"- **Source:** {inert(data.source, 300)}")
        if data.trimming:
            lines.append(f"- **Trimming:** {inert(data.trimming, 500)}")
    lines.append(
        "- **Statistics:** computed by modelrun from the holdout predictions (the same code for every model); "
        "the model's own numbers are shown only as its own."
    )
    return lines


def params_section(report: Report) -> list[str]:
    """What changed in the params file against the baseline run."""
    if report.baseline is None:
        return []
    if not report.params_diff:
        return ["No change to the params file against the baseline run (or it wrote none)."]
    shown = report.params_diff[:PARAMS_DIFF_LINES]
    more = len(report.params_diff) - len(shown)
    block = code_block(shown)
    return [block] + ([f"_{more} more lines in report.html._"] if more > 0 else [])


def _listed(keys: tuple[str, ...]) -> str:
    names = [fmt.LABELS[k] for k in keys]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _standards_words(v: Verdict) -> str:
    """The IAAO standards against main's: what newly fails or passes, and what fails as on main."""

    def says(keys: tuple[str, ...], one: str, many: str, after: str = "") -> list[str]:
        return [f"{_listed(keys)} {one if len(keys) == 1 else many}{after}"] if keys else []

    others = tuple(k for k in v.failing if k not in v.newly_failing and k not in v.failing_as_on_main)
    parts = [
        *says(v.newly_failing, "newly fails", "newly fail"),
        *says(v.newly_passing, "newly passes", "newly pass"),
        *says(v.failing_as_on_main, "fails", "fail", ", as on main"),
        *says(others, "fails", "fail"),
    ]
    return "; ".join(parts)


VERDICT_MARKS = {"better": "🟢", "worse": "🔴", "mixed": "🟠", "same": "⚪", "no_baseline": "⚪", "not_compared": "⚪"}


def verdict_line(v: Verdict, report: Report) -> str:
    """The verdict in one line of Markdown, before any table: what moved against main (only
    changes whose paired interval excludes 0), then the IAAO standards against main's."""
    if v.kind == "no_results":
        return ""
    if v.kind == "better":
        head = f"**Better than main:** {_listed(v.better)} improved; nothing got worse."
    elif v.kind == "worse":
        head = f"**Worse than main:** {_listed(v.worse)} got worse; nothing improved."
    elif v.kind == "mixed":
        head = f"**Mixed against main:** {_listed(v.better)} improved; {_listed(v.worse)} got worse."
    elif v.kind == "same":
        head = "**No detectable change against main:** no statistic's paired interval excludes 0."
    elif v.kind == "no_baseline":
        head = "**No baseline:** no verified run of the default branch has succeeded yet, so nothing is compared."
    else:
        why = f": {inert(v.reason, 160)}" if v.reason else ""
        head = f"**Not compared with main{why}.** No change is called better or worse."
    study = report.ratio_study
    reported = study is not None and any(s.passed is not None for _, s in study.items())
    standards = _standards_words(v)
    if reported:
        standards = f"IAAO: {standards}." if standards else "IAAO: all pass."
    return f"{VERDICT_MARKS[v.kind]} {head}" + (f" {standards}" if reported else "")


TITLE_MAX = 100  # GitHub shows a check run's title on one line: keep it short


def verdict_title(v: Verdict) -> str:
    """The verdict as a check run's title: plain text, short (lists become counts when long)."""

    def title(names: bool) -> str:
        def which(keys: tuple[str, ...]) -> str:
            return ", ".join(fmt.LABELS[k] for k in keys) if names else f"{len(keys)} statistic{'s' * (len(keys) > 1)}"

        head = {
            "better": f"Better than main: {which(v.better)}",
            "worse": f"Worse than main: {which(v.worse)}",
            "mixed": f"Mixed: better {which(v.better)}; worse {which(v.worse)}",
            "same": "No detectable change against main",
            "no_baseline": "No baseline to compare with",
            "not_compared": "Not compared with main",
            "no_results": "No results",
        }[v.kind]

        def says(keys: tuple[str, ...], one: str, many: str) -> str:
            return f"{', '.join(fmt.LABELS[k] for k in keys)} {one if len(keys) == 1 else many}"

        others = tuple(k for k in v.failing if k not in v.newly_failing and k not in v.failing_as_on_main)
        iaao = [
            *([says(v.newly_failing, "newly fails", "newly fail")] if v.newly_failing else []),
            *([says(v.failing_as_on_main, "fails as on main", "fail as on main")] if v.failing_as_on_main else []),
            *([f"fails {', '.join(fmt.LABELS[k] for k in others)}"] if others else []),
            *([says(v.newly_passing, "newly passes", "newly pass")] if v.newly_passing else []),
        ]
        return head + (f"; IAAO {', '.join(iaao)}" if iaao else "")

    text = title(names=True)
    return text if len(text) <= TITLE_MAX else title(names=False)[:TITLE_MAX]


def directions(report: Report) -> str:
    """Each statistic's direction against main in one wrapping line, above the wide tables (a
    phone shows it without scrolling sideways): ``RMSE 🟢 · MAE ≈ · PRD 🔴``."""
    comparison = report.comparison
    if comparison is None or comparison.status != "paired" or not comparison.changes:
        return ""
    marks = {"better": "🟢", "worse": "🔴", "same": "≈"}
    cells = [f"{fmt.LABELS[k]} {marks[c.verdict]}" for k in fmt.LABELS if (c := comparison.changes.get(k))]
    return "<sub>Against main (🟢 better, 🔴 worse, ≈ can't tell): " + " · ".join(cells) + "</sub>"
