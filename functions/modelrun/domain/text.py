"""User text made inert for what people read: Markdown on GitHub, Slack, e-mail, a terminal.

Everything user-written (branch names, notes, status reasons, log lines, anything the model
wrote) goes through ``inert``, ``code`` or ``code_block`` before it reaches Markdown, so it can't
inject HTML, @-mention people, add links or break a table; links come only from URLs the backend
built (``link``).
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Iterable
from urllib.parse import quote

# `<`, `>` and `&` are left to html.escape: a backslash before an entity would show it raw.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!~|$-])")
REPLACEMENT = "\ufffd"  # what a control or bidi character in user text is shown as
# Bidi embeddings, overrides, isolates and marks reorder what people read ("Trojan Source").
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
WORD_JOINER = "\u2060"
# Where GitHub would make a link or a notification out of plain text: URL autolinks (`https://`,
# `ftp://`, `www.`), e-mail autolinks and @mentions (`@`), issue references (`#1`,
# `owner/repo#2`, `GH-3`). A word joiner at each spot stops them and reads the same.
_LINK_SPOTS = re.compile(r"(?<=:)(?=//)|(?<=www)(?=\.)|(?<=[@#])|(?<=gh-)(?=\d)", re.IGNORECASE)
# GitHub links a run of 7 or more hex digits to the commit it names (a SHA prefix) when one
# exists: a word joiner after every 6th digit leaves no such run, and reads the same (issue 21).
_HEX_RUN = re.compile(r"[0-9a-f]{7,}", re.IGNORECASE)
# Inside <code> GitHub links no references and pings nobody, but GFM's autolinks still apply.
_AUTOLINK_SPOTS = re.compile(r"(?<=:)(?=//)|(?<=www)(?=\.)|(?<=@)", re.IGNORECASE)


def visible(text: object, keep: str = "") -> str:
    """User text with nothing invisible left in it that changes what people read or what a terminal does.

    Control characters (NUL, ESC, CR, ...; those in ``keep`` excepted), bidi controls and lone
    surrogates become U+FFFD; other invisible format characters (zero-width spaces and joiners,
    BOM, tags) are dropped.
    """
    out = []
    for char in str(text):
        if char in keep:
            out.append(char)
            continue
        category = unicodedata.category(char)
        if category in ("Cc", "Cs") or char in _BIDI:
            out.append(REPLACEMENT)
        elif category != "Cf":
            out.append(char)
    return "".join(out)


def one_line(text: object, limit: int) -> str:
    # whitespace (newlines included: they would end a table row) collapses to single spaces
    value = " ".join(visible(text, keep="\t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85").split())
    return value if len(value) <= limit else value[: limit - 1] + "…"


def break_links(text: str, references: bool = True) -> str:
    """A word joiner wherever GitHub (or Slack) would otherwise autolink, mention or reference
    (commit SHAs included; ``references=False``: autolinks only, for code, where GitHub links no
    commit and branch names stay copyable)."""
    text = (_LINK_SPOTS if references else _AUTOLINK_SPOTS).sub(WORD_JOINER, text)
    return _HEX_RUN.sub(_split_hex, text) if references else text


def _split_hex(match: re.Match[str]) -> str:
    run = match.group(0)
    return WORD_JOINER.join(run[i : i + 6] for i in range(0, len(run), 6))


def inert(text: object, limit: int = 200) -> str:
    """User-written text made safe for Markdown inline use (tables included)."""
    value = break_links(one_line(text, limit))
    value = _MARKDOWN_SPECIAL.sub(r"\\\1", value)  # `|` becomes `\|`, GitHub's pipe inside tables
    return html.escape(value, quote=False)


def code(text: object, limit: int = 120) -> str:
    """Inline code for identifiers such as branch names: nothing in it can end it early or render.

    GitHub parses Markdown inside ``<code>``, so every ASCII punctuation character is an entity:
    no backslash, backtick, pipe, bracket or ``<`` of the text is syntax (a text ending in a backslash
    can't escape the closing tag), and the word joiners of :func:`break_links` stop autolinks.
    """
    value = break_links(one_line(text, limit), references=False)
    return "<code>" + value.translate(_ENTITIES) + "</code>"


_ENTITIES = {c: f"&#{c};" for c in range(0x21, 0x7F) if not chr(c).isalnum()}


def code_block(lines: Iterable[str], limit: int = 4000) -> str:
    """A fenced block longer than any backtick run inside it: nothing inside renders."""
    body = "\n".join(visible(line, keep="\t\n") for line in lines)[-limit:]
    longest = max((len(m) for m in re.findall(r"`+", body)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{body}\n{fence}"


def link(label: str, url: str | None) -> str:
    """A markdown link to a URL the backend built; anything else is left out, not linked."""
    if not url or not _LINK_TARGET.match(url):
        return ""
    return f"[{label}]({quote(url, safe=_URL_SAFE)})"


# https only, no characters that could end the link target or start markup.
_LINK_TARGET = re.compile(r"^https://[A-Za-z0-9.-]+(?::[0-9]+)?/[^\s()<>\[\]`\\]*$")
_URL_SAFE = "/:?&=#%+,;@~!$*'-._"


def slack_escape(text: str) -> str:
    """``&``, ``<`` and ``>`` as Slack wants them in message text: no ``<!channel>``, ``<@U1>`` or ``<url|label>``."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_text(text: object, limit: int = 200) -> str:
    """User text for a Slack (AWS Chatbot) title or description: one line, no control sequences, no links."""
    return slack_escape(break_links(one_line(text, limit)))


def slack_link(url: str, label: str) -> str:
    """A Slack link to a URL the backend built; anything that could break out of ``<url|label>`` stays text."""
    if re.fullmatch(r"https://[^\s<>|]+", url):
        return f"<{slack_escape(url)}|{slack_escape(label)}>"
    return slack_text(f"{label}: {url}", 400)
