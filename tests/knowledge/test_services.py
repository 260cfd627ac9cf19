"""Versions on every save, diff and restore; translations going out of date; channel variants and
their fallback; bad input changing nothing."""

from __future__ import annotations

import pytest

from knowledge import selectors, services
from knowledge.models import Article, ArticleVersion
from knowledge.services import ArticleData, ArticleInvalid
from knowledge.variants import serve
from knowledge.views.admin import version_diff
from tests.knowledge.factories import ArticleFactory

pytestmark = pytest.mark.django_db


def edit(article, by=None, **content):
    return services.article_update(article=article, data=ArticleData(translations={"en": content}), by=by)


def test_every_save_keeps_a_version_with_who_and_what_changed(people):
    article = ArticleFactory(slug="returns", title="Returns", body="Within 14 days.", by=people.admin)
    version = edit(article, by=people.admin, title="Returns", body="Within 30 days.")
    assert [v.number for v in article.versions.all()] == [2, 1]
    assert version.created_by == people.admin
    assert version.summary == "en: body"
    assert edit(article, by=people.admin, title="Returns", body="Within 30 days.") is None  # nothing changed
    status = services.article_set_status(article=article, status="archived", by=people.admin)
    assert status.number == 3 and status.summary == "status"


def test_diff_between_any_two_versions_and_restore(people):
    article = ArticleFactory(slug="returns", title="Returns", body="Within 14 days.\nKeep the receipt.", tags=["refund"])
    edit(article, title="Returns and refunds", body="Within 30 days.\nKeep the receipt.")
    services.article_update(article=article, data=ArticleData(tags=["refund", "money"]), by=None)
    v1, v3 = ArticleVersion.objects.get(article=article, number=1), ArticleVersion.objects.get(article=article, number=3)

    lines = version_diff(v1, v3)
    assert ("del", "-    Within 14 days.") in lines
    assert ("add", "+    Within 30 days.") in lines
    assert ("add", '+tags: ["money", "refund"]') in lines
    assert ("same", "     Keep the receipt.") in lines

    restored = services.article_restore(article=article, version=v1, by=people.admin)
    article.refresh_from_db()
    translation = article.translations.get()
    assert (translation.title, translation.body) == ("Returns", "Within 14 days.\nKeep the receipt.")
    assert list(article.tags.values_list("name", flat=True)) == ["refund"]
    assert restored.number == 4 and "restored version 1" in restored.summary
    assert restored.snapshot["translations"] == v1.snapshot["translations"]


def test_restore_removes_translations_added_after_the_version():
    article = ArticleFactory(slug="a", title="Hello", body="Hi")
    services.article_update(article=article, data=ArticleData(translations={"ru": {"title": "Привет", "body": "Привет"}}), by=None)
    services.article_restore(article=article, version=article.versions.get(number=1), by=None)
    assert list(article.translations.values_list("language", flat=True)) == ["en"]


def test_translation_goes_out_of_date_when_the_source_changes_and_back_when_updated():
    article = ArticleFactory(translations={
        "en": {"title": "Returns", "body": "Within 14 days."},
        "ru": {"title": "Возврат", "body": "В течение 14 дней."},
    })
    article = selectors.articles_for_admin().get(pk=article.pk)
    ru = next(t for t in article.translations.all() if t.language == "ru")
    assert not selectors.is_out_of_date(ru, article)

    edit(article, title="Returns", body="Within 30 days.")
    article = selectors.articles_for_admin().get(pk=article.pk)
    ru = next(t for t in article.translations.all() if t.language == "ru")
    assert selectors.is_out_of_date(ru, article)

    services.article_update(article=article, data=ArticleData(translations={"ru": {"title": "Возврат", "body": "В течение 30 дней."}}), by=None)
    article = selectors.articles_for_admin().get(pk=article.pk)
    ru = next(t for t in article.translations.all() if t.language == "ru")
    assert not selectors.is_out_of_date(ru, article)


def test_channel_variants_fall_back_to_the_main_body():
    full = ArticleFactory(slug="full", title="Reset", body="Open **Settings**.", short_text="Reset it in Settings.",
                          rich_body="## Steps\n1. Open *Settings*").translations.get()
    bare = ArticleFactory(slug="bare", title="Reset", body="Open **Settings**.").translations.get()

    assert (serve(full, "sms").variant, serve(full, "sms").text) == ("short", "Reset it in Settings.")
    assert serve(full, "whatsapp").variant == "short" and serve(full, "webchat").variant == "short"
    assert serve(full, "email").variant == "rich" and "<h2>Steps</h2>" in serve(full, "email").html
    assert serve(full, "help").variant == "rich"
    assert serve(full, None).variant == "main"
    for channel in ("sms", "email", None):
        served = serve(bare, channel)
        assert (served.variant, served.text) == ("main", "Open Settings.")
        assert "<strong>Settings</strong>" in served.html


def test_markdown_is_sanitized():
    translation = ArticleFactory(
        body="<script>alert(1)</script>[x](javascript:alert(1)) <img src=x onerror=alert(1)> [ok](https://example.com)",
    ).translations.get()
    assert "<script" not in translation.body_html
    assert "href=\"javascript" not in translation.body_html
    assert "<img" not in translation.body_html
    assert '<a href="https://example.com" rel="noopener noreferrer nofollow">ok</a>' in translation.body_html


@pytest.mark.parametrize(("data", "field"), [
    (ArticleData(slug="Bad Slug", translations={"en": {"title": "T", "body": "B"}}), "slug"),
    (ArticleData(slug="ok", status="live", translations={"en": {"title": "T", "body": "B"}}), "status"),
    (ArticleData(slug="ok", translations={"en": {"title": "", "body": "B"}}), "translations.en.title"),
    (ArticleData(slug="ok", translations={"en": {"title": "T", "body": " "}}), "translations.en.body"),
    (ArticleData(slug="ok", translations={"xx": {"title": "T", "body": "B"}}), "translations.xx"),
    (ArticleData(slug="ok", source_language="ru", translations={"en": {"title": "T", "body": "B"}}), "translations"),
    (ArticleData(slug="ok", translations={"en": {"title": "T", "body": "B", "short_text": "x" * 1001}}), "translations.en.short_text"),
])
def test_invalid_article_is_refused_with_the_field_and_nothing_is_written(data, field):
    with pytest.raises(ArticleInvalid) as error:
        services.article_create(data=data, by=None)
    assert field in error.value.errors
    assert not Article.objects.exists()


def test_article_from_ticket_is_an_internal_draft_in_review_in_the_customers_language(people):
    from tests.factories import EntryFactory, TicketFactory

    people.customer.language = "pl"
    people.customer.save()
    ticket = TicketFactory(subject="Paczka nie dotarła", customer=people.customer, team=people.team_a)
    EntryFactory(ticket=ticket, text="Gdzie jest moja paczka?")
    EntryFactory(ticket=ticket, direction="out", text="Sprawdź numer przesyłki w mailu.")

    article = services.article_from_ticket(ticket=ticket, by=people.supervisor)
    assert (article.status, article.visibility, article.source_language) == ("in_review", "internal", "pl")
    translation = article.translations.get()
    assert translation.title == "Paczka nie dotarła"
    assert "Gdzie jest moja paczka?" in translation.body and "Sprawdź numer przesyłki" in translation.body
    assert article.slug == "paczka-nie-dotarla"
    assert services.article_from_ticket(ticket=ticket, by=people.supervisor).slug == "paczka-nie-dotarla-2"


def test_restore_drops_related_products_deleted_since():
    from tests.catalog.factories import ProductFactory

    kept, gone = ProductFactory(sku="KEEP-1"), ProductFactory(sku="GONE-1")
    article = ArticleFactory(slug="with-products", related_product_skus=["KEEP-1", "GONE-1"])
    services.article_update(article=article, data=ArticleData(related_product_skus=[]), by=None)
    gone.delete()

    services.article_restore(article=article, version=article.versions.get(number=1), by=None)

    article.refresh_from_db()
    assert article.related_product_skus == [kept.sku]
