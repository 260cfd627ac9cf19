"""The websocket path: a portal session is not staff, so /ws/agent/ refuses it (no customer ever
receives another customer's live events, or anyone's)."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import Client
from websockets.exceptions import InvalidStatus

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.xdist_group("asgi")]


def test_a_signed_in_customer_cannot_open_the_agent_socket(asgi_server, people, anna, sign_in):
    customer = Client()
    sign_in(customer, "anna@example.pl")
    session_key = customer.cookies[settings.SESSION_COOKIE_NAME].value

    with pytest.raises(InvalidStatus) as refused:
        asgi_server.agent_socket(session_key)

    assert refused.value.response.status_code == 403
