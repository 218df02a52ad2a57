"""Charts GitHub draws itself: Mermaid ``xychart-beta`` in fenced ``mermaid`` blocks.

No image host: GitHub renders the text of a ``mermaid`` block in the comment and the check run.
``xychart-beta`` draws no legend, so each chart comes with its legend in words (``Chart.legend``).
Everything inside a chart is ours (numbers, fixed titles, price labels) but the market areas'
names, which the model wrote: they become labels of letters, digits and a few safe marks only,
so nothing can end a quoted label, a line or the block. The browser tests render every chart
these functions can emit with Mermaid itself (tests/browser).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from modelrun.domain.documents import AreaStats, Decile
from modelrun.domain.formatting import dollars_short

LEVEL_BAND = (0.90, 1.10)  # IAAO: the median ratio (level) of a class within 0.90 to 1.10
COD_MAX = 15.0  # IAAO: COD at most 15.0 for residential property
COLLAPSE_OVER = 12  # categories: a longer chart is folded into <details>
THIS_COLOUR, BASE_COLOUR, STANDARD_COLOUR = "#4c78a8", "#f58518", "#9e9e9e"
_LABEL_SAFE = re.compile(r"[^A-Za-z0-9 ._+/-]")
LABEL_MAX = 16
# Drawn this wide and scaled to fit the column: narrow enough that on a 400 px phone (a ~370 px
# column) the labels stay legible and Mermaid's layout keeps axis titles clear of tick labels.
CHART_WIDTH = 560


@dataclass(frozen=True)
class Chart:
    title: str  # Markdown, ours: the heading or <summary> above the chart
    legend: str  # Markdown, ours: what the bars and lines are
    source: str  # the Mermaid text
    categories: int

    def markdown(self) -> str:
        block = f"```mermaid\n{self.source}\n```"
        if self.categories > COLLAPSE_OVER:
            return f"<details><summary>{self.title}</summary>\n\n{self.legend}\n\n{block}\n\n</details>"
        return f"**{self.title}**\n\n{self.legend}\n\n{block}"


def label(text: str, taken: set[str]) -> str:
    """A category label from user text: safe characters only, short, unique among ``taken``."""
    value = " ".join(_LABEL_SAFE.sub("", text).split())[:LABEL_MAX] or "area"
    candidate, n = value, 2
    while candidate in taken:
        candidate, n = f"{value[: LABEL_MAX - 3]}#{n}", n + 1
    taken.add(candidate)
    return candidate


def _series(values: Sequence[float], decimals: int) -> str:
    return "[" + ", ".join(f"{v:.{decimals}f}" for v in values) + "]"


def _axis(values: Sequence[float], step: float, floor: float | None = None) -> tuple[float, float]:
    """An axis range in whole steps with a step to spare each side (lines off the frame)."""
    low = math.floor(min(values) / step + 1e-9) * step - step if floor is None else floor
    high = math.ceil(max(values) / step - 1e-9) * step + step
    return max(low, 0.0), high


def _header(width: int, height: int, colours: Sequence[str]) -> str:
    # Series take the palette's colours in the order they are listed.
    palette = ", ".join(colours)
    return (
        "---\nconfig:\n"
        f"  xyChart:\n    width: {width}\n    height: {height}\n"
        # Smaller labels and room between an axis title and its labels: at a phone's width
        # Mermaid's defaults let the y-axis title run into the tick labels.
        "    xAxis:\n      labelFontSize: 12\n      titleFontSize: 13\n      titlePadding: 16\n"
        "    yAxis:\n      labelFontSize: 12\n      titleFontSize: 13\n      titlePadding: 16\n"
        f'  themeVariables:\n    xyChart:\n      plotColorPalette: "{palette}"\n---\n'
    )


def _categories(labels: Sequence[str]) -> str:
    return "[" + ", ".join(f'"{x}"' for x in labels) + "]"


def decile_labels(rows: Sequence[Decile]) -> list[str]:
    """Each decile by its highest sale price (the axis title says so), short enough that ten fit
    under a chart on a phone: ``$420k``, ``$9.8M``."""
    return [dollars_short(d.high, digits=2) for d in rows]


def decile_chart(deciles: Sequence[Decile], base_label: str | None) -> Chart | None:
    """Median ratio by sale-price decile: bars this run, a line main (when it scored the same
    sales), and IAAO's level band as two lines."""
    rows = [d for d in deciles if d.this is not None and (base_label is None or d.base is not None)]
    if len(rows) < 2:
        return None
    this = [float(d.this) for d in rows if d.this is not None]
    base = [float(d.base) for d in rows if d.base is not None] if base_label else []
    low, high = _axis([*this, *base, *LEVEL_BAND], 0.05)
    labels = decile_labels(rows)
    lines = [
        "xychart-beta",
        '    title "Median sales ratio by sale-price decile"',
        f'    x-axis "decile, by its top sale price" {_categories(labels)}',
        f'    y-axis "median ratio" {low:.2f} --> {high:.2f}',
        f"    bar {_series(this, 3)}",
    ]
    if base:
        lines.append(f"    line {_series(base, 3)}")
    lines += [
        f"    line {_series([LEVEL_BAND[0]] * len(rows), 2)}",
        f"    line {_series([LEVEL_BAND[1]] * len(rows), 2)}",
    ]
    legend = "Bars: this run" + (f" · orange line: {base_label}" if base else "")
    legend += " · grey lines: IAAO's level range, 0.90 to 1.10 (ratio-study sales, outliers trimmed)"
    colours = [THIS_COLOUR, *([BASE_COLOUR] if base else []), STANDARD_COLOUR, STANDARD_COLOUR]
    header = _header(CHART_WIDTH, 400, colours)
    return Chart("Median ratio by sale-price decile", legend, header + "\n".join(lines), len(rows))


def area_chart(this: Sequence[AreaStats], base: Sequence[AreaStats] | None, base_label: str | None) -> Chart | None:
    """COD by market area: bars this run, IAAO's 15.0 as a line. Main's values are not drawn: the
    areas have no order, so a line joining them would claim a trend, and xychart-beta has no
    points (a second bar series would hide the first). They are in the table beside the chart
    (sections.area_against_main). ``base`` and ``base_label``: said in the legend only."""
    rows: list[tuple[str, float]] = []
    for area in this:
        cod = area.ratio_study.value("cod")
        if cod is None or not math.isfinite(cod):
            continue
        rows.append((area.area, cod))
    if not rows:
        return None
    taken: set[str] = set()
    labels = [label(name, taken) for name, _ in rows]
    values = [cod for _, cod in rows]
    _, high = _axis([*values, COD_MAX], 5.0, floor=0.0)
    many = len(rows) > COLLAPSE_OVER
    lines = [
        "xychart-beta horizontal" if many else "xychart-beta",
        '    title "COD by market area"',
        f'    x-axis "market area" {_categories(labels)}',
        f'    y-axis "COD" 0 --> {high:.0f}',
        f"    bar {_series(values, 2)}",
        f"    line {_series([COD_MAX] * len(rows), 1)}",
    ]
    legend = "Bars: this run · grey line: IAAO's upper limit, 15.0 (lower is more uniform)"
    if base and base_label:
        legend += f" · {base_label}'s value for each area: in the table below"
    height = max(400, 26 * len(rows) + 120) if many else 400
    title = f"COD by market area ({len(rows)} areas)"
    colours = [THIS_COLOUR, STANDARD_COLOUR]
    return Chart(title, legend, _header(CHART_WIDTH, height, colours) + "\n".join(lines), len(rows))
