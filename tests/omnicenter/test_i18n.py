"""Everything user-visible is translatable; English, Russian and Polish ship."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from django.conf import settings

TEMPLATES_DIR = Path(settings.BASE_DIR) / "templates"
LOADS_I18N = re.compile(r"{%\s*load\s+[^%]*\bi18n\b[^%]*%}")
VISIBLE_ATTRIBUTES = re.compile(r"""\b(?:title|placeholder|alt|aria-label)\s*=\s*(["'])(.*?)\1""", re.S)


def has_visible_text(source: str) -> bool:
    """Whether a template shows literal words to a person: text between tags, or text in the
    attributes a browser displays or reads aloud. Product names alone do not count."""
    source = re.sub(r"{#.*?#}|{%\s*comment\s*%}.*?{%\s*endcomment\s*%}", "", source, flags=re.S)
    source = re.sub(r"<(script|style)\b.*?</\1>", "", source, flags=re.S | re.I)
    attribute_text = " ".join(value for _, value in VISIBLE_ATTRIBUTES.findall(source))
    text = re.sub(r"{%.*?%}|{{.*?}}", " ", re.sub(r"<[^>]*>", " ", source), flags=re.S)
    attribute_text = re.sub(r"{%.*?%}|{{.*?}}", " ", attribute_text, flags=re.S)
    words = re.findall(r"[^\W\d_]{2,}", text + " " + attribute_text)
    return any(word != "Omnicenter" for word in words)


def templates() -> list[Path]:
    return sorted(TEMPLATES_DIR.rglob("*.html")) + sorted(TEMPLATES_DIR.rglob("*.txt"))


@pytest.mark.parametrize(("source", "visible"), [
    ("<p>Hello</p>", True),
    ('<input placeholder="Search">', True),
    ("{% load i18n %}<p>{% translate 'Hello' %}</p>", False),
    ("<td>{{ ticket.subject }}</td>{# a note #}", False),
    ("<title>Omnicenter</title><script>const ready = true;</script>", False),
])
def test_visible_text_detection(source, visible):
    assert has_visible_text(source) is visible


def test_there_are_templates_to_scan():
    assert any(path.name == "base.html" for path in templates())


def test_every_template_with_visible_text_loads_i18n():
    missing = [
        str(path.relative_to(TEMPLATES_DIR))
        for path in templates()
        if has_visible_text(path.read_text()) and not LOADS_I18N.search(path.read_text())
    ]

    assert missing == [], f"templates with visible text but no {{% load i18n %}}: {missing}"


def test_english_russian_and_polish_ship_with_english_as_the_source():
    assert [code for code, _ in settings.LANGUAGES] == ["en", "ru", "pl"]
    assert settings.LANGUAGE_CODE == "en"
    assert settings.USE_I18N
    assert Path(settings.BASE_DIR) / "locale" in [Path(p) for p in settings.LOCALE_PATHS]


@pytest.mark.django_db
@pytest.mark.parametrize("language", ["en", "ru", "pl"])
def test_each_language_is_served_when_the_browser_asks_for_it(client, language):
    response = client.get("/accounts/login/", HTTP_ACCEPT_LANGUAGE=f"{language},en;q=0.5")

    assert f'<html lang="{language}">' in response.content.decode()
    assert response["Content-Language"] == language


@pytest.mark.django_db
def test_unsupported_browser_language_falls_back_to_english(client):
    response = client.get("/accounts/login/", HTTP_ACCEPT_LANGUAGE="de")

    assert '<html lang="en">' in response.content.decode()


def test_shipped_catalogs_compile_with_matching_placeholders():
    catalogs = sorted((Path(settings.BASE_DIR) / "locale").glob("*/LC_MESSAGES/*.po"))
    for po in catalogs:
        # --check-format refuses a translation whose %(name)s / {name} placeholders differ from the source.
        result = subprocess.run(["msgfmt", "--check-format", "-o", "/dev/null", str(po)],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, f"{po}: {result.stderr}"
    assert {po.parent.parent.name for po in catalogs} == {"ru", "pl"}  # English is the source
