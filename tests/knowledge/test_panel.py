"""The knowledge panel in the ticket sidebar: suggestions from the ticket's text in the customer's
language, the variant for the ticket's channel, search, and "create article from this ticket"."""

from __future__ import annotations

import html

import pytest
from django.test import Client

from channels_inbound.models import Channel
from knowledge.models import Article
from tests.factories import EntryFactory, TicketFactory
from tests.knowledge.factories import ArticleFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def articles():
    ArticleFactory(slug="track-order", translations={
        "ru": {"title": "Как отследить заказ", "body": "Номер отслеживания есть в письме с подтверждением заказа.",
               "short_text": "Номер отслеживания есть в письме."},
    }, language="ru")
    ArticleFactory(slug="vip-refunds", language="ru", title="Возврат денег VIP", body="Внутреннее: заказ VIP возвращаем сразу.",
                   visibility="internal")
    ArticleFactory(slug="draft-order", language="ru", title="Черновик про заказы", body="Заказ.", status="draft")


@pytest.fixture
def sms_ticket(people):
    people.other_customer.language = "ru"
    people.other_customer.save()
    channel = Channel.objects.create(kind="sms", name="SMS", settings={"demo": True})
    ticket = TicketFactory(subject="Где мой заказ?", customer=people.other_customer, team=people.team_a, origin_channel=channel)
    EntryFactory(ticket=ticket, text="Заказы не пришли, подскажите номер отслеживания")
    return ticket


def page_for(user, ticket) -> str:
    client = Client()
    client.force_login(user)
    return html.unescape(client.get(f"/app/tickets/{ticket.pk}/").content.decode())


def test_ticket_page_suggests_articles_with_the_channels_variant(articles, sms_ticket, people):
    page = page_for(people.agent_a, sms_ticket)
    assert 'data-kb-article="track-order"' in page
    assert 'data-kb-insert="Номер отслеживания есть в письме."' in page  # the SMS (short) variant
    assert 'data-kb-insert="http://127.0.0.1:8000/help/ru/articles/track-order/"' in page
    assert 'data-kb-article="vip-refunds"' in page  # agents see internal articles…
    assert "/help/ru/articles/vip-refunds/" not in page  # …but get no public link for them
    assert "draft-order" not in page
    assert "Create article from this ticket" not in page  # supervisors only


def test_email_ticket_gets_the_full_body(articles, sms_ticket, people):
    sms_ticket.origin_channel = Channel.objects.create(kind="email", name="Mail", settings={"demo": True})
    sms_ticket.save()
    page = page_for(people.agent_a, sms_ticket)
    assert 'data-kb-insert="Номер отслеживания есть в письме с подтверждением заказа."' in page


def test_panel_search_and_its_permissions(articles, sms_ticket, people):
    client = Client()
    client.force_login(people.agent_a)
    found = client.get(f"/app/kb/panel/{sms_ticket.pk}/", {"q": "заказа"}).content.decode()
    assert "track-order" in found and "<mark>" in found
    other = Client()
    other.force_login(people.agent_b)  # another team's agent cannot see the ticket
    assert other.get(f"/app/kb/panel/{sms_ticket.pk}/", {"q": "заказа"}).status_code == 404
    assert Client().get(f"/app/kb/panel/{sms_ticket.pk}/").status_code == 302


def test_supervisor_creates_a_draft_from_the_ticket_and_agents_cannot(articles, sms_ticket, people):
    agent = Client()
    agent.force_login(people.agent_a)
    assert agent.post(f"/app/kb/from-ticket/{sms_ticket.pk}/").status_code == 404
    assert not Article.objects.filter(status="in_review").exists()

    assert "Create article from this ticket" in page_for(people.supervisor, sms_ticket)
    supervisor = Client()
    supervisor.force_login(people.supervisor)
    response = supervisor.post(f"/app/kb/from-ticket/{sms_ticket.pk}/")
    assert response["Location"] == f"/app/tickets/{sms_ticket.pk}/"
    article = Article.objects.get(status="in_review")
    assert article.source_language == "ru" and article.translations.get().title == "Где мой заказ?"
