"""Which languages the knowledge base has, and the PostgreSQL text-search configuration of each.

en, ru and pl ship. Another language is added by listing it in the ``KB_LANGUAGES`` setting
(default: the interface languages); without a configuration of its own here it is searched with
``simple`` (no stemming, still typo-tolerant through trigrams).
"""

from __future__ import annotations

from django.conf import settings

# Polish has no stemmer in PostgreSQL: `polish_unaccent` (migration 0002) lowercases and removes
# diacritics, so "zamówienie" and "zamowienie" meet.
SEARCH_CONFIGS = {"en": "english", "ru": "russian", "pl": "polish_unaccent"}
SHORT_CHANNELS = frozenset({"sms", "whatsapp", "chat", "webchat", "telegram", "messenger", "instagram"})
RICH_CHANNELS = frozenset({"email", "portal", "help"})
CHANNELS = sorted(SHORT_CHANNELS | RICH_CHANNELS)


def kb_languages() -> list[str]:
    return list(getattr(settings, "KB_LANGUAGES", None) or [code for code, _name in settings.LANGUAGES])


def search_config(language: str) -> str:
    return SEARCH_CONFIGS.get(language, "simple")


def best_language(requested: str | None, available: list[str], *, source: str) -> str | None:
    """The requested language if translated, else the default language, else the source."""
    for candidate in (requested, settings.LANGUAGE_CODE, source):
        if candidate and candidate in available:
            return candidate
    return available[0] if available else None
