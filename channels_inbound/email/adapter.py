"""The `email` channel: mail polled over IMAP (or imported) in, replies out over SMTP or an ESP."""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from channels_inbound.base import Adapter, NormalizedMessage, SendResult, Unprocessable
from channels_inbound.registry import register

if TYPE_CHECKING:
    from channels_inbound.email.parser import ParsedEmail
    from channels_inbound.models import Channel, InboundEvent
    from tickets.models import TimelineEntry

SECURITY = [("ssl", "SSL/TLS"), ("starttls", "STARTTLS"), ("none", _("None (plain text)"))]
TICKET_NUMBER = re.compile(r"\[#(\d{1,12})\]")


ACKNOWLEDGEMENT_MAX_LENGTH = 5000


class EmailSettings(serializers.Serializer):
    address = serializers.EmailField(help_text=_("The address customers write to."))
    aliases = serializers.ListField(child=serializers.EmailField(), required=False, default=list)
    imap_host = serializers.CharField(required=False, allow_blank=True, max_length=253)
    imap_port = serializers.IntegerField(required=False, min_value=1, max_value=65535, default=993)
    imap_user = serializers.CharField(required=False, allow_blank=True, max_length=320)
    imap_password = serializers.CharField(required=False, allow_blank=True, max_length=500, write_only=True)
    imap_folder = serializers.CharField(required=False, default="INBOX", max_length=200)
    imap_security = serializers.ChoiceField(choices=SECURITY, required=False, default="ssl")
    smtp_host = serializers.CharField(required=False, allow_blank=True, max_length=253)
    smtp_port = serializers.IntegerField(required=False, min_value=1, max_value=65535, default=587)
    smtp_user = serializers.CharField(required=False, allow_blank=True, max_length=320)
    smtp_password = serializers.CharField(required=False, allow_blank=True, max_length=500, write_only=True)
    smtp_security = serializers.ChoiceField(choices=SECURITY, required=False, default="starttls")
    auto_acknowledge = serializers.BooleanField(
        required=False, default=False,
        help_text=_("Answer each new ticket once with an acknowledgement in the customer's language."),
    )
    acknowledgement_templates = serializers.DictField(
        child=serializers.CharField(allow_blank=True, max_length=ACKNOWLEDGEMENT_MAX_LENGTH, trim_whitespace=False),
        required=False, default=dict,
        help_text=_("Your own acknowledgement text per language, e.g. {\"pl\": \"...\"}. {number}, {status_link} "
                    "and {subject} are replaced; anything else is sent as written. A language left out or empty "
                    "gets the built-in text."),
    )
    esp = serializers.CharField(
        required=False, allow_blank=True, max_length=50,
        help_text=_("Send through this anymail ESP (e.g. mailgun, postmark, sendgrid, amazon_ses) instead of SMTP."),
    )

    def validate_acknowledgement_templates(self, value: dict) -> dict:
        from django.conf import settings

        codes = [code for code, _name in settings.LANGUAGES]
        unknown = sorted(set(value) - set(codes))
        if unknown:
            raise serializers.ValidationError(
                _("No such language: %(unknown)s. Use one of: %(codes)s.")
                % {"unknown": ", ".join(unknown), "codes": ", ".join(codes)})
        return value


@dataclass
class ReadEmail:
    parsed: ParsedEmail
    #: None for a bounce or another delivery report: nobody wrote, nothing goes on a timeline
    message: NormalizedMessage | None


def read_email(raw: bytes, *, oversized: bool = False, size: int | str = "?") -> ReadEmail:
    """Parse raw mail into what the spine ingests. Pure (no database), so an import can read a
    batch of mails before its transaction opens; raises Unprocessable for mail that cannot be read."""
    from channels_inbound.email.parser import UnparseableEmail, parse_email, to_normalized

    try:
        parsed = parse_email(raw)
        if parsed.is_bounce or parsed.dsn_action:  # a "delayed" or "relayed" report: nothing failed, nobody wrote
            return ReadEmail(parsed=parsed, message=None)
        message = to_normalized(parsed, raw_sha256=hashlib.sha256(raw).hexdigest())
    except UnparseableEmail as exc:
        # Kept raw on the event, shown to admins; retrying cannot make it parse.
        raise Unprocessable(f"unparseable email: {exc}") from exc
    if oversized:
        message.text = str(_("This email (%(size)s bytes) is larger than the import limit; only its headers were kept.")
                           % {"size": size})
        message.html, message.attachments = "", []
    if parsed.message_id:
        message.thread_keys.append("msgid:" + parsed.message_id)
    message.thread_keys += [f"ticket:{n}" for n in TICKET_NUMBER.findall(parsed.subject)]
    return ReadEmail(parsed=parsed, message=message)


class EmailAdapter(Adapter):
    kinds = ("email",)
    settings_serializer = EmailSettings
    secret_fields = ("imap_password", "smtp_password")
    identity_kinds = ("email",)

    def verify(self, request, channel: Channel) -> None:
        # Mail arrives by polling or import, not through a webhook of ours; ESP webhooks are
        # verified by anymail's own views.
        return None

    def parse(self, event: InboundEvent) -> list[NormalizedMessage]:
        payload = event.payload
        oversized = bool(payload.get("oversized"))
        raw = base64.b64decode(payload.get("headers_b64" if oversized else "raw_b64") or b"")
        return self.messages_from(event.channel, read_email(raw, oversized=oversized, size=payload.get("size", "?")))

    def messages_from(self, channel: Channel, mail: ReadEmail) -> list[NormalizedMessage]:
        """The messages a read mail brings (none for a bounce or a delivery report); a bounce marks
        the outbound message it quotes failed."""
        if mail.parsed.is_bounce:
            self._apply_bounce(channel, mail.parsed)
        return [mail.message] if mail.message is not None else []

    def after_ingest(self, entry: TimelineEntry) -> None:
        from tickets.services import ticket_acknowledge

        # Never to an auto-reply (mail loops), and only for the message that opened the ticket.
        channel_settings = entry.channel.settings or {}
        if channel_settings.get("auto_acknowledge") and not entry.is_auto_reply:
            ticket_acknowledge(ticket=entry.ticket, first=entry,
                               templates=channel_settings.get("acknowledgement_templates") or {})

    def _apply_bounce(self, channel: Channel, parsed) -> None:
        from channels_inbound.delivery import message_status_apply
        from tickets.models import TimelineEntry

        if not parsed.bounced_message_id:
            return
        entry = TimelineEntry.objects.filter(
            channel__kind="email", direction=TimelineEntry.Direction.OUTBOUND,
            provider_message_id=parsed.bounced_message_id,
        ).first()
        if entry is not None:
            message_status_apply(
                entry_id=entry.pk, status=TimelineEntry.Delivery.FAILED,
                error=parsed.bounce_reason or str(_("The recipient's mail server returned the message.")),
            )

    def webhook_urls(self, channel: Channel) -> dict[str, str]:
        """With an ESP: where its inbound route and event webhook point (behind basic auth)."""
        from django.conf import settings

        esp = ((channel.settings or {}).get("esp") or "").strip()
        if not esp or not settings.ANYMAIL.get("WEBHOOK_SECRET"):
            return {}
        base = f"{settings.PUBLIC_BASE_URL}/anymail/{esp}"
        return {"inbound": f"{base}/inbound/", "tracking": f"{base}/tracking/"}

    def test_connection(self, channel: Channel) -> tuple[bool, str]:
        """Both halves: the IMAP mailbox that is polled, and the SMTP server replies go out through
        (an ESP is not called: anymail checks its credentials when it sends)."""
        from channels_inbound.email.imap import mailbox_test_connection
        from channels_inbound.email.outbound import smtp_test_connection

        configured = channel.settings or {}
        if (configured.get("imap_host") or "").strip():
            imap_ok, imap = mailbox_test_connection(settings_data=configured, password=channel.secret("imap_password"))
        else:
            imap_ok, imap = True, str(_("No mailbox to poll: mail arrives through the ESP's inbound webhook."))
        esp = (configured.get("esp") or "").strip()
        if esp:
            smtp_ok, smtp = True, str(_("Replies go out through %(esp)s.") % {"esp": esp})
        elif (configured.get("smtp_host") or "").strip():
            smtp_ok, smtp = smtp_test_connection(channel)
        else:
            smtp_ok, smtp = False, str(_("No SMTP server and no ESP are configured: replies cannot be sent."))
        return imap_ok and smtp_ok, str(_("Incoming: %(imap)s Outgoing: %(smtp)s") % {"imap": imap, "smtp": smtp})

    can_send_text = True

    def can_send_text_on(self, channel: Channel) -> bool:
        configured = channel.settings or {}
        return bool((configured.get("smtp_host") or "").strip() or (configured.get("esp") or "").strip())

    def send_text(self, channel: Channel, address: str, text: str, *, subject: str = "") -> None:
        from channels_inbound.email.outbound import send_notification

        send_notification(channel, address, text, subject=subject)

    def send(self, entry: TimelineEntry) -> SendResult:
        from channels_inbound.email.outbound import send_entry

        result = send_entry(entry)
        if result.provider_message_id:
            result.thread_keys = [*result.thread_keys, "msgid:" + result.provider_message_id]
        return result


register(EmailAdapter)
