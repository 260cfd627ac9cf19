"""EmailAdapter.send_text: notifications outside a ticket (portal sign-in links, survey questions)
over the channel's own SMTP server, with the spine's error classes."""

from __future__ import annotations

import pytest

from channels_inbound import registry
from channels_inbound.base import PermanentSendError, TransientSendError
from channels_inbound.services import channel_create
from tests.ports import free_port

pytestmark = pytest.mark.django_db


@pytest.fixture
def channel(smtp_server):
    channel, _ = channel_create(kind="email", name="Obsługa klienta", settings_data={
        "address": "support@example.test", "smtp_host": smtp_server.host, "smtp_port": smtp_server.port,
        "smtp_security": "none", "smtp_user": "support", "smtp_password": "s3cret",
    })
    return channel


def test_send_text_goes_out_from_the_channels_address_marked_automatic(channel, smtp_server):
    smtp_server.users["support"] = "s3cret"
    adapter = registry.adapter_for("email")
    assert adapter.can_send_text

    adapter.send_text(channel, "anna@example.pl", "Your link: https://example.test/x", subject="Sign in")

    [sent] = smtp_server.messages
    message = sent.message()
    assert (sent.rcpt_tos, sent.login) == (["anna@example.pl"], "support")
    assert (message["Subject"], message["Auto-Submitted"]) == ("Sign in", "auto-generated")
    assert str(message["From"]) == "Obsługa klienta <support@example.test>"
    assert "Your link: https://example.test/x" in message.get_body(("plain",)).get_content()


def test_a_refused_recipient_is_a_permanent_error_and_a_busy_server_a_transient_one(channel, smtp_server):
    smtp_server.users["support"] = "s3cret"
    adapter = registry.adapter_for("email")
    smtp_server.refuse("rcpt", "550 5.1.1 No such user")
    with pytest.raises(PermanentSendError, match="No such user"):
        adapter.send_text(channel, "ghost@example.pl", "hello")
    smtp_server.refuse("rcpt", "451 4.3.0 Try later")
    with pytest.raises(TransientSendError, match="Try later"):
        adapter.send_text(channel, "anna@example.pl", "hello")


def test_an_unreachable_server_is_a_transient_error(channel):
    settings_data = {**channel.settings, "smtp_port": free_port()}
    channel.settings = settings_data
    with pytest.raises(TransientSendError, match="Cannot reach"):
        registry.adapter_for("email").send_text(channel, "anna@example.pl", "hello")
