"""Demo articles load once, in three languages, and are found by search."""

from __future__ import annotations

import pytest

from knowledge import search
from knowledge.demo import load_demo_articles
from knowledge.models import Article
from knowledge.selectors import readable_translations

pytestmark = pytest.mark.django_db


def test_demo_articles_are_idempotent_multilingual_and_searchable():
    assert load_demo_articles() == 5
    assert load_demo_articles() == 0
    assert Article.objects.count() == 5
    from knowledge.services import _snapshot

    for article in Article.objects.all():  # as article_create would have left them
        assert article.versions.get().snapshot == _snapshot(article)
    assert set(Article.objects.get(slug="return-an-item").translations.values_list("language", flat=True)) == {"en", "ru", "pl"}
    public = readable_translations(None)
    assert next(t.article.slug for t in search.search(public, q="заказы", language="ru")) == "track-your-order"
    assert "refund-exceptions-for-agents" not in {t.article.slug for t in search.search(public, q="refund", language="en")}
