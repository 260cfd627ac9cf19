"""customers.services.contact_window_extend: the messaging window of (identity, channel kind),
shared by WhatsApp (Twilio) and Messenger/Instagram (Meta)."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from customers.models import ContactPreference
from customers.services import contact_window_extend
from tests.factories import IdentityFactory


def test_the_window_opens_and_only_ever_moves_later(people):
    identity = IdentityFactory(customer=people.customer, kind="phone", value="+48601234567")
    now = timezone.now()

    contact_window_extend(identity=identity, channel_kind="whatsapp", until=now + timedelta(hours=24))
    contact_window_extend(identity=identity, channel_kind="whatsapp", until=now + timedelta(hours=2))  # processed late
    contact_window_extend(identity=identity, channel_kind="messenger", until=now + timedelta(hours=1))

    windows = dict(ContactPreference.objects.filter(identity=identity).values_list("channel_kind", "window_expires_at"))
    assert windows == {"whatsapp": now + timedelta(hours=24), "messenger": now + timedelta(hours=1)}
    contact_window_extend(identity=identity, channel_kind="whatsapp", until=now + timedelta(hours=30))
    assert ContactPreference.objects.get(identity=identity, channel_kind="whatsapp").window_expires_at == now + timedelta(hours=30)
