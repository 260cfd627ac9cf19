"""Two first messages of one customer processed at the same moment open one ticket."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from channels_inbound.base import NormalizedMessage
from channels_inbound.services import message_ingest
from customers import identities
from tickets.models import Ticket


@pytest.mark.django_db(transaction=True)
def test_simultaneous_first_messages_of_one_customer_share_one_ticket(people, api_channel):
    from django.db import transaction
    from django.utils import timezone

    from customers.models import Identity

    # A fresh last_seen_at spares the identity UPDATE, which would otherwise serialize the two.
    Identity.objects.update(last_seen_at=timezone.now())
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def ingest(n: int) -> None:
        try:
            with transaction.atomic():
                barrier.wait(timeout=10)
                message_ingest(channel=api_channel.channel, message=NormalizedMessage(
                    provider_message_id=f"burst-{n}", text=f"part {n}",
                    sender=[identities.claim("email", "anna@example.pl")],
                ))
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=ingest, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    ticket = Ticket.objects.get()
    assert sorted(ticket.entries.values_list("text", flat=True)) == ["part 0", "part 1"]
