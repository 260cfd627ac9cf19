"""Outbound email: a reply that threads in the customer's mail client, sent over SMTP or an ESP.

`build_email(entry)` makes the message (From with the channel's display name, Reply-To carrying the
ticket token, a stable Message-ID on our domain, In-Reply-To/References from the ticket's earlier
email messages, a text part with an HTML alternative, the entry's attachments). `send_entry(entry)`
sends it and maps every failure onto the spine's three outcomes (channels_inbound.base):
retry later, refused for good, or "may have been accepted" (never blindly re-sent).
"""

from __future__ import annotations

import email.policy
import re
import smtplib
import ssl
from email.message import MIMEPart
from email.utils import formataddr
from typing import TYPE_CHECKING

from django.core.exceptions import ImproperlyConfigured
from django.core.mail import EmailMultiAlternatives
from django.db.models import Q
from django.utils.html import escape
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _

from channels_inbound.base import PermanentSendError, SendResult, TransientSendError, UnknownOutcome
from tickets.models import TimelineEntry

if TYPE_CHECKING:
    from channels_inbound.models import Channel
    from tickets.models import Ticket

SMTP_TIMEOUT = 30  # seconds, per socket operation
MAX_REFERENCES = 20  # RFC 5322 sets no limit; long chains get truncated by servers, so keep the newest
DEFAULT_PORTS = {"ssl": 465, "starttls": 587, "none": 25}
TICKET_TAG = "+t-"
TOKEN_RE = re.compile(r"\+t-([0-9a-f]{32})@", re.IGNORECASE)
REPLY_PREFIX_RE = re.compile(r"^\s*(re|aw|sv|odp|отв|ответ)\s*(\[\d+\])?\s*:", re.IGNORECASE)
WIRE_POLICY = email.policy.SMTP.clone(cte_type="7bit")
ESP_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")


# --- addresses and headers ------------------------------------------------------------------------

def _split_address(address: str) -> tuple[str, str]:
    local, _sep, domain = address.strip().rpartition("@")
    if not local or not domain:
        raise PermanentSendError(_("The channel's address %(address)s is not a valid email address.") % {"address": address})
    return local, domain


def _domain(channel: Channel) -> str:
    _local, domain = _split_address(channel.settings.get("address", ""))
    # Message-IDs are ASCII-only (RFC 5322 msg-id); an internationalized domain goes in its IDNA form.
    return domain.lower().encode("idna").decode("ascii")


def reply_address(channel: Channel, ticket: Ticket) -> str:
    """The channel's address with the ticket's unguessable token: support+t-<hex>@example.com."""
    local, domain = _split_address(channel.settings.get("address", ""))
    return f"{local}{TICKET_TAG}{ticket.public_id.hex}@{domain}"


def ticket_token_from_address(address: str) -> str | None:
    """The ticket token a reply address carries (the inverse of `reply_address`), or None."""
    match = TOKEN_RE.search(address or "")
    return match.group(1).lower() if match else None


def message_id_for(entry: TimelineEntry) -> str:
    """Stable per entry, so that a retry after a lost answer carries the same Message-ID and
    receiving servers and clients can drop the duplicate."""
    return f"<oc.{entry.public_id.hex}@{_domain(entry.channel)}>"


def _bare(message_id: str) -> str:
    return message_id.strip().strip("<>").strip()


def thread_ids(entry: TimelineEntry) -> tuple[str, list[str]]:
    """(In-Reply-To, References) from the ticket's earlier email messages, oldest first."""
    earlier = (
        TimelineEntry.objects.filter(ticket_id=entry.ticket_id, kind=TimelineEntry.Kind.MESSAGE, channel__kind="email")
        .exclude(provider_message_id="")
        .exclude(pk=entry.pk)
        .filter(Q(created_at__lt=entry.created_at) | Q(created_at=entry.created_at, pk__lt=entry.pk))
        .order_by("created_at", "pk")
        .values_list("provider_message_id", "direction")
    )
    rows = [(_bare(pmid), direction) for pmid, direction in earlier if _bare(pmid)]
    if not rows:
        return "", []
    references = [f"<{pmid}>" for pmid, _direction in rows][-MAX_REFERENCES:]
    # We answer the customer's latest mail; without one, our own latest message.
    inbound = [pmid for pmid, direction in rows if direction == TimelineEntry.Direction.INBOUND]
    in_reply_to = f"<{inbound[-1] if inbound else rows[-1][0]}>"
    return in_reply_to, references


def subject_for(ticket: Ticket) -> str:
    subject = " ".join((ticket.subject or "").split()) or _("Your request")
    if not REPLY_PREFIX_RE.match(subject):
        subject = f"Re: {subject}"
    tag = f"[#{ticket.number}]"
    if tag not in subject:
        subject = f"{subject} {tag}"
    return subject


def _html_from_text(text: str) -> str:
    return "<html><body><div>" + escape(text).replace("\r\n", "\n").replace("\n", "<br>\n") + "</div></body></html>"


# --- building -------------------------------------------------------------------------------------

def build_email(entry: TimelineEntry) -> EmailMultiAlternatives:
    channel, ticket = entry.channel, entry.ticket
    if entry.identity is None or not entry.identity.value:
        raise PermanentSendError(_("The message has no recipient address."))
    address = channel.settings.get("address", "")
    _split_address(address)
    message_id = message_id_for(entry)
    in_reply_to, references = thread_ids(entry)
    headers = {"Message-ID": message_id}
    if in_reply_to:
        headers["In-Reply-To"] = in_reply_to
        headers["References"] = " ".join(references)
    if entry.is_auto_reply:
        # RFC 3834: lets the customer's autoresponders stay silent; Exchange reads the second.
        headers["Auto-Submitted"] = "auto-replied"
        headers["X-Auto-Response-Suppress"] = "All"
    text, html = _with_status_link(entry)
    mail = EmailMultiAlternatives(
        subject=subject_for(ticket),
        body=text,
        # formataddr quotes specials and RFC 2047-encodes a non-ASCII display name.
        from_email=formataddr((channel.name, address)),
        to=[entry.identity.value],
        reply_to=[reply_address(channel, ticket)],
        headers=headers,
    )
    mail.attach_alternative(html, "text/html")
    for attachment in entry.attachments.all():
        with attachment.file.open("rb") as handle:
            data = handle.read()
        mail.attach(_attachment_part(attachment.filename, data, attachment.content_type))
    return mail


def _with_status_link(entry: TimelineEntry) -> tuple[str, str]:
    """The entry's text and HTML with the ticket's signed status link at the end (the customer
    follows the request on the portal without signing in)."""
    from django.utils import translation

    from tickets.portal.links import status_url

    url = status_url(entry.ticket)
    with translation.override(entry.ticket.customer.language or None):
        label = _("Follow your request #%(number)s online:") % {"number": entry.ticket.number}
    text = f"{entry.text or ''}\n\n-- \n{label} {url}\n"
    footer = f'<p style="color:#666;font-size:90%">{escape(label)} <a href="{escape(url)}">{escape(url)}</a></p>'
    html = entry.html or _html_from_text(entry.text or "")
    lower = html.lower()
    at = lower.rfind("</body>")
    html = html[:at] + footer + html[at:] if at != -1 else html + footer
    return text, html


def notification_email(channel: Channel, address: str, text: str, subject: str) -> EmailMultiAlternatives:
    """A message outside any ticket (a portal sign-in link, a survey question), marked automatic."""
    own = channel.settings.get("address", "")
    _split_address(own)
    mail = EmailMultiAlternatives(
        subject=subject or channel.name, body=text, from_email=formataddr((channel.name, own)), to=[address],
        headers={"Auto-Submitted": "auto-generated", "X-Auto-Response-Suppress": "All"},
    )
    mail.attach_alternative(_html_from_text(text), "text/html")
    return mail


def send_notification(channel: Channel, address: str, text: str, *, subject: str = "") -> None:
    """Send `notification_email` over the channel's SMTP server or ESP. A send whose outcome is
    unknown counts as a transient failure: a second sign-in link or survey question is harmless."""
    mail = notification_email(channel, address, text, subject)
    esp = (channel.settings.get("esp") or "").strip()
    try:
        if esp:
            _send_esp(channel, esp, mail)
        else:
            _send_smtp(channel, mail)
    except UnknownOutcome as exc:
        raise TransientSendError(str(exc)) from exc


def _attachment_part(filename: str, data: bytes, content_type: str) -> MIMEPart:
    """Base64 of the exact stored bytes whatever the type: a text file keeps its own line endings
    and last byte (Django's text path would re-encode it and add a newline)."""
    maintype, _sep, subtype = (content_type or "").partition("/")
    if not maintype or not subtype:
        maintype, subtype = "application", "octet-stream"
    params = {}
    if maintype == "text":
        try:
            data.decode("utf-8")
            params["charset"] = "utf-8"
        except UnicodeDecodeError:
            pass
    part = MIMEPart(policy=email.policy.default)
    part.set_content(data, maintype, subtype, cte="base64", disposition="attachment", filename=filename, params=params)
    return part


# --- sending --------------------------------------------------------------------------------------

def send_entry(entry: TimelineEntry) -> SendResult:
    channel = entry.channel
    mail = build_email(entry)
    message_id = _bare(mail.extra_headers["Message-ID"])
    esp = (channel.settings.get("esp") or "").strip()
    if esp:
        detail = _send_esp(channel, esp, mail)
        return SendResult(provider_message_id=message_id, detail=detail,
                          data={"esp_message_id": _bare(detail)} if detail else {})
    _send_smtp(channel, mail)
    return SendResult(provider_message_id=message_id)


def esp_backend_path(esp: str) -> str:
    if not ESP_NAME_RE.match(esp):
        raise PermanentSendError(_("Unknown email service provider %(esp)s.") % {"esp": esp})
    return f"anymail.backends.{esp}.EmailBackend"


def _send_esp(channel: Channel, esp: str, mail: EmailMultiAlternatives) -> str:
    """Send through an anymail backend. Its options: settings["esp_options"] and the channel's
    secrets named esp_<option> (esp_api_key -> api_key). Returns the ESP's message id."""
    import requests
    from anymail.exceptions import AnymailAPIError, AnymailError, AnymailRecipientsRefused

    try:
        backend_class = import_string(esp_backend_path(esp))
    except ImportError as exc:
        raise PermanentSendError(_("Unknown email service provider %(esp)s.") % {"esp": esp}) from exc
    options = dict(channel.settings.get("esp_options") or {})
    secrets = channel.secrets
    options.update({name.removeprefix("esp_"): value for name, value in secrets.items() if name.startswith("esp_")})
    try:
        backend = backend_class(fail_silently=False, **options)
        backend.send_messages([mail])
    except AnymailRecipientsRefused as exc:
        raise PermanentSendError(_scrub(str(exc), secrets)) from exc
    except AnymailAPIError as exc:
        cause = exc.__cause__
        if isinstance(cause, requests.ConnectionError):  # includes ConnectTimeout: nothing was sent
            raise TransientSendError(_scrub(str(exc), secrets)) from exc
        if isinstance(cause, requests.Timeout):
            raise UnknownOutcome(_scrub(str(exc), secrets)) from exc
        status = getattr(exc, "status_code", None)
        if status is None or status in (408, 429) or status >= 500:
            raise TransientSendError(_scrub(str(exc), secrets)) from exc
        raise PermanentSendError(_scrub(str(exc), secrets)) from exc
    except (AnymailError, ImproperlyConfigured) as exc:
        # Configuration and serialization problems: retrying the same message cannot help.
        raise PermanentSendError(_scrub(str(exc), secrets)) from exc
    status = getattr(mail, "anymail_status", None)
    if status is not None and status.status and status.status <= {"rejected", "invalid"}:
        raise PermanentSendError(_("The email service provider rejected the message (%(status)s).") % {
            "status": ", ".join(sorted(status.status))})
    return str(status.message_id) if status is not None and status.message_id is not None else ""


def _scrub(text: str, secrets: dict) -> str:
    for value in secrets.values():
        if isinstance(value, str) and len(value) >= 4:
            text = text.replace(value, "***")
    return text


def _reply_text(code: int, message: bytes | str) -> str:
    if isinstance(message, bytes):
        message = message.decode("utf-8", "replace")
    return f"{code} {' '.join(message.split())}".strip()


def _classify(code: int, reason: str, what: str) -> Exception:
    text = f"{what}: {reason}"
    if 400 <= code < 500:
        return TransientSendError(text)
    if code >= 500:
        return PermanentSendError(text)
    return TransientSendError(text)  # a nonsensical code: let a later attempt find out


def smtp_test_connection(channel: Channel) -> tuple[bool, str]:
    """The outgoing half of the admin's "test connection": connect, TLS as configured, log in, and
    quit without sending. Says what failed, never the password."""
    try:
        _send_smtp(channel, None)
    except (PermanentSendError, TransientSendError, UnknownOutcome) as exc:
        return False, str(exc)
    where = {"host": channel.settings.get("smtp_host"), "port": _smtp_port(channel.settings)}
    if channel.settings.get("smtp_user"):
        return True, _("Connected to %(host)s:%(port)s and logged in.") % where
    return True, _("Connected to %(host)s:%(port)s (no login configured).") % where


def _smtp_port(settings: dict) -> int:
    return int(settings.get("smtp_port") or DEFAULT_PORTS.get(settings.get("smtp_security") or "starttls", 25))


def _send_smtp(channel: Channel, mail: EmailMultiAlternatives | None) -> None:
    """Send `mail` over the channel's SMTP server; with None, only connect and log in."""
    settings = channel.settings
    security = settings.get("smtp_security") or "starttls"
    host = settings.get("smtp_host") or ""
    port = _smtp_port(settings)
    user = settings.get("smtp_user") or ""
    password = channel.secret("smtp_password") if user else ""
    secrets = {"smtp_password": password}
    if not host:
        raise PermanentSendError(_("The channel has no SMTP server configured."))
    local, domain = _split_address(settings.get("address", ""))
    sender = f"{local}@{domain}"
    recipients = mail.recipients() if mail is not None else []
    # 7-bit transfer encodings (quoted-printable, base64) go through every relay, with or without
    # 8BITMIME, and the headers are RFC 2047-encoded: the bytes on the wire are plain ASCII.
    data = mail.message(policy=WIRE_POLICY).as_bytes() if mail is not None else b""
    body_sent = False
    smtp: smtplib.SMTP | None = None
    try:
        context = ssl.create_default_context()
        if security == "ssl":
            smtp = smtplib.SMTP_SSL(host, port, timeout=SMTP_TIMEOUT, context=context)
        else:
            smtp = smtplib.SMTP(host, port, timeout=SMTP_TIMEOUT)
        smtp.ehlo_or_helo_if_needed()
        if security == "starttls":
            smtp.starttls(context=context)
            smtp.ehlo()
        if user:
            smtp.login(user, password)
        if mail is None:
            return
        options = []
        if not all(addr.isascii() for addr in [sender, *recipients]) and smtp.has_extn("smtputf8"):
            options.append("SMTPUTF8")
        code, reply = smtp.mail(sender, options)
        if code != 250:
            raise smtplib.SMTPSenderRefused(code, reply, sender)
        for recipient in recipients:
            code, reply = smtp.rcpt(recipient)
            if code not in (250, 251):
                raise smtplib.SMTPRecipientsRefused({recipient: (code, reply)})
        code, reply = smtp.docmd("DATA")
        if code != 354:
            raise smtplib.SMTPDataError(code, reply)
        # Until the terminating "." has left, the server cannot have accepted the message; after
        # it, a lost answer means it may have (smtplib.SMTP.data does the same dot-stuffing).
        payload = re.sub(rb"(?m)^\.", b"..", data)
        if not payload.endswith(b"\r\n"):
            payload += b"\r\n"
        smtp.send(payload + b".\r\n")
        body_sent = True
        code, reply = smtp.getreply()
        if code != 250:
            raise smtplib.SMTPDataError(code, reply)
    except smtplib.SMTPRecipientsRefused as exc:
        (recipient, (code, reply)), *_rest = exc.recipients.items()
        raise _classify(code, _reply_text(code, reply), _("Recipient %(rcpt)s refused") % {"rcpt": recipient}) from None
    except smtplib.SMTPSenderRefused as exc:
        raise _classify(exc.smtp_code, _reply_text(exc.smtp_code, exc.smtp_error), _("Sender refused")) from None
    except smtplib.SMTPAuthenticationError as exc:
        raise _classify(exc.smtp_code, _reply_text(exc.smtp_code, exc.smtp_error), _("SMTP authentication failed")) from None
    except smtplib.SMTPDataError as exc:
        raise _classify(exc.smtp_code, _reply_text(exc.smtp_code, exc.smtp_error), _("Message refused")) from None
    except smtplib.SMTPResponseException as exc:
        # Greeting, HELO, STARTTLS and other command errors.
        raise _classify(exc.smtp_code, _reply_text(exc.smtp_code, exc.smtp_error), _("SMTP server error")) from None
    except smtplib.SMTPNotSupportedError as exc:
        raise PermanentSendError(_("The SMTP server does not support %(what)s.") % {"what": _scrub(str(exc), secrets)}) from None
    except ssl.SSLCertVerificationError as exc:
        raise PermanentSendError(_("TLS certificate verification failed: %(reason)s") % {
            "reason": exc.verify_message or exc.reason}) from None
    except (smtplib.SMTPServerDisconnected, OSError) as exc:
        # OSError covers refused connections, DNS failures, resets and socket.timeout.
        if smtp is not None:
            smtp.close()  # a QUIT on a timed-out connection would wait out the timeout again
        reason = _scrub(f"{exc.__class__.__name__}: {exc}", secrets)
        if body_sent:
            raise UnknownOutcome(
                _("The SMTP server did not confirm the message (%(reason)s); it may have been accepted.") % {"reason": reason}
            ) from None
        raise TransientSendError(_("Cannot reach the SMTP server %(host)s:%(port)s (%(reason)s)") % {
            "host": host, "port": port, "reason": reason}) from None
    finally:
        if smtp is not None:
            _quit(smtp)


def _quit(smtp: smtplib.SMTP) -> None:
    try:
        if smtp.sock is not None:
            smtp.quit()
    except OSError:  # smtplib's errors and socket.timeout are OSErrors
        pass  # the outcome is decided; a failed goodbye changes nothing
    finally:
        smtp.close()
