"""The public help center: language in the URL, categories, search, article pages, feedback
(CSRF-protected and rate-limited), and nothing internal or unpublished shown to anyone there."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.test import Client

from knowledge.models import Article, Feedback
from tests.knowledge.factories import ArticleFactory, CategoryFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def kb():
    parent = CategoryFactory(slug="orders", names={"en": "Orders", "ru": "Заказы", "pl": "Zamówienia"})
    child = CategoryFactory(slug="returns", names={"en": "Returns", "ru": "Возвраты"}, parent=parent)
    public = ArticleFactory(slug="return-an-item", category=child, translations={
        "en": {"title": "Return an item", "body": "Send it back **within 30 days**."},
        "ru": {"title": "Вернуть товар", "body": "Отправьте товар обратно в течение 30 дней."},
    })
    ArticleFactory(slug="internal-refunds", category=child, title="Refund override codes", body="Code 1234 returns money.",
                   visibility="internal")
    ArticleFactory(slug="draft-returns", category=child, title="Returns draft", body="Draft returns text.", status="draft")
    return public


def test_help_root_redirects_to_the_browsers_language(kb):
    response = Client().get("/help/", HTTP_ACCEPT_LANGUAGE="ru-RU,ru;q=0.9")
    assert response.status_code == 302 and response["Location"] == "/help/ru/"


def test_home_category_and_article_pages_show_public_articles_in_the_language(kb):
    client = Client()
    home = client.get("/help/ru/").content.decode()
    assert '<html lang="ru">' in home and "Вернуть товар" in home and "Заказы" in home
    category = client.get("/help/en/categories/returns/").content.decode()
    assert "Return an item" in category and "Orders" in category
    page = client.get("/help/ru/articles/return-an-item/")
    html = page.content.decode()
    assert page.status_code == 200
    assert "<h1>Вернуть товар</h1>" in html and "Отправьте товар обратно" in html
    assert '<link rel="alternate" hreflang="en" href="/help/en/articles/return-an-item/">' in html
    assert '<link rel="canonical" href="/help/ru/articles/return-an-item/">' in html
    assert "Content-Security-Policy" in page.headers and "script-src 'self'" in page.headers["Content-Security-Policy"]


def test_missing_translation_falls_back_with_a_notice(kb):
    html = Client().get("/help/pl/articles/return-an-item/").content.decode()
    assert "<h1>Return an item</h1>" in html and '<strong>within 30 days</strong>' in html
    assert 'class="notice"' in html
    assert '<link rel="canonical" href="/help/en/articles/return-an-item/">' in html


def test_search_finds_and_highlights_public_articles_only(kb, people):
    client = Client()
    client.force_login(people.admin)  # even signed-in staff see only public content here
    html = client.get("/help/en/search/", {"q": "returns within days"}).content.decode()
    assert "Return an item" in html
    assert "Refund override" not in html and "Returns draft" not in html
    assert "<mark>" in html
    assert "Nothing found" in client.get("/help/en/search/", {"q": "override code"}).content.decode()


def test_internal_and_draft_articles_are_never_shown(kb, people):
    client = Client()
    for slug in ("internal-refunds", "draft-returns", "missing"):
        assert client.get(f"/help/en/articles/{slug}/").status_code == 404
    listing = client.get("/help/en/categories/returns/").content.decode() + client.get("/help/en/").content.decode()
    assert "Refund override" not in listing and "Returns draft" not in listing
    assert client.get("/help/xx/").status_code == 404


def test_feedback_is_recorded_with_an_optional_comment_and_needs_csrf(kb):
    strict = Client(enforce_csrf_checks=True)
    url = "/help/en/articles/return-an-item/feedback/"
    assert strict.post(url, {"helpful": "yes"}).status_code == 403
    page = strict.get("/help/en/articles/return-an-item/")
    token = page.cookies["csrftoken"].value
    response = strict.post(url, {"helpful": "no", "comment": "Which address?", "csrfmiddlewaretoken": token})
    assert response.status_code == 302 and response["Location"].endswith("?thanks=1#feedback")
    feedback = Feedback.objects.get()
    assert (feedback.helpful, feedback.comment, feedback.language) == (False, "Which address?", "en")
    kb.refresh_from_db()
    assert (kb.helpful_yes, kb.helpful_no) == (0, 1)
    assert "Thank you for your feedback" in strict.get(response["Location"]).content.decode()


def test_feedback_is_rate_limited_and_validated(kb):
    client = Client()
    url = "/help/en/articles/return-an-item/feedback/"
    assert client.post(url, {"helpful": "maybe"}).status_code == 400
    assert [client.post(url, {"helpful": "yes"}).status_code for _ in range(4)] == [302, 302, 302, 429]
    assert Feedback.objects.count() == 3
    assert client.post("/help/en/articles/internal-refunds/feedback/", {"helpful": "yes"}).status_code == 404


def test_help_pages_use_a_constant_number_of_queries(kb, django_assert_max_num_queries):
    client = Client()
    with django_assert_max_num_queries(6) as home:
        client.get("/help/en/")
    for n in range(8):
        ArticleFactory(slug=f"more-{n}", title=f"More {n}", body="Text.", category=Article.objects.get(slug="return-an-item").category)
    with django_assert_max_num_queries(len(home.captured_queries)):
        client.get("/help/en/")
    with django_assert_max_num_queries(5):
        client.get("/help/en/categories/returns/")
    with django_assert_max_num_queries(5):
        client.get("/help/en/articles/return-an-item/")


def test_article_page_names_its_active_related_products_in_the_pages_language(kb, django_assert_max_num_queries):
    from catalog.models import Product
    from knowledge import services
    from knowledge.services import ArticleData
    from tests.catalog.factories import ProductFactory

    ProductFactory(sku="RTR-1", name="Fibre router", texts={"ru": "Оптоволоконный роутер"})
    ProductFactory(sku="OLD-1", name="Old modem", status=Product.Status.RETIRED)
    services.article_update(article=kb, data=ArticleData(related_product_skus=["RTR-1", "OLD-1"]), by=None)

    with django_assert_max_num_queries(7):
        russian = Client().get("/help/ru/articles/return-an-item/").content.decode()
    english = Client().get("/help/en/articles/return-an-item/").content.decode()

    assert "Оптоволоконный роутер" in russian and "(RTR-1)" in russian
    assert "Fibre router" in english
    assert "OLD-1" not in russian + english and "Old modem" not in russian + english
