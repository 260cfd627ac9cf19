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
