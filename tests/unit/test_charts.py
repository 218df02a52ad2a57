"""The Mermaid charts' text (modelrun.domain.charts): what each series is, and that nothing the
model wrote can reach Mermaid but safe labels. Whether Mermaid itself accepts every chart is
tests/browser/test_browser.py (Mermaid's own parser, in Chromium)."""

from __future__ import annotations

import re

import pytest

from modelrun.domain.charts import COLLAPSE_OVER, LABEL_MAX, area_chart, decile_chart, label
from modelrun.domain.documents import AreaStats, Decile, RatioStat, RatioStudy

HOSTILE_AREAS = [
    '"] \n    bar [1',
    "x\n%%{init: {}}%%",
    "```",
    "<script>alert(1)</script>",
    "@org/team",
    "ünï 区域",
    "",
    "a" * 200,
    "north\u2028south",  # line breaks of str.splitlines (and of some parsers) that are not "\n"
    "east\rwest",
]


def deciles(n: int = 10, base: bool = True) -> list[Decile]:
    return [
        Decile(
            low=200_000 + i * 50_000, high=240_000 + i * 50_000, n=40, this=0.92 + i * 0.01, base=0.95 if base else None
        )
        for i in range(n)
    ]


def area(name: str, cod: float | None) -> AreaStats:
    return AreaStats(area=name, n=50, ratio_study=RatioStudy(cod=RatioStat(value=cod)))


def series(source: str) -> list[tuple[str, list[float]]]:
    return [
        (kind, [float(v) for v in values.split(", ")])
        for kind, values in re.findall(r"(?m)^\s+(bar|line) \[(.*)\]$", source)
    ]


def test_the_decile_chart_has_this_run_main_and_the_iaao_band() -> None:
    chart = decile_chart(deciles(), "main <code>abc</code>")
    assert chart is not None
    drawn = series(chart.source)
    assert [kind for kind, _ in drawn] == ["bar", "line", "line", "line"]
    assert drawn[0][1][:2] == [0.92, 0.93] and drawn[1][1] == [0.95] * 10
    assert drawn[2][1] == [0.9] * 10 and drawn[3][1] == [1.1] * 10
    assert '["$240k", "$290k",' in chart.source and "0.85 --> 1.15" in chart.source
    assert "orange line: main <code>abc</code>" in chart.legend
    assert chart.source.count("#") == 4  # the palette: bar, main, the two band lines
    assert chart.markdown().startswith("**Median ratio") and "<details>" not in chart.markdown()


def test_without_main_the_decile_chart_has_no_main_line() -> None:
    chart = decile_chart(deciles(base=False), None)
    assert chart is not None
    assert [kind for kind, _ in series(chart.source)] == ["bar", "line", "line"]
    assert "orange" not in chart.legend and chart.source.count("#") == 3
    assert decile_chart(deciles(1), None) is None


def test_the_area_chart_draws_this_runs_areas_and_leaves_mains_to_the_table() -> None:
    """Market areas have no order: main's values are not joined by a line (nor drawn at all:
    xychart-beta has no points); the legend points to the table of this run against main."""
    this = [area("1", 9.0), area("2", 11.5), area("3", None), area("4", 8.0)]
    base = [area("1", 10.0), area("2", 12.0), area("3", 7.0)]
    chart = area_chart(this, base, "main")
    assert chart is not None
    assert series(chart.source) == [("bar", [9.0, 11.5, 8.0]), ("line", [15.0, 15.0, 15.0])]
    assert "main's value for each area: in the table below" in chart.legend
    alone = area_chart(this, None, None)
    assert alone is not None and series(alone.source)[0] == ("bar", [9.0, 11.5, 8.0])
    assert "table" not in alone.legend
    assert area_chart([area("1", None)], None, None) is None


def test_the_areas_against_main_are_a_narrow_folded_table() -> None:
    from modelrun.domain.documents import Baseline, Report
    from modelrun.domain.sections import area_against_main

    this = [area("1", 9.0), area("2", 11.5), area("4", 8.0)]
    base = Baseline(run_id="m", head_sha="a" * 40, by_area=[area("1", 10.0), area("2", 12.0)])
    lines = area_against_main(Report(by_area=this, baseline=base))
    assert lines[0] == "<details><summary>COD by market area against main (3 areas)</summary>"
    assert "| 1 | 9.00 | 10.00 | -1.00 |" in lines and "| 4 | 8.00 | — | — |" in lines
    assert area_against_main(Report(by_area=this)) == []


def test_many_areas_fold_into_details_and_turn_horizontal() -> None:
    this = [area(str(i), 8.0 + i / 10) for i in range(COLLAPSE_OVER + 5)]
    chart = area_chart(this, this, "main")
    assert chart is not None
    assert "xychart-beta horizontal" in chart.source
    body = chart.markdown()
    assert body.startswith("<details><summary>COD by market area (17 areas)</summary>") and body.endswith("</details>")


@pytest.mark.parametrize("name", HOSTILE_AREAS)
def test_an_area_name_becomes_a_safe_label(name: str) -> None:
    chart = area_chart([area(name, 9.0), area(name, 10.0)], None, None)
    assert chart is not None
    labels = re.search(r'x-axis "market area" \[(.*)\]', chart.source)
    assert labels is not None
    for text in re.findall(r'"([^"]*)"', labels.group(1)):
        assert re.fullmatch(r"[A-Za-z0-9 ._+/#-]{1,16}", text), text
    assert len(set(re.findall(r'"([^"]*)"', labels.group(1)))) == 2  # still two categories
    assert "```" not in chart.source and "%%{" not in chart.source and "<" not in chart.source
    assert chart.source.count("\n") == len(chart.source.splitlines()) - 1  # no line of the model's


def test_labels_are_unique_and_short() -> None:
    taken: set[str] = set()
    names = [label("a" * 40, taken) for _ in range(12)]
    assert len(set(names)) == 12 and all(len(n) <= LABEL_MAX for n in names)
