"""omnicenter/rawsql.py writes rows exactly as save() would."""

from __future__ import annotations

import pytest
from django.utils import timezone

from omnicenter import rawsql
from tickets.models import Ticket, TimelineEntry


def stored(instance) -> dict:
    fresh = type(instance).objects.get(pk=instance.pk)
    return {f.attname: getattr(fresh, f.attname) for f in type(instance)._meta.concrete_fields}


def test_insert_stores_what_save_stores(people, api_channel):
    ticket = Ticket.objects.create(subject="Raw", customer=people.customer, origin_channel=api_channel.channel)
    by_orm = TimelineEntry(ticket=ticket, kind=TimelineEntry.Kind.MESSAGE, direction=TimelineEntry.Direction.INBOUND,
                           channel=api_channel.channel, text="Hello", data={"a": [1, "b"]}, provider_message_id="p-1")
    by_raw = TimelineEntry(ticket=ticket, kind=TimelineEntry.Kind.MESSAGE, direction=TimelineEntry.Direction.INBOUND,
                           channel=api_channel.channel, text="Hello", data={"a": [1, "b"]}, provider_message_id="p-2")
    by_orm.save()
    rawsql.insert(by_raw)

    assert by_raw.pk and not by_raw._state.adding
    orm, raw = stored(by_orm), stored(by_raw)
    for key in ("id", "public_id", "created_at", "provider_message_id"):
        orm.pop(key), raw.pop(key)
    assert raw == orm
    assert by_raw.created_at is not None and stored(by_raw)["created_at"] == by_raw.created_at


def test_update_bumps_the_counter_and_reads_it_back(people, api_channel):
    ticket = Ticket.objects.create(subject="Raw", customer=people.customer, origin_channel=api_channel.channel)
    before = ticket.updated_at
    ticket.status, ticket.last_message_at = Ticket.Status.OPEN, timezone.now()

    rawsql.update(ticket, ["updated_at", "status", "last_message_at"], increment="version")

    assert ticket.version == 2
    row = stored(ticket)
    assert (row["version"], row["status"], row["last_message_at"]) == (2, Ticket.Status.OPEN, ticket.last_message_at)
    assert row["updated_at"] > before


def test_update_of_a_row_that_is_gone_raises(people, api_channel):
    ticket = Ticket.objects.create(subject="Raw", customer=people.customer, origin_channel=api_channel.channel)
    Ticket.objects.filter(pk=ticket.pk).delete()

    with pytest.raises(Ticket.DoesNotExist):
        rawsql.update(ticket, ["updated_at"], increment="version")
