"""Escaped text must stay readable as well as inert (what a reviewer sees on GitHub).

The attacker is a PR author whose run was approved: every free-text field of the run request
(note, branch name, login) and everything the model wrote (metric names, strings, log lines)
is theirs. The comment is parsed here as GitHub would (CommonMark + GFM tables, raw HTML on),
with markdown-it-py; what GitHub adds on top (GFM autolinks for ``https://`` and ``www.``,
e-mail autolinks, @mentions, ``#1`` / ``GH-1`` / ``owner/repo#1`` references) is checked on the
text markdown-it leaves, which is the text GitHub's filters see.
"""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Any

import pytest
from markdown_it import MarkdownIt
from markdown_it.token import Token

from modelrun.domain.report import MARKER, notification, render_comment
from modelrun.domain.run import RunRecord
from modelrun.domain.status import RunStatus
from modelrun.domain.text import WORD_JOINER, code, code_block, inert, slack_text, visible
from tests.records import LOG_URL, WORKFLOW_URL, stored_record

REPORT_URL = "https://s3.console.aws.amazon.com/s3/object/results?region=us-east-1&prefix=reports/x/report.html"
OUR_URLS = {WORKFLOW_URL, LOG_URL, REPORT_URL}

ATTACKS = [
    "https://evil.example/login",
    "see http://evil.example and ftp://evil.example/x",
    "www.evil.example",
    "WWW.EVIL.EXAMPLE/path",
    "<https://evil.example>",
    "<mailto:x@evil.example>",
    "x@evil.example",
    "[a][1]",
    "[1]: https://evil.example",
    "[click](https://evil.example)",
    "[click](javascript:alert(1))",
    "![img](https://evil.example/pixel.png)",
    "[x]: <https://evil.example> 'title'",
    "[^1] footnote",
    "#1 and GH-2 and gh-3 and county-assessor/avm#4 and owner/repo#5",
    "@octocat @county-assessor/maintainers hi",
    "<img src=x onerror=alert(1)>",
    "<a href='https://evil.example'>x</a>",
    "<script>alert(1)</script>",
    "<!-- modelrun:sticky-comment v1 -->",
    "&lt;script&gt; &#64;octocat &#35;1",
    "ends with a backslash \\",
    "\\",
    "back`tick and ``two`` and ```three",
    "`",
    "\\`escaped`\\",
    "a | b | c",
    "line one\nline two\r\n| injected | row |",
    "```\n# heading\n```",
    "$x^2$ and $$math$$",
    "nul\x00 esc\x1b[31m red \x1b]8;;https://evil.example\x1b\\link\x1b]8;;\x1b\\ bell\x07 del\x7f c1\x9b",
    "bidi \u202eevil\u202c \u2066iso\u2069 \u200fmark",
    "zero\u200bwidth \u200cjoiner \u200dzwj \ufeffbom \u2060wj",
    "lone \ud800 surrogate",
    "*emph* _emph_ ~~strike~~ **bold**",
    "h<sub>tt</sub>ps://evil.example",
]

_MD = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
# Tags the backend writes itself; user text must never add one.
_OUR_TAGS = re.compile(r"<code>|</code>|<sub>|</sub>|<details(?: open)?>|</details>|<summary>|</summary>")
# What GitHub turns into a link or a notification in plain text (GFM autolinks + GitHub's filters).
# GFM's autolinks apply in any text, inside raw <code> too (cmark-gfm doesn't know it's code);
# GitHub's mention and reference filters skip <code>, <pre> and <a>.
_GFM_AUTOLINKS = {
    "url autolink": re.compile(r"(?i)[a-z][a-z0-9+.-]*://"),
    "www autolink": re.compile(r"(?i)www\."),
    "e-mail autolink": re.compile(r"\w@\w"),
}
_GITHUB_REFERENCES = {
    "mention": re.compile(r"@\w"),
    "issue reference": re.compile(r"#\d"),
    "GH- reference": re.compile(r"(?i)gh-\d"),
}


def _invisible(text: str) -> list[str]:
    """Characters a reader can't see that change what is read (our word joiner excepted)."""
    return [
        f"U+{ord(c):04X}"
        for c in text
        if c != WORD_JOINER and c not in "\n\t" and unicodedata.category(c) in ("Cc", "Cf", "Cs")
    ]


def problems(markdown: str) -> list[str]:
    """Everything GitHub would render from this Markdown that the backend did not put there."""
    found: list[str] = []

    in_code = False

    def walk(tokens: list[Token]) -> None:
        nonlocal in_code
        for token in tokens:
            if token.type in ("link_open", "image"):
                href = str(token.attrs.get("href") or token.attrs.get("src"))
                if token.type == "image" or href not in OUR_URLS:
                    found.append(f"{token.type} to {href!r}")
            elif token.type == "html_inline":
                if token.content != MARKER and not _OUR_TAGS.fullmatch(token.content):
                    found.append(f"raw HTML {token.content!r}")
                in_code = {"<code>": True, "</code>": False}.get(token.content, in_code)
            elif token.type == "html_block":
                leftover = _OUR_TAGS.sub("", token.content.replace(MARKER, ""))
                if "<" in leftover:
                    found.append(f"raw HTML block {token.content!r}")
            elif token.type == "text":
                patterns = _GFM_AUTOLINKS if in_code else _GFM_AUTOLINKS | _GITHUB_REFERENCES
                for what, pattern in patterns.items():
                    if pattern.search(token.content):
                        found.append(f"{what} in {token.content!r}")
            if token.type not in ("fence", "code_block", "code_inline"):
                hidden = _invisible(token.content)
                if hidden and token.type != "inline":
                    found.append(f"invisible {hidden} in {token.type} {token.content!r}")
            if token.children:
                walk(token.children)

    walk(_MD.parse(markdown))
    return found


def inline_tokens(markdown: str) -> list[Token]:
    tokens = _MD.parse(markdown)
    return [child for token in tokens if token.children for child in token.children]


# -- the checker itself sees the attacks (or these tests would prove nothing) ----------------------
@pytest.mark.parametrize(
    "raw",
    [
        "https://evil.example",
        "www.evil.example",
        "<https://evil.example>",
        "[a][1]\n\n[1]: https://evil.example",
        "![x](https://evil.example/p.png)",
        "#1",
        "GH-1",
        "owner/repo#2",
        "@octocat",
        "<img src=x>",
        "a\u202eb",
        "<code>https://evil.example</code>",
        "<code>x@evil.example</code>",
    ],
)
def test_the_checker_catches_raw_attacks(raw: str) -> None:
    assert problems(raw), raw


def test_the_checker_knows_github_skips_code_for_references() -> None:
    assert problems("<code>#1 GH-2 o/r#3</code>") == []


# -- the helpers ------------------------------------------------------------------------------------
def test_punctuation_people_type_survives() -> None:
    assert inert("it's 63 -> 127 & more") == "it's 63 \\-&gt; 127 &amp; more"


def test_pipes_are_escaped_the_way_github_tables_expect() -> None:
    assert inert("a|b") == "a\\|b"


def test_code_spans_cannot_hold_links_or_mentions() -> None:
    rendered = code("feat/[x](https://evil.example)@team")
    assert "[" not in rendered and "](" not in rendered and "@" not in rendered
    assert rendered.startswith("<code>") and rendered.endswith("</code>")


@pytest.mark.parametrize("evil", ATTACKS)
def test_inert_text_renders_nothing(evil: str) -> None:
    for rendered in (inert(evil), f"> {inert(evil, 300)}", f"| a | b |\n|---|---|\n| {inert(evil)} | x |"):
        assert problems(rendered) == [], rendered
        assert "\n" not in inert(evil)


@pytest.mark.parametrize("evil", ATTACKS)
def test_code_renders_nothing_and_always_closes(evil: str) -> None:
    rendered = code(evil) + " after *this*"
    assert problems(rendered) == [], rendered
    tokens = [t for t in inline_tokens(rendered) if t.type == "html_inline"]
    assert [t.content for t in tokens] == ["<code>", "</code>"], tokens
    # what follows the span is still Markdown: the span ended where it should
    assert any(t.type == "em_open" for t in inline_tokens(rendered))


@pytest.mark.parametrize("evil", ["x\\", "\\", "a\\`", "`", "``x``", "a`b\\"])
def test_a_backslash_or_backtick_cannot_escape_the_code_span(evil: str) -> None:
    rendered = f"{code(evil)} → {code('main')}"
    texts = [t for t in inline_tokens(rendered)]
    assert [t.content for t in texts if t.type == "html_inline"] == ["<code>", "</code>", "<code>", "</code>"]
    assert "\\" not in code(evil) and "`" not in code(evil)


def test_code_text_reads_the_same() -> None:
    shown = "".join(t.content for t in inline_tokens(code("feat/a|b`c\\d")) if t.type == "text")
    assert shown.replace(WORD_JOINER, "") == "feat/a|b`c\\d"


@pytest.mark.parametrize("branch", ["fix/#123-crash", "gh-123-retry", "GH-7", "release/2026.01"])
def test_branch_names_in_code_stay_copyable(branch: str) -> None:
    # GitHub links no references inside code: no word joiner needed, so copy and paste works
    shown = "".join(t.content for t in inline_tokens(code(branch)) if t.type == "text")
    assert shown == branch


@pytest.mark.parametrize("evil", ATTACKS)
def test_code_block_keeps_everything_inside_one_fence(evil: str) -> None:
    block = code_block(["starting", evil, "``` still inside", "`````", "done"])
    tokens = _MD.parse(block + "\n\nafter")
    fences = [t for t in tokens if t.type == "fence"]
    assert len(fences) == 1
    assert fences[0].content.splitlines()[-1] == "done"
    assert _invisible(fences[0].content) == []
    assert [t.type for t in tokens].count("paragraph_open") == 1  # only "after"


def test_links_and_references_are_broken_but_read_the_same() -> None:
    for text in ("https://evil.example", "www.evil.example", "x@evil.example", "#12", "GH-3", "o/r#4"):
        shown = "".join(t.content for t in inline_tokens(inert(text)) if t.type == "text")
        assert shown.replace(WORD_JOINER, "") == text
        assert shown != text


def test_hex_runs_of_seven_or_more_never_name_a_commit_but_read_the_same() -> None:
    """Issue 21: GitHub links a 7+ hex-digit run (a SHA prefix) to the commit; none is left."""
    for text in ("fixes 4f3c2a1", "see 4F3C2A1B9D0E", "c" * 40, "run 1234567 of deadbeefcafe7", "x/y@abcdef0"):
        shown = "".join(t.content for t in inline_tokens(inert(text)) if t.type == "text")
        assert shown.replace(WORD_JOINER, "") == text
        assert not re.search(r"[0-9a-f]{7,}", shown, re.IGNORECASE), shown
    assert inert("abc123 and 123456") == "abc123 and 123456"  # six or fewer: nothing to break
    assert "4f3c2a1" in code("4f3c2a1")  # a code span links no commit: copyable as it is


def test_control_bidi_and_zero_width_characters_are_made_visible_or_dropped() -> None:
    assert visible("a\x1b[31mb\x00c") == "a\ufffd[31mb\ufffdc"
    assert visible("x\u202ey\u2066z") == "x\ufffdy\ufffdz"
    assert visible("zero\u200bwidth\ufeff") == "zerowidth"
    assert visible("lone \ud800") == "lone \ufffd"
    assert visible("tab\tnew\nline", keep="\t\n") == "tab\tnew\nline"
    for helper in (inert, code):
        out = helper("a\u202eb\u200bc\x1b[0m")
        assert "\u202e" not in out and "\u200b" not in out and "\x1b" not in out


def test_long_text_is_cut_with_an_ellipsis() -> None:
    assert inert("x" * 500, 20).endswith("…") and len(inert("x" * 500, 20)) == 20


# -- a whole comment built from a hostile run ----------------------------------------------------------
def make_record(status: RunStatus = RunStatus.SUCCEEDED, **fields: Any) -> RunRecord:
    return stored_record(status, **fields)


def hostile_report(evil: str) -> dict[str, Any]:
    stat = {"value": 9.1, "ci": [8.7, 9.6], "standard": evil, "pass": True}
    return {
        "metrics": {"rmse": 81234.5, "mae": 50321.0, "r2": 0.87, evil: 1.5},
        "ratio_study": {"cod": stat, "prd": stat | {"value": 1.04, "pass": False}},
        "model": {"library": evil, "device_used": evil},
        "data": {"n_train": 31000, "n_test": 8000},
        "report_url": REPORT_URL,
    }


def hostile_text_fields(evil: str) -> dict[str, Any]:
    one_line = " ".join(evil.split())  # head_ref can't hold a newline (git and the contract refuse)
    return {"note": evil, "head_ref": one_line, "base_ref": one_line, "triggered_by": one_line}


@pytest.mark.parametrize("evil", ATTACKS)
def test_a_succeeded_comment_from_hostile_text_renders_only_our_links(evil: str) -> None:
    body = render_comment([make_record(report=hostile_report(evil), **hostile_text_fields(evil))])
    assert problems(body) == []
    assert body.count(MARKER) == 1
    # the note stays one quoted line, the tables keep their shape
    tokens = _MD.parse(body)
    assert [t.type for t in tokens].count("blockquote_open") == 1
    assert [t.type for t in tokens].count("table_open") == 2
    for table in re.findall(r"(?m)(?:^\|.*\n)+", body):
        counts = {len(re.findall(r"(?<!\\)\|", row)) for row in table.splitlines()}
        assert len(counts) == 1, table


@pytest.mark.parametrize("evil", ATTACKS)
def test_a_failed_comment_from_hostile_text_renders_only_our_links(evil: str) -> None:
    tail = ["starting", evil, "``` still inside", f"@someone {evil}", "<script>x</script> done"]
    rec = make_record(
        RunStatus.FAILED,
        status_reason=evil,
        exit_code=3,
        report={"status": "FAILED", "log_tail": tail},
        **hostile_text_fields(evil),
    )
    body = render_comment([rec])
    assert problems(body) == []
    fences = [t for t in _MD.parse(body) if t.type == "fence"]
    assert len(fences) == 1 and fences[0].content.splitlines()[-1] == "<script>x</script> done"


@pytest.mark.parametrize("evil", ATTACKS[:12])
def test_history_rows_from_hostile_runs_render_only_our_links(evil: str) -> None:
    older = make_record(RunStatus.SUPERSEDED, run_id="avm-older", **hostile_text_fields(evil))
    body = render_comment([make_record(RunStatus.RUNNING, **hostile_text_fields(evil)), older])
    assert problems(body) == []


# -- Slack (AWS Chatbot) -----------------------------------------------------------------------------
SLACK_ATTACKS = [
    "<!channel>",
    "<!here> look",
    "<!everyone>",
    "<@U12345678>",
    "<#C12345678>",
    "<!subteam^S123|@team>",
    "<https://evil.example|click here>",
    "<https://evil.example>",
    "a & b &amp; &lt;!channel&gt;",
    "@channel @here",
    "https://evil.example",
    "new\nline \x1b[31m \u202e",
]


def _slack_control_sequences(text: str) -> list[str]:
    """Slack's control sequences: anything in <...>, which Slack reads as a link, mention or command."""
    return re.findall(r"<[^<>]*>", text)


@pytest.mark.parametrize("evil", SLACK_ATTACKS)
def test_slack_text_is_inert(evil: str) -> None:
    out = slack_text(evil)
    assert "<" not in out and ">" not in out
    assert re.sub(r"&(amp|lt|gt);", "", out).count("&") == 0  # every & is an escape we wrote
    assert "\n" not in out and "\x1b" not in out and "\u202e" not in out
    assert "@c" not in out and "@h" not in out and "://" not in out


@pytest.mark.parametrize("evil", SLACK_ATTACKS)
@pytest.mark.parametrize("status", [RunStatus.SUCCEEDED, RunStatus.FAILED])
def test_notification_keeps_user_text_inert_and_our_link_working(evil: str, status: RunStatus) -> None:
    rec = make_record(status, pr_number=None, pr_key=None, status_reason=evil, **hostile_text_fields(evil))
    if status is RunStatus.SUCCEEDED:
        rec = rec.model_copy(update={"report": hostile_report(evil)})
    note = notification(rec)
    chatbot = json.loads(json.loads(note["message"])["default"])
    title, description = chatbot["content"]["title"], chatbot["content"]["description"]
    assert _slack_control_sequences(title) == []
    assert _slack_control_sequences(description) == [f"<{WORKFLOW_URL}|workflow run>"]
    assert "\n" not in title and description.count("\n") == 1
    assert len(title) <= 250 and not re.search(r"&[a-z]*$", title)
    assert note["subject"].isascii() and "\n" not in note["subject"] and len(note["subject"]) < 100
    email = json.loads(note["message"])["email"]
    assert _invisible(email) == []


def test_notification_leaves_a_link_out_when_its_url_could_break_out() -> None:
    rec = make_record(workflow_url="https://github.com/x|<!channel>")
    description = json.loads(json.loads(notification(rec)["message"])["default"])["content"]["description"]
    assert _slack_control_sequences(description) == []


def test_notification_of_a_long_branch_fits_chatbot() -> None:
    rec = make_record(pr_number=None, pr_key=None, head_ref="&" * 300)
    title = json.loads(json.loads(notification(rec)["message"])["default"])["content"]["title"]
    assert len(title) <= 250 and title.endswith("&amp;")


# -- the check run, the charts and the comparison from a hostile run ------------------------------------
def hostile_full_report(evil: str) -> dict[str, Any]:
    area = {"area": evil or "x", "n": 40, "metrics": {"mdape": 9.0}, "ratio_study": {"cod": {"value": 9.0}}}
    deciles = [{"low": 1e5 * i, "high": 1e5 * i + 9e4, "n": 20, "this": 0.95, "base": None} for i in range(1, 11)]
    return hostile_report(evil) | {
        "data": {
            "n_train": 31000,
            "n_test": 8000,
            "source": evil,
            "trimming": evil,
            "holdout": {"from": evil, "to": evil},
        },
        "baseline": {"run_id": evil, "head_sha": "0" * 40, "by_area": [area], "metrics": {"rmse": 1.0}},
        "by_area": [area, area | {"area": f"{evil} 2"}],
        "deciles": deciles,
        "params_diff": ["--- main: params.yaml", "+++ this run: params.yaml", f"-{evil}", f"+{evil}", "```", "``` x"],
        "comparison": {"status": "differ", "reason": evil},
    }


@pytest.mark.parametrize("evil", ATTACKS)
def test_a_check_run_from_hostile_text_renders_only_our_links(evil: str) -> None:
    from modelrun.domain.report import check_run

    # judged by an invalid gate whose message carries the hostile text (a key's name, say)
    gate = {"kind": "invalid", "error": evil}
    rec = make_record(report=hostile_full_report(evil), gate=gate, **hostile_text_fields(evil))
    view = check_run(rec)
    for part in (view.summary, view.text or "", view.title):
        assert problems(part) == [], part[:300]
    assert view.text is not None
    fences = [t for t in _MD.parse(view.text) if t.type == "fence"]
    assert len(fences) == 1 and fences[0].content.splitlines()[-1] == "``` x"  # the diff stays in one block
    body = render_comment([rec])
    assert problems(body) == []
    assert "```mermaid" in body  # the decile chart: nothing of the model's in it but numbers


@pytest.mark.parametrize("evil", ATTACKS[:12])
def test_an_unfinished_check_run_from_hostile_text_renders_only_our_links(evil: str) -> None:
    from modelrun.domain.report import check_run

    for status in (RunStatus.QUEUED, RunStatus.RUNNING):
        view = check_run(make_record(status, **hostile_text_fields(evil)), runs_ahead=2)
        assert problems(view.summary) == [] and "\n" not in view.title


_HTML_TAGS = {
    "html", "head", "meta", "title", "style", "body", "h1", "h2", "p", "code", "div", "table", "tr", "th", "td",
    "figure", "figcaption", "svg", "text", "line", "rect", "polyline", "circle", "span", "pre", "img", "strong",
}  # fmt: skip


@pytest.mark.parametrize("evil", ATTACKS)
def test_report_html_from_hostile_text_holds_only_our_markup(evil: str) -> None:
    from html.parser import HTMLParser

    from modelrun.domain.documents import report_of
    from modelrun.domain.html_report import Distribution, render_html

    found: list[tuple[str, list[tuple[str, str | None]]]] = []

    class Tags(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            found.append((tag, attrs))

    rec = make_record(report=hostile_full_report(evil), **hostile_text_fields(evil))
    page = render_html(
        rec, report_of(rec.report), {evil[:20] or "x": b"\x89PNG"}, Distribution(0.5, 1.5, [1, 2], [2, 1])
    )
    Tags().feed(page)
    assert {tag for tag, _ in found} <= _HTML_TAGS
    for tag, attrs in found:
        for name, value in attrs:
            assert not name.startswith("on"), (tag, name)
            if tag == "img" and name == "src":
                assert str(value).startswith("data:image/png;base64,")
