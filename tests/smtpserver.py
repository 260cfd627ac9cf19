"""A real SMTP server (aiosmtpd) for outbound email tests (STYLE.md rule 19, DESIGN.md "Real parts").

One server per test session (per xdist worker) on 127.0.0.1 and a free port, registered for the
whole suite by `pytest_plugins` in tests/conftest.py. The `smtp_server` fixture hands it to a test
with its recordings and answers reset. It records every accepted message (envelope sender,
recipients, raw bytes, the SMTP AUTH login if the client authenticated) and can be told to refuse
a stage with a given reply or to drop the connection once it has the message.

    def test_something(smtp_server):
        smtp_server.users["support"] = "s3cret"         # AUTH PLAIN/LOGIN accepts this pair
        smtp_server.refuse("rcpt", "550 5.1.1 No such user")
        ... code under test sends to smtp_server.host, smtp_server.port ...
        [mail] = smtp_server.messages
        assert mail.message()["Subject"] == "Re: ..."
"""

from __future__ import annotations

import email
import email.policy
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.ports import free_port

STAGES = ("mail", "rcpt", "data")


@dataclass
class ReceivedMail:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    login: str | None = None  # the SMTP AUTH user, None without AUTH
    mail_options: list[str] = field(default_factory=list)

    def message(self) -> email.message.EmailMessage:
        """Parsed as a mail client would after local delivery: wire CRLF turned into newlines."""
        return email.message_from_bytes(self.data.replace(b"\r\n", b"\n"), policy=email.policy.default)


class SmtpServer:
    """The recordings and the configured behaviour; the aiosmtpd handler calls into it."""

    def __init__(self) -> None:
        self.host = "127.0.0.1"
        self.port = 0
        self.messages: list[ReceivedMail] = []
        self.users: dict[str, str] = {}
        self.auth_attempts: list[str] = []
        self._refusals: dict[str, str] = {}
        self._drop_after_data = False
        self._lock = threading.Lock()

    def refuse(self, stage: str, reply: str) -> None:
        """Answer `stage` ("mail", "rcpt" or "data") with `reply`, e.g. "451 4.3.0 Try later"."""
        if stage not in STAGES:
            raise ValueError(f"stage must be one of {STAGES}")
        self._refusals[stage] = reply

    def drop_after_data(self) -> None:
        """Take the whole message, then close the connection without answering it."""
        self._drop_after_data = True

    def reset(self) -> None:
        with self._lock:
            self.messages.clear()
            self.auth_attempts.clear()
        self.users.clear()
        self._refusals.clear()
        self._drop_after_data = False

    # --- aiosmtpd hooks ------------------------------------------------------------------------
    def email_channel(self, team, *, name: str = "Shop support", address: str = "support@shop.example.com"):
        """An email channel that sends through this server (plain SMTP, no login)."""
        from channels_inbound.services import channel_create

        channel, _ = channel_create(kind="email", name=name, default_team=team, settings_data={
            "address": address, "smtp_host": self.host, "smtp_port": self.port, "smtp_security": "none",
        })
        return channel

    def authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login = auth_data.login.decode("utf-8", "replace")
        with self._lock:
            self.auth_attempts.append(login)
        ok = login in self.users and self.users[login] == auth_data.password.decode("utf-8", "replace")
        return AuthResult(success=ok, auth_data=login if ok else None, handled=False)

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if "mail" in self._refusals:
            return self._refusals["mail"]
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if "rcpt" in self._refusals:
            return self._refusals["rcpt"]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if "data" in self._refusals:
            return self._refusals["data"]
        received = ReceivedMail(
            mail_from=envelope.mail_from,
            rcpt_tos=list(envelope.rcpt_tos),
            data=bytes(envelope.original_content or envelope.content),
            login=session.auth_data if session.authenticated else None,
            mail_options=list(envelope.mail_options),
        )
        with self._lock:
            self.messages.append(received)
        if self._drop_after_data:
            server.transport.close()
        return "250 2.0.0 Queued"


@pytest.fixture(scope="session")
def smtp_server_session() -> Iterator[SmtpServer]:
    state = SmtpServer()
    state.port = free_port()
    controller = Controller(
        state, hostname=state.host, port=state.port, authenticator=state.authenticate,
        # Tests talk plain SMTP on loopback; production channels use ssl or starttls.
        auth_require_tls=False, enable_SMTPUTF8=True,
    )
    controller.start()
    try:
        yield state
    finally:
        controller.stop()


@pytest.fixture
def smtp_server(smtp_server_session: SmtpServer) -> Iterator[SmtpServer]:
    """The session's SMTP server, with nothing recorded and default answers."""
    smtp_server_session.reset()
    yield smtp_server_session
    smtp_server_session.reset()
