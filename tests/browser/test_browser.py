"""What reviewers see, in a real browser: every chart the comment and the check run can carry,
drawn by Mermaid itself (the pinned @mermaid-js/mermaid-cli, Mermaid 11.17.2), and report.html
in Debian's headless Chromium.

A chart Mermaid's parser rejects fails here, as GitHub would show an error box instead of it.
One browser session does it all (tests/browser/render.mjs); the SVGs and the screenshots land
in the tests' output folder (``.modelrun/test-output/browser``, or $MODELRUN_TEST_OUTPUT), for
people to look at. Needs ``make browser-setup`` (chromium from Debian, ``npm ci``): ``make test``
runs it first.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modelrun.domain import charts
from modelrun.domain.documents import AreaStats, Decile, RatioStat, RatioStudy, report_of
from modelrun.domain.html_report import render_html
from modelrun.domain.policy import GateSource, policy_from
from modelrun.domain.report import check_run, render_comment
from modelrun.domain.sections import verdict_line
from modelrun.domain.status import RunStatus
from modelrun.domain.verdict import verdict_of
from tests.records import REPORT_FIXTURES, real_report, stored_record

ROOT = Path(__file__).resolve().parents[2]
RENDER = Path(__file__).with_name("render.mjs")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
OUTPUT = Path(os.environ.get("MODELRUN_TEST_OUTPUT", ROOT / ".modelrun" / "test-output")) / "browser"
PHONE, DESKTOP = (390, 844), (1280, 900)
NARROW = (400, 844)  # the phone: the verdict readable without scrolling sideways

# Not a chart we emit: the control that proves a chart Mermaid rejects fails this test.
BROKEN = 'xychart-beta\n    x-axis ["a", "b"]\n    bar [1, , 2]'


def _area(name: str, cod: float) -> AreaStats:
    return AreaStats(area=name, n=40, ratio_study=RatioStudy(cod=RatioStat(value=cod)))


def _deciles(values: list[float], base: list[float] | None) -> list[Decile]:
    return [
        Decile(low=100_000 * (i + 1), high=100_000 * (i + 2) - 1, n=30, this=v, base=base[i] if base else None)
        for i, v in enumerate(values)
    ]


def emitted_charts() -> dict[str, str]:
    """Every kind of chart the code emits: with and without main, vertical and horizontal,
    tiny and extreme, hostile area names; and the charts inside a real run's comment and check run."""
    found: dict[str, charts.Chart | None] = {
        "deciles-few": charts.decile_chart(_deciles([0.95, 1.02, 1.2], [0.9, 1.0, 1.1]), "main"),
        "deciles-alone": charts.decile_chart(_deciles([0.95 + i / 100 for i in range(10)], None), None),
        "deciles-extreme": charts.decile_chart(_deciles([0.2, 3.5, 1.0, 0.05], [3.9, 0.1, 1.0, 1.0]), "main"),
        "areas-few": charts.area_chart([_area("1", 9.2), _area("2", 14.9)], [_area("1", 8.0), _area("2", 16.0)], "m"),
        "areas-alone": charts.area_chart([_area(str(i), 5 + i) for i in range(30)], None, None),
        "areas-extreme": charts.area_chart(
            [_area("a", 0.01), _area("b", 95.5)], [_area("a", 80.0), _area("b", 0.0)], "m"
        ),
        "areas-hostile": charts.area_chart(
            [_area('"] \n bar [1', 9.0), _area("%%{init}%%", 10.0), _area("ünï 区域 <b>", 11.0), _area("", 12.0)],
            None,
            None,
        ),
    }
    sources = {name: chart.source for name, chart in found.items() if chart is not None}
    assert len(sources) == len(found), [name for name, chart in found.items() if chart is None]
    paired, _, _ = real_report(paired=True)
    differ, _, _ = real_report(paired=False)
    bodies = {
        "comment": render_comment([paired]),
        "check": check_run(paired.model_copy(update={"gate": {"kind": "default"}})).summary,
        "comment-differ": render_comment([differ]),
    }
    for where, body in bodies.items():
        for i, block in enumerate(re.findall(r"(?s)```mermaid\n(.*?)\n```", body)):
            sources.setdefault(f"{where}-{i}", block)
    return sources


def reviewer_documents() -> tuple[dict[str, str], str]:
    """The real run's PR comment and its check run's page (title, conclusion, summary, text, as
    GitHub lays a check run out), judged by a team's gate; and the verdict's text, to find it."""
    record, _, _ = real_report(paired=True)
    gate = GateSource(kind="file", ref="0" * 40, policy=policy_from({"must_not_get_worse": ["cod", "prd"]}))
    record = record.model_copy(update={"gate": gate.model_dump(mode="json")})
    view = check_run(record)
    page = f"## {view.title}\n\n**{view.conclusion}**\n\n{view.summary}\n\n{view.text or ''}"
    report = report_of(record.report)
    probe = verdict_line(verdict_of(report), report).replace("**", "")
    return {"comment": render_comment([record]), "check-run": page}, probe


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    missing = [
        what
        for what, there in (("chromium", Path(CHROMIUM)), ("node_modules", ROOT / "node_modules"))
        if not there.exists()
    ]
    if missing or shutil.which("node") is None:
        pytest.fail(f"the browser tests need {missing or ['node']}: run `make browser-setup` (make test does)")
    OUTPUT.mkdir(parents=True, exist_ok=True)
    record, report, distribution = real_report()
    images = {"feature_importance.png": (REPORT_FIXTURES / "pr" / "feature_importance.png").read_bytes()}
    page = OUTPUT / "report.html"
    page.write_text(render_html(record, report, images, distribution))
    failed = stored_record(RunStatus.FAILED, report={"status": "FAILED", "log_tail": ["<script>boom()</script>"]})
    failed_page = OUTPUT / "report-failed.html"
    failed_page.write_text(render_html(failed, report.model_copy(update={"metrics": None, "ratio_study": None}), {}))
    charts_ = emitted_charts()
    documents, probe = reviewer_documents()
    job = {
        "charts": [{"name": n, "source": s} for n, s in charts_.items()] + [{"name": "broken", "source": BROKEN}],
        "pages": [
            {"name": "report-phone", "path": str(page), "width": PHONE[0], "height": PHONE[1]},
            {"name": "report-desktop", "path": str(page), "width": DESKTOP[0], "height": DESKTOP[1]},
            {"name": "report-failed-phone", "path": str(failed_page), "width": PHONE[0], "height": PHONE[1]},
        ],
        "documents": [
            {"name": f"{name}-{width}", "markdown": text, "width": width, "height": NARROW[1], "probe": probe}
            for name, text in documents.items()
            for width in (DESKTOP[0], NARROW[0])
        ],
    }
    job_file = tmp_path_factory.mktemp("browser") / "job.json"
    job_file.write_text(json.dumps(job))
    done = subprocess.run(
        ["node", str(RENDER), str(job_file), str(OUTPUT)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=os.environ | {"CHROMIUM": CHROMIUM},
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout)
    result["sources"] = charts_
    yield result


def test_every_chart_the_code_emits_renders_in_mermaid(rendered: dict[str, Any]) -> None:
    results = {c["name"]: c for c in rendered["charts"]}
    failed = {n: results[n].get("error") for n in rendered["sources"] if not results[n]["ok"]}
    assert not failed, failed
    assert len(rendered["sources"]) >= 10  # the kinds above and the real run's comment and check run


def test_a_chart_mermaid_rejects_fails(rendered: dict[str, Any]) -> None:
    broken = next(c for c in rendered["charts"] if c["name"] == "broken")
    assert not broken["ok"] and "Parse error" in broken["error"]


def test_the_real_runs_charts_draw_every_bar_and_line(rendered: dict[str, Any]) -> None:
    svg = (OUTPUT / "comment-0.svg").read_text()
    assert "Median sales ratio by sale-price decile" in svg
    bars = re.search(r'<g class="bar-plot-0"[^>]*>(.*?)</g>', svg, re.S)
    assert bars is not None and bars.group(1).count("<rect") == 10  # one bar per decile
    assert len(re.findall(r'class="line-plot-\d+"', svg)) == 3  # main and the IAAO band's two lines
    areas = (OUTPUT / "comment-1.svg").read_text()
    found = re.search(r'<g class="bar-plot-0"[^>]*>(.*?)</g>', areas, re.S)
    assert found is not None and found.group(1).count("<rect") == 25  # the sample's 25 market areas


@pytest.mark.parametrize("name", ["report-phone", "report-desktop", "report-failed-phone"])
def test_the_report_loads_without_errors(rendered: dict[str, Any], name: str) -> None:
    page = next(p for p in rendered["pages"] if p["name"] == name)
    assert page["problems"] == []
    assert (OUTPUT / page["screenshot"]).stat().st_size > 10_000
    layout = page["layout"]
    assert layout["title"].startswith("modelrun report")
    # readable on a phone: wide tables scroll in their own box, the page itself does not
    assert layout["scrollWidth"] <= layout["clientWidth"], layout
    if not name.startswith("report-failed"):
        assert layout["svgs"] == 3 and layout["images"] == 1 and layout["tables"] >= 4, layout
        facts = layout["facts"]  # "Model and data": the long trimming text wraps inside the screen
        assert facts is not None and facts["right"] <= layout["clientWidth"], (facts, layout["clientWidth"])


@pytest.mark.parametrize("name", ["comment-400", "check-run-400", "comment-1280", "check-run-1280"])
def test_the_verdict_is_read_first_without_scrolling_sideways(rendered: dict[str, Any], name: str) -> None:
    """GitHub's rendering approximated (markdown-it, GitHub's stylesheet, Mermaid in the page):
    the verdict's paragraph lies inside the screen's width and on its first screen, nothing in it
    overflows, and the page itself never scrolls sideways (wide tables scroll in their own box)."""
    page = next(d for d in rendered["documents"] if d["name"] == name)
    assert page["problems"] == [], page["problems"]
    verdict = page["probe"]
    assert verdict is not None, "the verdict is not on the page"
    assert 0 <= verdict["left"] and verdict["right"] <= page["clientWidth"], (verdict, page["clientWidth"])
    assert verdict["scrollWidth"] <= verdict["clientWidth"], verdict
    assert verdict["bottom"] <= page["viewportHeight"], "the verdict is below the first screen"
    assert page["scrollWidth"] <= page["clientWidth"], (page["scrollWidth"], page["clientWidth"])
    assert (OUTPUT / page["screenshot"]).stat().st_size > 10_000  # the screenshot, for people to look at


def _overlap(a: dict[str, float], b: dict[str, float]) -> bool:
    return a["left"] < b["right"] and b["left"] < a["right"] and a["top"] < b["bottom"] and b["top"] < a["bottom"]


@pytest.mark.parametrize("name", ["comment-400", "comment-1280"])
def test_the_charts_axis_titles_clear_their_labels_and_no_label_is_cut(rendered: dict[str, Any], name: str) -> None:
    page = next(d for d in rendered["documents"] if d["name"] == name)
    assert page["charts"], "no chart drawn"
    for chart in page["charts"]:
        for title in chart["xTitle"]:
            hit = [label["text"] for label in chart["xLabels"] if _overlap(title, label)]
            assert not hit, (title["text"], hit)
        svg = chart["svg"]
        cut = [
            label["text"]
            for label in chart["xLabels"]
            if label["left"] < svg["left"] - 1 or label["right"] > svg["right"] + 1
        ]
        assert not cut, cut
