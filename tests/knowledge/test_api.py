"""/api/v1/kb/articles/: translation and variant selection (and saying which was served), search,
pagination, and who sees what: internal articles never reach anonymous readers or bot tokens."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from omnicenter.services import api_token_create
from tests.knowledge.factories import ArticleFactory

pytestmark = pytest.mark.django_db
URL = "/api/v1/kb/articles/"


@pytest.fixture
def articles(people):
    public = ArticleFactory(slug="reset-password", translations={
        "en": {"title": "Reset your password", "body": "Open **Settings** and choose *Forgot password*.",
               "short_text": "Reset it under Settings > Forgot password."},
        "ru": {"title": "Сброс пароля", "body": "Откройте **Настройки** и выберите «Забыли пароль».",
               "rich_body": "## Сброс пароля\n\nОткройте **Настройки**."},
    })
    internal = ArticleFactory(slug="password-override", title="Password override for VIPs",
                              body="Agents may reset a VIP password by phone.", visibility="internal")
    draft = ArticleFactory(slug="password-draft", title="Password draft", body="Not yet.", status="draft")
    services_related(public, internal)
    return {"public": public, "internal": internal, "draft": draft}


def services_related(public, internal) -> None:
    from knowledge import services
    from knowledge.services import ArticleData

    services.article_update(article=public, data=ArticleData(related_articles=[internal]), by=None)


def token_client(user, *, read_only: bool) -> APIClient:
    _token, key = api_token_create(user=user, name="bot", read_only=read_only)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def slugs(response) -> set[str]:
    assert response.status_code == 200, response.content
    return {item["slug"] for item in response.json()["results"]}


def test_lang_and_channel_select_translation_and_variant_and_say_so(articles):
    client = APIClient()
    sms = client.get(URL + "reset-password/", {"lang": "en", "channel": "sms"}).json()
    assert sms["text"] == "Reset it under Settings > Forgot password."
    assert sms["served"] == {
        "language": "en", "requested_language": "en", "language_fallback": False, "channel": "sms",
        "variant": "short", "variant_fallback": False, "out_of_date": False,
    }
    email_ru = client.get(URL + "reset-password/", {"lang": "ru", "channel": "email"}).json()
    assert email_ru["title"] == "Сброс пароля" and "<h2>Сброс пароля</h2>" in email_ru["html"]
    assert (email_ru["served"]["language"], email_ru["served"]["variant"]) == ("ru", "rich")

    sms_ru = client.get(URL + "reset-password/", {"lang": "ru", "channel": "sms"}).json()
    assert sms_ru["served"]["variant"] == "main" and sms_ru["served"]["variant_fallback"] is True
    assert sms_ru["text"] == "Откройте Настройки и выберите «Забыли пароль»."

    pl = client.get(URL + "reset-password/", {"lang": "pl"}).json()
    assert (pl["served"]["language"], pl["served"]["language_fallback"], pl["title"]) == ("en", True, "Reset your password")
    assert pl["url"].endswith("/help/en/articles/reset-password/")


def test_search_in_a_language_with_snippets(articles):
    response = APIClient().get(URL, {"q": "пароли", "lang": "ru", "channel": "chat"})
    body = response.json()
    assert body["count"] == 1 and set(body) == {"count", "next", "previous", "results"}
    item = body["results"][0]
    assert item["slug"] == "reset-password" and "<mark>" in item["snippet"]
    assert item["served"]["channel"] == "chat"


def test_bad_parameters_are_refused_clearly(articles):
    response = APIClient().get(URL, {"lang": "xx", "channel": "pigeon"})
    assert response.status_code == 400
    assert set(response.json()) == {"lang", "channel"}


def test_anonymous_readers_see_only_published_public_articles(articles):
    client = APIClient()
    assert slugs(client.get(URL)) == {"reset-password"}
    assert slugs(client.get(URL, {"q": "password"})) == {"reset-password"}
    assert client.get(URL + "password-override/").status_code == 404
    assert client.get(URL + "password-draft/").status_code == 404
    assert client.get(URL + "reset-password/").json()["related_articles"] == []  # the internal one is not named


def test_read_only_bot_token_never_sees_internal_articles_even_of_an_admin(articles, people):
    for user in (people.agent_a, people.admin):
        bot = token_client(user, read_only=True)
        assert slugs(bot.get(URL)) == {"reset-password"}
        assert slugs(bot.get(URL, {"q": "vip by phone"})) == set()
        assert slugs(token_client(user, read_only=False).get(URL, {"q": "vip by phone"})) == {"password-override"}
        assert bot.get(URL + "password-override/").status_code == 404
        assert bot.get(URL + str(articles["internal"].pk) + "/").status_code == 404


def test_agents_session_and_full_token_see_internal_but_not_drafts(articles, people, api_as):
    for client in (api_as(people.agent_a), token_client(people.agent_a, read_only=False)):
        assert slugs(client.get(URL)) == {"reset-password", "password-override"}
        assert client.get(URL + "password-override/").json()["served"]["language"] == "en"
        assert client.get(URL + "reset-password/").json()["related_articles"] == ["password-override"]
        assert client.get(URL + "password-draft/").status_code == 404


def test_api_is_read_only(articles, people, api_as):
    assert api_as(people.admin).post(URL, {"slug": "x"}, format="json").status_code in (403, 405)
    assert APIClient().delete(URL + "reset-password/").status_code in (401, 403, 405)


def test_list_query_count_does_not_grow_with_articles(people, django_assert_max_num_queries):
    for n in range(3):
        ArticleFactory(slug=f"a{n}", title=f"Refund {n}", body="Refunds take days.", tags=["money"])
    client = APIClient()
    with django_assert_max_num_queries(8) as few:
        assert client.get(URL).status_code == 200
    for n in range(3, 12):
        ArticleFactory(slug=f"a{n}", title=f"Refund {n}", body="Refunds take days.", tags=["money"])
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert len(client.get(URL).json()["results"]) == 12
    # A search adds three, whatever the number of matches: title candidates, text candidates, snippets.
    with django_assert_max_num_queries(len(few.captured_queries) + 3):
        assert client.get(URL, {"q": "refund"}).json()["count"] == 12


@pytest.fixture
def rich_articles(people):
    """Search hits with everything an item can carry: category, tags, related articles (one of
    them internal), a rich and a short variant, an out-of-date translation."""
    from knowledge import services
    from knowledge.services import ArticleData
    from tests.knowledge.factories import CategoryFactory

    billing = CategoryFactory(slug="billing")
    internal = ArticleFactory(slug="refund-internal", title="Refund exceptions", body="Refund by hand.", visibility="internal")
    other = ArticleFactory(slug="invoices", title="Invoices", body="Find your invoices under Billing.")
    refund = ArticleFactory(slug="refunds", category=billing, tags=["money", "billing"], translations={
        "en": {"title": "Refund policy", "body": "Refunds take **five** days.", "short_text": "Refunds: 5 days.",
               "rich_body": "## Refunds\n\nFive days."},
        "ru": {"title": "Возврат денег", "body": "Возврат занимает пять дней."},
    })
    services.article_update(article=refund, data=ArticleData(related_articles=[internal, other]), by=None)
    services.article_update(article=refund, data=ArticleData(translations={
        "en": {"title": "Refund policy", "body": "Refunds take **five** working days."}}), by=None)
    ArticleFactory(slug="refund-card", title="Refund to a card", body="A refund goes back to the card you paid with.")
    return refund


@pytest.mark.parametrize("channel", [None, "sms", "email", "chat"])
@pytest.mark.parametrize("lang", ["en", "ru"])
def test_a_search_result_is_the_article_as_served_plus_its_snippet(rich_articles, people, lang, channel):
    params = {"lang": lang, **({"channel": channel} if channel else {})}
    q = {"en": "refund", "ru": "возврат"}[lang]
    for client in (APIClient(), token_client(people.agent_a, read_only=False)):
        found = client.get(URL, {**params, "q": q}).json()["results"]
        assert found, (lang, channel)
        for item in found:
            assert "<mark>" in item["snippet"]
            alone = client.get(f"{URL}{item['slug']}/", params).json()
            assert item == {**alone, "snippet": item["snippet"]}
    refund = next(i for i in APIClient().get(URL, {**params, "q": q}).json()["results"] if i["slug"] == "refunds")
    assert refund["related_articles"] == ["invoices"] and refund["tags"] == ["billing", "money"]
    assert refund["served"]["out_of_date"] is (lang == "ru")


def test_search_statements_do_not_depend_on_matches_or_page_size(people, django_assert_num_queries):
    """Anonymous search: the ranked ids (which also give the count), then the page's rows with
    their snippets, languages, tags and related articles. A token adds its own lookup."""
    for n in range(3):
        ArticleFactory(slug=f"a{n}", title=f"Refund {n}", body="Refunds take days.", tags=["money"])
    client = APIClient()
    with django_assert_num_queries(2):
        assert client.get(URL, {"q": "refund"}).json()["count"] == 3
    for n in range(3, 30):
        ArticleFactory(slug=f"a{n}", title=f"Refund {n}", body="Refunds take days.", tags=["money"])
    with django_assert_num_queries(2):
        body = client.get(URL, {"q": "refund", "channel": "email", "page_size": 10, "page": 2}).json()
    assert body["count"] == 30 and len(body["results"]) == 10 and body["next"] and body["previous"]
    with django_assert_num_queries(1):  # no match: nothing else is read
        assert client.get(URL, {"q": "zebra"}).json() == {"count": 0, "next": None, "previous": None, "results": []}
    first = client.get(URL, {"q": "refund"}).json()  # 20 a page by default, as the help center
    assert len(first["results"]) == 20 and first["next"].endswith("page=2&q=refund")
    bot = token_client(people.agent_a, read_only=True)
    bot.get(URL, {"q": "refund"})  # the first use records last_used_at; later ones within a minute do not write
    with django_assert_num_queries(3):
        assert bot.get(URL, {"q": "refund"}).json()["count"] == 30


@pytest.mark.parametrize("channel", [None, "email"])
def test_the_one_statement_page_reads_what_the_portable_one_reads(rich_articles, people, channel):
    from knowledge import search, selectors

    for user, auth in ((None, None), (people.agent_a, None)):
        articles = selectors.readable_articles(user, auth)
        ids = search.translation_ids(articles, q="refund", language="en")
        columns = (*selectors.ROW, *selectors.RICH) if channel == "email" else selectors.ROW
        portable = selectors.page_rows_portable(ids, articles=articles, columns=columns, headline=search.headline(q="refund", language="en"))
        one = selectors.page_rows_postgres(ids, articles=articles, columns=columns,
                                      headline=search.headline(q="refund", language="en", column="t.body_text"))
        assert one == portable and len(one) == len(ids) >= 2
        assert any(row["related"] for row in one.values()) and any(row["tags"] for row in one.values())


def test_category_filter_takes_in_subcategories_and_tag_filter_narrows(people):
    from tests.knowledge.factories import CategoryFactory

    orders = CategoryFactory(slug="orders")
    returns = CategoryFactory(slug="returns", parent=orders)
    ArticleFactory(slug="track", title="Track an order", category=orders, tags=["delivery"])
    ArticleFactory(slug="send-back", title="Send an order back", category=returns, tags=["refund"])
    ArticleFactory(slug="login", title="Sign in", category=CategoryFactory(slug="account"))
    client = APIClient()

    assert slugs(client.get(URL, {"category": "orders"})) == {"track", "send-back"}
    assert slugs(client.get(URL, {"category": "returns"})) == {"send-back"}
    assert slugs(client.get(URL, {"category": "orders", "q": "order"})) == {"track", "send-back"}
    assert slugs(client.get(URL, {"category": "orders", "tag": "Refund"})) == {"send-back"}
    assert slugs(client.get(URL, {"category": "nope"})) == set()


def test_a_language_added_in_settings_is_written_searched_and_served(settings):
    settings.KB_LANGUAGES = ["en", "ru", "pl", "de"]
    ArticleFactory(slug="returns", translations={
        "en": {"title": "Returns", "body": "Send it back within 30 days."},
        "de": {"title": "Rücksendungen", "body": "Senden Sie Bestellungen innerhalb von 30 Tagen zurück."},
    })
    client = APIClient()

    # No configuration of its own: `simple` (no stemming), still found by its words and typos.
    found = client.get(URL, {"q": "bestellungen", "lang": "de"}).json()["results"]
    assert [(item["slug"], item["title"], item["served"]["language"]) for item in found] == [("returns", "Rücksendungen", "de")]
    assert client.get(URL, {"q": "rucksendungen", "lang": "de"}).json()["count"] == 1
    assert client.get(URL + "returns/", {"lang": "de"}).json()["languages"] == ["de", "en"]
    assert client.get(URL, {"lang": "fr"}).status_code == 400
