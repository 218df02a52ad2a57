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
