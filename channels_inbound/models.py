from __future__ import annotations

import secrets

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from omnicenter import crypto
from omnicenter.models import OneTimeSecret


def new_channel_key() -> str:
    # Never starting with "-", which command lines (`import_mail --channel KEY`) would take for an option.
    while (key := secrets.token_urlsafe(12)).startswith("-"):
        pass
    return key


class Channel(models.Model):
    class Kind(models.TextChoices):
        API = "api", _("API")
        EMAIL = "email", _("Email")
        SMS = "sms", _("SMS")
        WHATSAPP = "whatsapp", _("WhatsApp")
        VOICE = "voice", _("Voice")
        MESSENGER = "messenger", _("Messenger")
        INSTAGRAM = "instagram", _("Instagram")
        TELEGRAM = "telegram", _("Telegram")
        WEBCHAT = "webchat", _("Web chat")

    key = models.CharField(max_length=40, unique=True, default=new_channel_key, editable=False)
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    name = models.CharField(_("name"), max_length=100)
    settings = models.JSONField(_("settings"), default=dict, blank=True)
    # Fernet token of a JSON object with this channel's secrets (FIELD_ENCRYPTION_KEYS).
    secrets_encrypted = models.TextField(blank=True, editable=False)
    is_active = models.BooleanField(_("active"), default=True)
    default_team = models.ForeignKey(
        "tickets.Team", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("default team")
    )
    rejected_requests = models.PositiveBigIntegerField(default=0, editable=False)
    last_rejected_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("channel")
        verbose_name_plural = _("channels")
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display()})"

    @property
    def secrets(self) -> dict:
        # Decrypted once per stored value (a Fernet decryption is ~0.1 ms; webhooks ask per request).
        memo = self.__dict__.get("_secrets_memo")
        if memo is None or memo[0] != self.secrets_encrypted:
            memo = (self.secrets_encrypted, crypto.decrypt_json(self.secrets_encrypted))
            self.__dict__["_secrets_memo"] = memo
        return dict(memo[1])

    def secret(self, name: str, default: str = "") -> str:
        return self.secrets.get(name, default)


class InboundEvent(models.Model):
    """A provider's payload, stored before the provider gets its 2xx: once here, never lost."""

    class Status(models.TextChoices):
        RECEIVED = "received", _("Received")
        PROCESSING = "processing", _("Processing")
        PROCESSED = "processed", _("Processed")
        FAILED = "failed", _("Failed")
        DEAD = "dead", _("Gave up")

    channel = models.ForeignKey(Channel, on_delete=models.PROTECT, related_name="inbound_events")
    external_id = models.CharField(max_length=255)
    payload = models.JSONField(default=dict)
    headers = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.RECEIVED)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    received_at = models.DateTimeField(auto_now_add=True)
    # When the sweep may pick it up again: after a backoff for failures, after a lease for processing.
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("inbound event")
        verbose_name_plural = _("inbound events")
        ordering = ["-received_at"]
        constraints = [models.UniqueConstraint(fields=["channel", "external_id"], name="inbound_event_unique")]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status__in=["received", "processing", "failed"]),
                name="inbound_event_pending",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.channel_id}:{self.external_id} ({self.status})"


class MailboxState(models.Model):
    """Where the IMAP poller of one mailbox folder stands (channels_inbound/email/imap.py).

    `lease_until` is taken with a conditional UPDATE, never a row lock held across network calls:
    one poll per mailbox at a time, whatever the number of workers or beat restarts.
    """

    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="mailbox_states")
    folder = models.CharField(max_length=255, default="INBOX")
    uidvalidity = models.BigIntegerField(null=True, blank=True)
    last_uid = models.BigIntegerField(default=0)
    lease_until = models.DateTimeField(null=True, blank=True)
    last_polled_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    messages_seen = models.PositiveBigIntegerField(default=0)

    class Meta:
        verbose_name = _("mailbox state")
        verbose_name_plural = _("mailbox states")
        constraints = [models.UniqueConstraint(fields=["channel", "folder"], name="mailbox_state_unique")]

    def __str__(self) -> str:
        return f"{self.channel_id}:{self.folder} (uid {self.last_uid})"


class WebchatEmailCode(OneTimeSecret):
    """A one-time code that confirms a chat visitor's email (docs/channels/webchat.md).

    Bound to one channel, one visitor and one email: the stored HMAC covers all three with the code,
    so a code sent for one address cannot confirm another, nor serve another visitor's token. Only
    the hash is kept; the code itself waits encrypted in `outbox` until the task has sent it (tasks
    take ids, never secrets). A used code is the record that this visitor proved this email.
    """

    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="+")
    visitor = models.CharField(max_length=320)  # the visitor identity's value (anon:… or user:…)
    email = models.CharField(max_length=320)
    code_hash = models.CharField(max_length=64)
    language = models.CharField(max_length=8, blank=True)

    class Meta:
        verbose_name = _("chat email code")
        verbose_name_plural = _("chat email codes")
        indexes = [models.Index(fields=["channel", "visitor", "expires_at"], name="webchat_email_code_visitor")]

    def __str__(self) -> str:
        return f"code for {self.email} ({self.visitor})"
