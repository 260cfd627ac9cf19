"""CSAT on solve and NPS on a schedule: asked on the customer's channel, answered by link (GET
shows, POST records), one rating per ticket with history, and results ready for reports."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from customers.models import ContactPreference
from tests.factories import CustomerFactory, EntryFactory, IdentityFactory, TicketFactory
from tickets.models import CsatRating, NpsResponse, SurveyInvitation, Ticket, TimelineEntry
from tickets.portal import surveys
from tickets.portal.tasks import send_nps_surveys, send_survey_invitation
from tickets.services import ticket_set_status

pytestmark = pytest.mark.django_db

URL_RE = re.compile(r"https?://\S+")


def solve(ticket, by, capture):
    with capture(execute=True):
        return ticket_set_status(ticket=ticket, status="solved", by=by)


def local(url: str) -> str:
    return "/" + url.split("://", 1)[1].split("/", 1)[1]


def body_of(received) -> str:
    return received.message().get_body(("plain",)).get_content()


def test_solving_a_ticket_asks_for_a_rating_by_email_once(people, anna, smtp_server, django_capture_on_commit_callbacks):
    solve(anna.ticket, people.agent_a, django_capture_on_commit_callbacks)

    [sent] = smtp_server.messages
    assert sent.rcpt_tos == ["anna@example.pl"]
    urls = URL_RE.findall(body_of(sent))
    assert [u.rsplit("=", 1)[1] for u in urls] == ["5", "4", "3", "2", "1"]
    invitation = SurveyInvitation.objects.get()
    assert (invitation.kind, invitation.ticket, invitation.outcome) == ("csat", anna.ticket, "sent")

    with django_capture_on_commit_callbacks(execute=True):
        ticket_set_status(ticket=anna.ticket, status="open", by=people.agent_a)
    solve(anna.ticket, people.agent_a, django_capture_on_commit_callbacks)
    assert SurveyInvitation.objects.count() == 1 and len(smtp_server.messages) == 1


def test_a_one_click_answer_shows_on_get_and_records_on_post(people, anna, smtp_server, django_capture_on_commit_callbacks):
    solve(anna.ticket, people.agent_a, django_capture_on_commit_callbacks)
    four = local(next(u for u in URL_RE.findall(body_of(smtp_server.messages[0])) if u.endswith("=4")))
    browser = Client()

    shown = browser.get(four)
    assert shown.status_code == 200
    assert re.search(r'<input type="radio" name="score" value="4"[^>]*checked', shown.content.decode())
    assert not CsatRating.objects.exists()

    response = browser.post(four.split("?")[0], {"score": "4", "comment": "Quick, thanks"})

    assert response.status_code == 200 and "4/5" in response.content.decode()
    rating = CsatRating.objects.get()
    assert (rating.ticket, rating.customer, rating.score, rating.comment) == (anna.ticket, people.customer, 4, "Quick, thanks")
    assert (rating.team, rating.agent, rating.channel) == (people.team_a, people.agent_a, anna.inbound.channel)


def test_a_rating_can_be_changed_for_seven_days_and_the_history_is_kept(people, anna):
    Ticket.objects.filter(pk=anna.ticket.pk).update(status="solved", solved_at=timezone.now())
    surveys.csat_rate(ticket=anna.ticket, customer=people.customer, score=2, comment="slow")
    surveys.csat_rate(ticket=anna.ticket, customer=people.customer, score=4, comment="ok after all")

    rating = CsatRating.objects.get()
    assert (rating.score, rating.comment) == (4, "ok after all")
    assert [(c.score, c.comment) for c in rating.history.all()] == [(2, "slow"), (4, "ok after all")]

    CsatRating.objects.update(created_at=timezone.now() - timedelta(days=7, minutes=1))
    with pytest.raises(surveys.RatingLocked):
        surveys.csat_rate(ticket=anna.ticket, customer=people.customer, score=5)
    assert CsatRating.objects.get().score == 4 and rating.history.count() == 2


@pytest.mark.parametrize("score", ["0", "6", "x", ""])
def test_a_rating_out_of_range_is_refused(people, anna, score, sign_in):
    Ticket.objects.filter(pk=anna.ticket.pk).update(status="solved", solved_at=timezone.now())
    client = Client()
    sign_in(client, "anna@example.pl")
    client.post(f"/portal/tickets/{anna.ticket.number}/rate/", {"score": score})
    assert not CsatRating.objects.exists()


def test_an_open_ticket_cannot_be_rated(people, anna):
    with pytest.raises(surveys.NotRatable):
        surveys.csat_rate(ticket=anna.ticket, customer=people.customer, score=5)


def test_a_signed_in_customer_rates_from_the_ticket_page(people, anna, sign_in):
    Ticket.objects.filter(pk=anna.ticket.pk).update(status="solved", solved_at=timezone.now())
    client = Client()
    sign_in(client, "anna@example.pl")
    client.post(f"/portal/tickets/{anna.ticket.number}/rate/", {"score": "5", "comment": "great"})
    assert "Your rating: 5/5" in client.get(f"/portal/tickets/{anna.ticket.number}/").content.decode()


def test_an_opted_out_customer_is_not_asked(people, anna, smtp_server, django_capture_on_commit_callbacks):
    ContactPreference.objects.create(identity=anna.inbound.identity, channel_kind="email", opted_out_at=timezone.now())
    solve(anna.ticket, people.agent_a, django_capture_on_commit_callbacks)
    assert smtp_server.messages == []
    assert SurveyInvitation.objects.get().outcome == "skipped"


def test_a_channel_that_asks_inline_gets_the_invitation_instead_of_a_link(people, smtp_server, django_capture_on_commit_callbacks, api_channel):
    shown = []
    surveys.register_inline_survey("api", shown.append)
    try:
        ticket = TicketFactory(customer=people.customer, origin_channel=api_channel.channel)
        EntryFactory(ticket=ticket, channel=api_channel.channel, identity=people.customer.identities.get())
        solve(ticket, people.supervisor, django_capture_on_commit_callbacks)
    finally:
        surveys._inline_senders.pop("api")
    assert [i.ticket for i in shown] == [ticket]
    assert SurveyInvitation.objects.get().outcome == "inline" and smtp_server.messages == []


def test_the_workspace_shows_the_rating_on_the_ticket_and_the_customer(people, anna):
    Ticket.objects.filter(pk=anna.ticket.pk).update(status="solved", solved_at=timezone.now())
    surveys.csat_rate(ticket=anna.ticket, customer=people.customer, score=3, comment="meh")
    agent = Client()
    agent.force_login(people.agent_a)
    page = agent.get(f"/app/tickets/{anna.ticket.pk}/").content.decode()
    assert 'id="panel-csat"' in page and "3/5" in page and "meh" in page
    assert 'id="panel-surveys"' in page and "CSAT 0%" in page


# --- NPS ----------------------------------------------------------------------------------------


def test_nps_goes_to_recent_contacts_respecting_schedule_quiet_period_and_opt_outs(
    people, anna, email_channel, smtp_server, settings, django_capture_on_commit_callbacks,
):
    settings.NPS_SCHEDULE = {"email": 90}
    opted = CustomerFactory()
    opted_identity = IdentityFactory(customer=opted, kind="email", value="opted@example.pl")
    EntryFactory(ticket=TicketFactory(customer=opted), channel=email_channel, identity=opted_identity)
    ContactPreference.objects.create(identity=opted_identity, channel_kind="email", opted_out_at=timezone.now())
    quiet = CustomerFactory()
    quiet_identity = IdentityFactory(customer=quiet, kind="email", value="quiet@example.pl")
    EntryFactory(ticket=TicketFactory(customer=quiet), channel=email_channel, identity=quiet_identity)
    SurveyInvitation.objects.create(kind="csat", customer=quiet)  # asked something a moment ago
    stale = CustomerFactory()
    stale_identity = IdentityFactory(customer=stale, kind="email", value="stale@example.pl")
    old = EntryFactory(ticket=TicketFactory(customer=stale), channel=email_channel, identity=stale_identity)
    TimelineEntry.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=60))

    with django_capture_on_commit_callbacks(execute=True):
        assert send_nps_surveys() == 1
        assert send_nps_surveys() == 0  # asked already: not again within the schedule

    invitation = SurveyInvitation.objects.get(kind="nps")
    assert (invitation.customer, invitation.ticket, invitation.outcome) == (people.customer, anna.ticket, "sent")
    [sent] = smtp_server.messages
    assert sent.rcpt_tos == ["anna@example.pl"]
    url = local(URL_RE.findall(body_of(sent))[0].rstrip("."))

    assert Client().get(url).status_code == 200 and not NpsResponse.objects.exists()
    Client().post(url, {"score": "9", "comment": "fast"})
    assert NpsResponse.objects.get().score == 9
    assert Client().post(url, {"score": "11"}).status_code == 200 and NpsResponse.objects.get().score == 9


def test_a_tampered_nps_link_is_not_found(people, anna):
    from tickets.portal import links

    invitation = SurveyInvitation.objects.create(kind="nps", customer=people.customer)
    token = links.nps_url(invitation).rstrip("/").rsplit("/", 1)[1]
    assert Client().get(f"/portal/nps/{token}x/").status_code == 404
    assert Client().get(f"/portal/nps/{links.status_token(anna.ticket)}/").status_code == 404


# --- reports ------------------------------------------------------------------------------------


def test_the_report_gives_csat_percent_and_nps_by_team_agent_channel_and_period(people, email_channel, api_channel):
    def rated(score, *, team, agent, channel):
        ticket = TicketFactory(customer=people.customer, team=team, assignee=agent, origin_channel=channel,
                               status="solved", solved_at=timezone.now())
        return surveys.csat_rate(ticket=ticket, customer=people.customer, score=score)

    rated(5, team=people.team_a, agent=people.agent_a, channel=email_channel)
    rated(2, team=people.team_a, agent=people.agent_a, channel=email_channel)
    rated(4, team=people.team_b, agent=people.agent_b, channel=api_channel.channel)
    for score, team_ticket in [(10, people.team_a), (9, people.team_a), (3, people.team_a), (7, people.team_b)]:
        ticket = TicketFactory(customer=people.customer, team=team_ticket)
        invitation = SurveyInvitation.objects.create(kind="nps", customer=people.customer, ticket=ticket, channel=email_channel)
        surveys.nps_answer(invitation=invitation, customer=people.customer, score=score)

    by_team = {row["key"]: row for row in surveys.survey_report(by="team")}
    assert (by_team[people.team_a.pk]["csat_percent"], by_team[people.team_a.pk]["nps"]) == (50.0, 33.3)
    assert (by_team[people.team_b.pk]["csat_percent"], by_team[people.team_b.pk]["nps"]) == (100.0, 0.0)
    by_agent = {row["key"]: row["csat_count"] for row in surveys.survey_report(by="agent")}
    assert by_agent[people.agent_a.pk] == 2 and by_agent[people.agent_b.pk] == 1
    by_channel = {row["key"]: row for row in surveys.survey_report(by="channel")}
    assert by_channel["email"]["csat_percent"] == 50.0 and by_channel["email"]["nps_count"] == 4
    assert by_channel["api"]["csat_percent"] == 100.0
    [month] = surveys.survey_report(by="period", period="month")
    assert (month["csat_count"], month["csat_percent"], month["nps"]) == (3, 66.7, 25.0)
    assert surveys.survey_report(by="team", start=timezone.now() + timedelta(days=1)) == []
    with pytest.raises(surveys.DomainError):
        surveys.survey_report(by="colour")


def test_a_busy_mail_server_is_retried_and_a_refusal_is_recorded(people, anna, smtp_server, django_capture_on_commit_callbacks):
    smtp_server.refuse("rcpt", "451 4.3.0 Try later")
    solve(anna.ticket, people.agent_a, django_capture_on_commit_callbacks)
    invitation = SurveyInvitation.objects.get()
    assert (invitation.outcome, invitation.sent_at) == ("failed", None)
    assert "Try later" in invitation.error
    assert smtp_server.messages == []

    smtp_server.reset()
    with django_capture_on_commit_callbacks(execute=True):
        SurveyInvitation.objects.filter(pk=invitation.pk).update(outcome="")
        send_survey_invitation.delay(invitation.pk)
    assert SurveyInvitation.objects.get().outcome == "sent" and len(smtp_server.messages) == 1


def test_a_merged_customers_panel_shows_both_profiles_results(people, anna, boris):
    from customers.services import customer_merge

    Ticket.objects.filter(pk__in=[anna.ticket.pk, boris.ticket.pk]).update(status="solved", solved_at=timezone.now())
    surveys.csat_rate(ticket=anna.ticket, customer=people.customer, score=5)
    surveys.csat_rate(ticket=boris.ticket, customer=people.other_customer, score=1)
    invitation = SurveyInvitation.objects.create(kind="nps", customer=people.other_customer)
    surveys.nps_answer(invitation=invitation, customer=people.other_customer, score=8)

    customer_merge(into=people.customer, other=people.other_customer, by=people.supervisor)

    summary = surveys.customer_survey_summary(people.customer)
    assert (summary["csat_count"], summary["csat_percent"], summary["latest_nps"].score) == (2, 50, 8)
