"""Writes of the social channels outside the spine: the sender's profile name."""

from __future__ import annotations

import logging

from django.core.cache import cache

from channels_inbound import registry
from channels_inbound.base import PermanentSendError, UnknownOutcome
from channels_inbound.models import Channel
from customers.models import Customer, Identity

logger = logging.getLogger(__name__)
PROFILE_TRIED_FOR = 24 * 3600


def identity_fetch_profile(*, identity_id: int, channel_id: int) -> str:
    """Ask the provider for a sender's name once and keep it on the identity (and on the customer
    while that has no name). A refusal (no permission, user gone) is not asked again for a day."""
    identity = Identity.objects.filter(pk=identity_id, display_name="").first()
    channel = Channel.objects.filter(pk=channel_id).first()
    if identity is None or channel is None:
        return ""
    # The creation time keeps the marker of a deleted identity from applying to a new one with its id.
    marker = f"profile-tried:{identity_id}:{identity.created_at.timestamp()}"
    if cache.get(marker):
        return ""
    adapter = registry.adapter_for(channel.kind)
    try:
        name = adapter.fetch_profile(channel, identity)[:200]
    except (PermanentSendError, UnknownOutcome) as exc:
        cache.set(marker, 1, PROFILE_TRIED_FOR)
        logger.info("no profile for identity %s on channel %s: %s", identity_id, channel.key, exc)
        return ""
    cache.set(marker, 1, PROFILE_TRIED_FOR)
    if name:
        Identity.objects.filter(pk=identity_id, display_name="").update(display_name=name)
        Customer.objects.filter(pk=identity.customer_id, display_name="").update(display_name=name)
    return name
