"""The ticket page's Phone panel: WhatsApp window and template form, opt-outs, call buttons,
callbacks due with their outcome; only for agents who may see the ticket."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from customers.models import ContactPreference
from tests.channels_inbound.twilio.conftest import CUSTOMER_PHONE, fixture
from tickets.models import TimelineEntry


@pytest.fixture
def whatsapp_ticket(whatsapp_channel, twilio_post, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        twilio_post(f"/webhooks/twilio/{whatsapp_channel.key}/message", fixture("whatsapp_inbound"))
    return TimelineEntry.objects.get().ticket


def page(client, user, ticket) -> str:
    client.force_login(user)
    response = client.get(f"/app/tickets/{ticket.pk}/")
    assert response.status_code == 200
    return response.content.decode()


def test_the_panel_shows_the_window_and_offers_templates(client, people, whatsapp_ticket):
    html = page(client, people.agent_a, whatsapp_ticket)
    assert 'id="phone-panel"' in html and CUSTOMER_PHONE in html
    assert 'data-whatsapp-window="open"' in html
    assert f'action="/app/tickets/{whatsapp_ticket.pk}/whatsapp/template/"' in html
    assert "data-call-number" not in html  # no voice channel for browser calling
    ContactPreference.objects.update(window_expires_at=timezone.now() - timedelta(minutes=1))
    assert 'data-whatsapp-window="closed"' in page(client, people.agent_a, whatsapp_ticket)


def test_call_buttons_appear_with_browser_calling(client, people, whatsapp_ticket, voice_channel):
    html = page(client, people.agent_a, whatsapp_ticket)
    assert f'data-call-number="{CUSTOMER_PHONE}" data-ticket="{whatsapp_ticket.pk}"' in html


def test_the_template_form_queues_a_template(client, people, whatsapp_ticket, twilio_api, django_capture_on_commit_callbacks):
    twilio_api.respond(status=201, json=fixture("message_create_response"))
    ContactPreference.objects.update(window_expires_at=timezone.now() - timedelta(minutes=1))
    client.force_login(people.agent_a)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/app/tickets/{whatsapp_ticket.pk}/whatsapp/template/",
                               {"content_sid": "HX" + "f" * 32, "variables": "1=Anna\n2 = #1042\n"})
    assert response.status_code == 302
    entry = TimelineEntry.objects.get(direction="out")
    assert entry.data["template"]["variables"] == {"1": "Anna", "2": "#1042"}
    assert entry.delivery_status == "sent"


def test_a_bad_template_form_changes_nothing(client, people, whatsapp_ticket):
    client.force_login(people.agent_a)
    response = client.post(f"/app/tickets/{whatsapp_ticket.pk}/whatsapp/template/", {"content_sid": "nope"}, follow=True)
    assert response.status_code == 200
    assert not TimelineEntry.objects.filter(direction="out").exists()


def test_another_teams_agent_gets_404(client, people, whatsapp_ticket):
    client.force_login(people.agent_b)
    assert client.get(f"/app/tickets/{whatsapp_ticket.pk}/").status_code == 404
    response = client.post(f"/app/tickets/{whatsapp_ticket.pk}/whatsapp/template/", {"content_sid": "HX" + "f" * 32})
    assert response.status_code == 404
    assert not TimelineEntry.objects.filter(direction="out").exists()


def test_callbacks_due_are_listed_and_the_outcome_is_recorded(client, people, voice_channel, twilio_post,
                                                            django_capture_on_commit_callbacks):
    from tickets.models import CallbackRequest

    with django_capture_on_commit_callbacks(execute=True):
        twilio_post(f"/webhooks/twilio/{voice_channel.key}/voice/options?lang=en", fixture("voice_incoming", Digits="1"))
    callback = CallbackRequest.objects.get()
    done_url = f"/app/tickets/{callback.ticket_id}/callbacks/{callback.pk}/done/"
    html = page(client, people.agent_a, callback.ticket)
    assert done_url in html
    assert "asked to be called back" in html  # the timeline shows the request itself
    client.force_login(people.agent_b)
    assert client.post(done_url, {"outcome": "x"}).status_code == 404
    client.force_login(people.agent_a)
    assert client.post(done_url, {"outcome": ""}).status_code == 302
    callback.refresh_from_db()
    assert callback.done_at is None  # no outcome, nothing recorded
    response = client.post(done_url, {"outcome": "Reached, solved"})
    assert response.status_code == 302
    callback.refresh_from_db()
    assert callback.done_at is not None and callback.done_by == people.agent_a
    assert TimelineEntry.objects.get(data__action="callback_outcome").data["outcome"] == "Reached, solved"
    assert "callback" not in callback.ticket.tags.values_list("name", flat=True)
    assert done_url not in page(client, people.agent_a, callback.ticket)


def test_an_opt_out_shows_on_the_panel(client, people, sms_channel, twilio_post, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        twilio_post(f"/webhooks/twilio/{sms_channel.key}/message", fixture("sms_inbound", Body="STOP"))
    html = page(client, people.agent_a, TimelineEntry.objects.get().ticket)
    assert "Opted out of SMS" in html


def test_the_customer_profile_has_call_buttons_with_browser_calling(client, people, voice_channel):
    from tests.factories import IdentityFactory

    IdentityFactory(customer=people.customer, kind="phone", value=CUSTOMER_PHONE)
    client.force_login(people.supervisor)
    html = client.get(f"/app/customers/{people.customer.pk}/").content.decode()
    assert f'data-call-number="{CUSTOMER_PHONE}"' in html and 'id="customer-phone-panel"' in html


def test_no_call_buttons_without_browser_calling(client, people):
    from tests.factories import IdentityFactory

    IdentityFactory(customer=people.customer, kind="phone", value=CUSTOMER_PHONE)
    client.force_login(people.supervisor)
    html = client.get(f"/app/customers/{people.customer.pk}/").content.decode()
    assert "data-call-number" not in html
