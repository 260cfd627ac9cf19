"""Catalog fixtures: a Russian catalog of the rule explanations.

The project's locale/ is regenerated and translated by the lead after merging, so these tests
compile their own Russian catalog of the explanations (with msgfmt, as compilemessages does) and
put it first in LOCALE_PATHS. That exercises the real gettext path: the explanation is looked up in
the language the caller asked for, not the active one.
"""

from __future__ import annotations

import subprocess

import pytest

RUSSIAN = {
    "%(product)s is not available.": "%(product)s недоступен.",
    "%(product)s is not sold in market %(market)s.": "%(product)s не продаётся на рынке %(market)s.",
    "%(product)s is an option or add-on and needs a main product in the configuration.":
        "%(product)s — опция или дополнение, и в конфигурации нужен основной продукт.",
    "%(product)s requires %(other)s; add %(other)s to the configuration.":
        "%(product)s требует %(other)s; добавьте %(other)s в конфигурацию.",
    "%(product)s cannot be combined with %(other)s.": "%(product)s нельзя сочетать с %(other)s.",
    "%(product)s cannot be combined with %(other)s, which the customer already owns.":
        "%(product)s нельзя сочетать с %(other)s, который у клиента уже есть.",
    "%(product)s needs a quantity of at least %(min)s (asked for %(quantity)s).":
        "Для %(product)s нужно не меньше %(min)s (запрошено %(quantity)s).",
    "%(product)s allows a quantity of at most %(max)s (asked for %(quantity)s).":
        "Для %(product)s можно не больше %(max)s (запрошено %(quantity)s).",
    "%(product)s works only with one of: %(others)s.": "%(product)s работает только с одним из: %(others)s.",
    "Choose only one of “%(group)s”: %(products)s.": "Выберите только одно из «%(group)s»: %(products)s.",
    "The offer starts on %(date)s.": "Предложение начинается %(date)s.",
}


def _po(entries: dict[str, str]) -> str:
    def quote(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

    header = 'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=UTF-8\\n"\n"Language: ru\\n"\n\n'
    body = "".join(f"#, python-format\nmsgid {quote(k)}\nmsgstr {quote(v)}\n\n" for k, v in entries.items())
    return header + body


@pytest.fixture
def russian(settings, tmp_path):
    directory = tmp_path / "locale" / "ru" / "LC_MESSAGES"
    directory.mkdir(parents=True)
    (directory / "django.po").write_text(_po(RUSSIAN), encoding="utf-8")
    subprocess.run(["msgfmt", "-o", str(directory / "django.mo"), str(directory / "django.po")], check=True)
    settings.LOCALE_PATHS = [tmp_path / "locale", *settings.LOCALE_PATHS]
    return RUSSIAN
