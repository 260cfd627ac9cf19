"""GDPR: export everything held about a customer; erase what identifies them, keep statistics."""

from __future__ import annotations

import base64
import json

import pytest
from django.core.files.storage import default_storage

from channels_inbound.models import InboundEvent
from customers.models import Customer, Identity
from customers.services import customer_erase, customer_export, customer_merge, customer_update
from tests.conftest import message
from tests.factories import EntryFactory, IdentityFactory, TicketFactory
from tickets.models import Attachment, Ticket, TimelineEntry

PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


@pytest.fixture
def anna_wrote(people, api_channel, post_inbound, django_capture_on_commit_callbacks):
    """Anna wrote through the api channel with an attachment; an agent answered and noted something."""
    payload = {
        **message("m-1", "My order 1234 never came", email="anna@example.pl", phone="+48 601 234 567", name="Anna"),
        "html": "<p>My order <b>1234</b> never came</p>",
        "attachments": [{"filename": "invoice.pdf", "content_type": "application/pdf",
                         "data_base64": base64.b64encode(PDF).decode()}],
    }
    with django_capture_on_commit_callbacks(execute=True):
        assert post_inbound(api_channel, payload).status_code == 202
    ticket = Ticket.objects.get(customer=people.customer)
    EntryFactory(ticket=ticket, kind=TimelineEntry.Kind.NOTE, direction="", text="Internal: she sounds angry",
                 author_user=people.agent_a)
    EntryFactory(ticket=ticket, direction=TimelineEntry.Direction.OUTBOUND, text="Sorry Anna, resending now",
                 author_user=people.agent_a)
    return ticket


def test_given_a_customer_with_history_when_exported_then_identities_tickets_and_public_timeline_are_json(
    people, anna_wrote
):
    customer_update(customer=people.customer, attributes={"loyalty": "gold"})

    exported = customer_export(customer=people.customer)

    text = json.dumps(exported)
    assert exported["customer"]["name"] == "Anna Kowalska"
    assert exported["customer"]["id"] == str(people.customer.public_id)
    assert exported["customer"]["attributes"] == {"loyalty": "gold"}
    assert {(i["kind"], i["value"]) for i in exported["identities"]} == {
        ("email", "anna@example.pl"), ("phone", "+48601234567")
    }
    [ticket] = exported["tickets"]
    assert ticket["number"] == anna_wrote.number
    assert [(e["direction"], e["text"]) for e in ticket["timeline"]] == [
        ("in", "My order 1234 never came"), ("out", "Sorry Anna, resending now")
    ]
    assert ticket["timeline"][0]["attachments"] == ["invoice.pdf"]
    assert ticket["timeline"][0]["channel"] == "api"
    assert "she sounds angry" not in text
    assert "boris@example.ru" not in text


def test_given_a_customer_when_erased_then_what_identifies_them_is_gone_and_ticket_statistics_stay(
    people, anna_wrote, django_capture_on_commit_callbacks
):
    customer_update(customer=people.customer, attributes={"loyalty": "gold"}, language="pl")
    attachment = Attachment.objects.get()
    stored_name = attachment.file.name
    assert default_storage.exists(stored_name)
    event = InboundEvent.objects.get()
    assert event.payload["from"]["email"] == "anna@example.pl"
    boris_ticket = TicketFactory(customer=people.other_customer)
    boris_entry = EntryFactory(ticket=boris_ticket, text="Boris asks about delivery")
    ticket_before = Ticket.objects.values("pk", "status", "created_at", "updated_at", "last_message_at").get(pk=anna_wrote.pk)

    with django_capture_on_commit_callbacks(execute=True):
        customer_erase(customer=people.customer, by=people.admin)

    customer = Customer.objects.get(pk=people.customer.pk)
    assert customer.erased_at is not None
    assert (customer.display_name, customer.attributes, customer.language) == ("", {}, "")
    assert not customer.identities.exists()
    assert not Identity.objects.filter(value__in=["anna@example.pl", "+48601234567"]).exists()
    messages = TimelineEntry.objects.filter(ticket=anna_wrote, kind=TimelineEntry.Kind.MESSAGE)
    assert messages.count() == 2
    assert set(messages.values_list("text", "html")) == {("", "")}
    assert not Attachment.objects.exists()
    assert not default_storage.exists(stored_name)
    event.refresh_from_db()
    assert event.payload == {}
    assert event.headers == {}
    # The ticket row stays for statistics: status and timestamps unchanged.
    assert Ticket.objects.values("pk", "status", "created_at", "updated_at", "last_message_at").get(pk=anna_wrote.pk) == ticket_before
    assert "1234" not in Ticket.objects.get(pk=anna_wrote.pk).subject
    # Nobody else is touched.
    boris_entry.refresh_from_db()
    assert boris_entry.text == "Boris asks about delivery"
    assert people.other_customer.identities.filter(value="boris@example.ru").exists()
    assert Customer.objects.get(pk=people.other_customer.pk).display_name == "Борис Иванов"


def test_given_an_erased_customer_when_erased_again_then_nothing_changes(people, anna_wrote):
    customer_erase(customer=people.customer, by=people.admin)
    first = Customer.objects.get(pk=people.customer.pk)

    customer_erase(customer=people.customer, by=people.admin)

    again = Customer.objects.get(pk=people.customer.pk)
    assert (again.erased_at, again.updated_at) == (first.erased_at, first.updated_at)
    assert Ticket.objects.filter(customer=people.customer).count() == 1


def test_given_a_customer_others_were_merged_into_when_erased_then_the_merged_profiles_are_erased_too(people):
    customer_update(customer=people.other_customer, attributes={"passport": "AB123"})
    # An identity a merge could not move (into held it as an unverified claim) stays on the absorbed customer.
    IdentityFactory(customer=people.customer, kind="email", value="boris@example.ru", verified=False)
    customer_merge(into=people.customer, other=people.other_customer, by=people.supervisor)

    customer_erase(customer=people.customer, by=people.admin)

    absorbed = Customer.objects.get(pk=people.other_customer.pk)
    assert absorbed.erased_at is not None
    assert (absorbed.display_name, absorbed.attributes) == ("", {})
    assert not Identity.objects.exists()


def test_erasure_empties_waiting_events_that_would_bring_the_person_back(people, api_channel, post_inbound):
    import base64

    from channels_inbound.models import InboundEvent
    from channels_inbound.services import inbound_event_store

    waiting = post_inbound(api_channel, {"id": "late-1", "from": {"email": "anna@example.pl"}, "text": "Still me"})  # not processed yet
    mail = b"From: Anna <Anna@Example.pl>\r\nSubject: hi\r\n\r\nbody"
    inbound_event_store(channel=api_channel.channel, external_id="mail-1",
                        payload={"raw_b64": base64.b64encode(mail).decode()})
    someone_else, _ = inbound_event_store(channel=api_channel.channel, external_id="other-1",
                                          payload={"from": {"email": "boris@example.ru"}, "text": "x"})
    assert waiting.status_code == 202

    customer_erase(customer=people.customer, by=people.admin)

    emptied = InboundEvent.objects.filter(payload={}, status=InboundEvent.Status.DEAD)
    assert set(emptied.values_list("external_id", flat=True)) == {"late-1", "mail-1"}
    assert InboundEvent.objects.get(pk=someone_else.pk).payload["from"]["email"] == "boris@example.ru"


def test_erasure_empties_processed_events_that_made_no_timeline_entry(people, api_channel):
    """Receipts and edits (Meta, Telegram) are processed without a timeline entry of their own, yet
    carry the sender's id and, for an edit, the new text."""
    from channels_inbound.services import inbound_event_store

    IdentityFactory(customer=people.customer, kind="telegram", value="7001234567")
    edit, _ = inbound_event_store(channel=api_channel.channel, external_id="upd-1", enqueue=False, payload={
        "update_id": 1, "edited_message": {"from": {"id": 7001234567, "first_name": "Anna"}, "text": "my new address"}})
    receipt, _ = inbound_event_store(channel=api_channel.channel, external_id="read-1", enqueue=False, payload={
        "sender": {"id": "7001234567"}, "read": {"watermark": 1}})
    others, _ = inbound_event_store(channel=api_channel.channel, external_id="upd-2", enqueue=False, payload={
        "update_id": 2, "edited_message": {"from": {"id": 7009999999}, "text": "someone else"}})
    InboundEvent.objects.filter(pk__in=[edit.pk, receipt.pk, others.pk]).update(status=InboundEvent.Status.PROCESSED)

    customer_erase(customer=people.customer, by=people.admin)

    assert InboundEvent.objects.get(pk=edit.pk).payload == {}
    assert InboundEvent.objects.get(pk=receipt.pk).payload == {}
    assert InboundEvent.objects.get(pk=edit.pk).status == InboundEvent.Status.PROCESSED
    assert InboundEvent.objects.get(pk=others.pk).payload["edited_message"]["text"] == "someone else"
