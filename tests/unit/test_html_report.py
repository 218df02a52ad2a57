"""report.html against the comment: the same numbers read the same way in both."""

from __future__ import annotations

import re

from modelrun.domain.documents import report_of
from modelrun.domain.html_report import render_html
from modelrun.domain.report import render_comment
from modelrun.domain.status import RunStatus
from tests.unit.domain_helpers import metrics_report, record


def test_an_iaao_range_in_words_reads_as_in_the_comment() -> None:
    # The model wrote the ranges as "5.0-15.0" and "0.98-1.03", with no bounds beside them.
    rec = record(RunStatus.SUCCEEDED, report=metrics_report())
    page = render_html(rec, report_of(rec.report), {})
    comment = render_comment([rec])
    for shown in ("5.0 to 15.0", "0.98 to 1.03"):
        assert f"<td>{shown}</td>" in page and f"| {shown} |" in comment
    assert not re.search(r"<td>[\d.]+-[\d.]+</td>", page)


def test_an_iaao_range_that_does_not_parse_is_shown_as_written() -> None:
    report = metrics_report()
    report["ratio_study"]["prd"]["standard"] = "about 1"
    rec = record(RunStatus.SUCCEEDED, report=report)
    assert "<td>about 1</td>" in render_html(rec, report_of(rec.report), {})
    assert "| about 1 |" in render_comment([rec])


def test_the_report_opens_with_the_verdict_of_the_check_run() -> None:
    rec = record(RunStatus.SUCCEEDED, report=metrics_report())
    page = render_html(rec, report_of(rec.report), {})
    found = re.search(r'<p class="verdict"><strong>(.*?)</strong></p>', page)
    assert found is not None and found.group(1) == "Not compared with main; IAAO fails PRD"
    assert page.index('class="verdict"') < page.index("<table")


def test_plots_are_inlined_as_images_svg_too_and_the_models_own_metrics_apart() -> None:
    report = metrics_report() | {
        "reported": [
            {"name": "train_seconds", "value": 12.5, "unit": "s", "better": "lower"},
            {"name": "rmse", "value": 1},
        ],
        "disagreements": [{"key": "rmse", "reported": 1.0, "computed": 81234.5}],
    }
    rec = record(RunStatus.SUCCEEDED, report=report)
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    page = render_html(rec, report_of(rec.report), {"ratio.svg": svg, "a.png": b"\x89PNG\r\n\x1a\n"})
    assert "src='data:image/svg+xml;base64," in page and "src='data:image/png;base64," in page
    assert "<script>" not in page  # the SVG's script is inside base64, in an <img>: it never runs
    assert "<td>train_seconds</td><td>12.5</td><td>s</td><td>lower</td>" in page
    assert "<td>rmse</td><td>1</td>" not in page  # a statistic of modelrun's is never the model's to show
    assert "it reported RMSE 1 (modelrun: 81,234)" in page


def test_every_grouping_column_is_tabled_and_the_first_charted() -> None:
    import numpy as np

    from modelrun.domain.comparing import results_report
    from modelrun.domain.documents import MetricsDocument
    from modelrun.domain.evaluation import Sales
    from modelrun.domain.report import check_run

    rng = np.random.default_rng(3)
    price = np.round(np.exp(rng.normal(13, 0.4, 400)))
    sales = Sales(
        [f"s{i}" for i in range(400)],
        price,
        price * np.exp(rng.normal(0, 0.1, 400)),
        {"area": [str(i % 3) for i in range(400)], "township": ["north" if i % 2 else "south" for i in range(400)]},
    )
    doc = MetricsDocument(schema_version="2", run_id="r", predictions="p.csv", groups=["area", "township"])
    found, _ = results_report("SUCCEEDED", doc, None, sales, None, [], resamples=20)
    rec = record(RunStatus.SUCCEEDED, report=found.stored(), gate={"kind": "default"})  # judged
    text = check_run(rec).text or ""
    assert "| group | sales |" in text and "| area: 0 |" in text and "| township: north |" in text
    comment = render_comment([rec])
    chart = comment.split('title "COD by market area"', 1)[1].split("```", 1)[0]
    assert '"0"' in chart and "north" not in chart  # the first grouping column's values only
