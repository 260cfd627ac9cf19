"""Search relevance on PostgreSQL in English, Russian and Polish: stemming (inflected forms),
typos through trigrams, title matches first, highlighted snippets; and the SQLite-style fallback."""

from __future__ import annotations

import pytest

from knowledge import search
from knowledge.models import Translation
from tests.knowledge.factories import ArticleFactory

pytestmark = pytest.mark.django_db


def titles(q: str, language: str, **kwargs) -> list[str]:
    return [t.title for t in search.search(Translation.objects.all(), q=q, language=language, **kwargs)]


@pytest.fixture
def russian():
    ArticleFactory(slug="track", language="ru", title="Как отследить заказ",
                   body="Номер заказа указан в письме с подтверждением. Статус обновляется каждый час.")
    ArticleFactory(slug="cancel", language="ru", title="Отмена покупки",
                   body="Все ваши заказы видны в личном кабинете, там же их можно отменить.")
    ArticleFactory(slug="delivery", language="ru", title="Сроки доставки", body="Курьер приезжает с 9 до 18.")


@pytest.mark.parametrize("query", ["заказ", "заказы", "заказа", "заказов"])
def test_russian_query_finds_every_inflected_form_and_ranks_the_title_match_first(russian, query):
    found = titles(query, "ru")
    assert found == ["Как отследить заказ", "Отмена покупки"]


def test_english_stemming_typos_and_title_first():
    ArticleFactory(slug="reset", title="How to reset your password", body="Open Settings and choose Forgot password.")
    ArticleFactory(slug="orders", title="Where is my order", body="Orders ship in two days. We never ask for your password.")
    ArticleFactory(slug="unrelated", title="Opening hours", body="We answer from 9 to 5.")

    assert titles("password", "en") == ["How to reset your password", "Where is my order"]
    assert titles("ordering", "en") == ["Where is my order"]  # stemmed: order/orders/ordering
    assert titles("pasword reset", "en")[0] == "How to reset your password"  # two typos' worth
    assert titles("wher is my ordr", "en") == ["Where is my order"]
    assert titles("zebra", "en") == []


def test_polish_matches_without_diacritics_and_inflected_forms():
    ArticleFactory(slug="zwrot", language="pl", title="Zwrot zamówienia", body="Możesz zwrócić towar w ciągu 14 dni.")
    ArticleFactory(slug="dostawa", language="pl", title="Dostawa", body="Każde zamówienie wysyłamy kurierem.")

    assert titles("zamówienia", "pl") == ["Zwrot zamówienia", "Dostawa"]
    assert titles("zamowienie", "pl") == ["Zwrot zamówienia", "Dostawa"]  # no diacritics, other case
    assert titles("zwrot zamowenia", "pl") == ["Zwrot zamówienia"]  # a typo
    assert titles("kurier", "pl") == ["Dostawa"]


def test_search_stays_within_the_language_and_the_given_articles():
    ArticleFactory(slug="en-only", title="Refund policy", body="Refunds take five days.")
    ArticleFactory(slug="draft", title="Refund draft", body="Refunds.", status="draft")
    from knowledge.selectors import readable_translations

    assert titles("refund", "ru") == []
    visible = [t.title for t in search.search(readable_translations(None), q="refund", language="en")]
    assert visible == ["Refund policy"]


def test_snippets_highlight_matches_and_escape_the_text():
    article = ArticleFactory(slug="x", title="Payment", body="Pay by card <script>alert(1)</script> or by **bank transfer**.")
    translation = article.translations.get()
    marks = search.snippets([translation], q="transfer", language="en")
    assert "<mark>transfer</mark>" in marks[translation.pk]
    assert "<script>" not in marks[translation.pk]


@pytest.mark.parametrize("language", ["en", "ru", "pl"])
@pytest.mark.parametrize("q", ["?!", "'", "w i", "z"])
def test_snippets_of_a_query_without_words_or_of_short_words_only_never_fail(language, q):
    # Polish once built an empty tsquery for "?!" and ts_headline(…, , …) was an SQL syntax error.
    article = ArticleFactory(slug="x", language=language, title="Zwrot", body="Możesz zwrócić towar w ciągu 14 dni.")
    translation = article.translations.get()
    marks = search.snippets([translation], q=q, language=language)
    assert list(marks) == [translation.pk]
    assert "towar" in marks[translation.pk]


def test_suggestions_from_a_whole_message_match_any_of_its_words(russian):
    message = "Здравствуйте! Подскажите, пожалуйста, где мой заказ? Жду уже неделю."
    assert titles(message, "ru", any_word=True)[0] == "Как отследить заказ"


@pytest.mark.parametrize("message", ["Hi", "ok?", "Hi :)"])
def test_suggestions_from_a_message_of_short_words_only_find_nothing_instead_of_failing(russian, message):
    assert titles(message, "en", any_word=True) == []
    assert titles(message, "ru", any_word=True) == []


def test_fallback_search_used_on_sqlite_matches_word_starts_and_ranks_titles_first(russian):
    found = [t.title for t in search._search_fallback(Translation.objects.filter(language="ru"), "заказы")]
    assert found == ["Как отследить заказ", "Отмена покупки"]
    translation = Translation.objects.get(title="Отмена покупки")
    assert "<mark>заказы</mark>" in search._fallback_snippet(translation.body_text, "заказы")


def test_polish_configuration_uses_the_unaccent_dictionary_and_no_index_calls_unaccent():
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("""
            SELECT DISTINCT d.dictname FROM pg_ts_config_map m JOIN pg_ts_config c ON c.oid = m.mapcfg
            JOIN pg_ts_dict d ON d.oid = m.mapdict WHERE c.cfgname = 'polish_unaccent'""")
        dictionaries = {row[0] for row in cursor.fetchall()}
        cursor.execute("SELECT to_tsvector('polish_unaccent', 'Zażółć gęślą jaźń')::text")
        vector = cursor.fetchone()[0]
        # unaccent() is STABLE, not IMMUTABLE: PostgreSQL refuses it in an index expression, and no
        # index may try. Vectors are stored columns; the dictionary lives in the configuration.
        cursor.execute("SELECT indexname FROM pg_indexes WHERE schemaname = 'public' AND indexdef ILIKE '%%unaccent(%%'")
        calling = cursor.fetchall()
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'kb_searchentry_search_gin'")
        search_index = cursor.fetchone()[0]
    assert dictionaries == {"unaccent", "simple"}
    assert vector == "'gesla':2 'jazn':3 'zazolc':1"
    assert calling == []
    assert "USING gin (search_vector)" in search_index


def test_each_language_is_indexed_in_its_own_configuration():
    from django.db import connection

    for language, title in (("en", "Orders shipped"), ("ru", "Заказы отправлены"), ("pl", "Zamówienia wysłane")):
        ArticleFactory(slug=f"a-{language}", language=language, title=title, body="-")
    with connection.cursor() as cursor:
        cursor.execute("SELECT language, title_vector::text FROM knowledge_searchentry ORDER BY language")
        vectors = dict(cursor.fetchall())
    assert vectors == {"en": "'order':1 'ship':2", "pl": "'wyslane':2 'zamowienia':1", "ru": "'заказ':1 'отправл':2"}
