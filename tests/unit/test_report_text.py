"""Escaped text must stay readable as well as inert (what a reviewer sees on GitHub)."""

from __future__ import annotations

from modelrun.domain.report import code, inert


def test_punctuation_people_type_survives() -> None:
    assert inert("it's 63 -> 127 & more") == "it's 63 \\-&gt; 127 &amp; more"


def test_pipes_are_escaped_the_way_github_tables_expect() -> None:
    assert inert("a|b") == "a\\|b"


def test_code_spans_cannot_hold_links_or_mentions() -> None:
    rendered = code("feat/[x](https://evil.example)@team")
    assert "[" not in rendered and "](" not in rendered and "@" not in rendered
    assert rendered.startswith("<code>") and rendered.endswith("</code>")
