"""Which text of a translation a channel gets: its variant, else the main body."""

from __future__ import annotations

from dataclasses import dataclass

from knowledge.languages import RICH_CHANNELS, SHORT_CHANNELS
from knowledge.models import Translation

SHORT = "short"
RICH = "rich"
MAIN = "main"


@dataclass(frozen=True)
class Served:
    variant: str  # "short", "rich" or "main" (the fallback)
    text: str  # plain text, for a message composer or an SMS
    html: str  # sanitized HTML
    markdown: str


def variant_kind(channel: str | None) -> str:
    if channel in SHORT_CHANNELS:
        return SHORT
    if channel in RICH_CHANNELS:
        return RICH
    return MAIN


def serve(translation: Translation, channel: str | None) -> Served:
    from django.utils.html import escape, linebreaks

    kind = variant_kind(channel)
    if kind == SHORT and translation.short_text.strip():
        text = translation.short_text.strip()
        return Served(SHORT, text, linebreaks(escape(text)), text)
    if kind == RICH and translation.rich_body.strip():
        from knowledge.rendering import html_to_text

        return Served(RICH, html_to_text(translation.rich_html), translation.rich_html, translation.rich_body)
    return Served(MAIN, translation.body_text, translation.body_html, translation.body)
