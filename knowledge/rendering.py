"""Markdown to safe HTML: markdown-it-py (CommonMark + tables, raw HTML off), then nh3."""

from __future__ import annotations

import html as _html
import re

import nh3
from markdown_it import MarkdownIt

from tickets.html import ALLOWED_ATTRIBUTES, ALLOWED_TAGS

_md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).enable("table")
_BLOCK_END = re.compile(r"</(p|li|h[1-6]|tr|pre|blockquote)>|<br\s*/?>")
_SPACES = re.compile(r"[ \t]+")
_BLANKS = re.compile(r"\n{3,}")


def markdown_to_html(text: str) -> str:
    if not text:
        return ""
    return nh3.clean(
        _md.render(text),
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto", "tel"},
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )


def html_to_text(html: str) -> str:
    text = nh3.clean(_BLOCK_END.sub(lambda m: m.group(0) + "\n", html), tags=set())
    text = _SPACES.sub(" ", _html.unescape(text))
    return _BLANKS.sub("\n\n", "\n".join(line.strip() for line in text.splitlines())).strip()


def markdown_to_text(text: str) -> str:
    return html_to_text(markdown_to_html(text))
