from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils.translation import gettext_lazy as _


class User(AbstractUser):
    """A staff member: agent, supervisor or admin (Django groups carry the role)."""

    language = models.CharField(
        _("language"), max_length=8, choices=settings.LANGUAGES, blank=True,
        help_text=_("Interface language; empty follows the browser."),
    )

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")

    @property
    def display_name(self) -> str:
        return self.get_full_name() or self.username


class ApiToken(models.Model):
    """A named, revocable API credential. Only a SHA-256 of the key is stored.

    `scopes` lists the parts of /api/v1/ the token may use (each API view declares its own with a
    `token_scope` attribute, enforced in omnicenter/authentication.py); `read_only` further limits it
    to GET, HEAD and OPTIONS. A list of strings in a JSONField works on PostgreSQL and SQLite alike.
    """

    class Scope(models.TextChoices):
        KB = "kb", _("knowledge base articles")
        CATALOG = "catalog", _("catalog products and configuration validation")
        CUSTOMERS = "customers", _("customers, their timelines, merges and GDPR export")
        TICKETS = "tickets", _("tickets, their timelines and replies")
        CHANNELS = "channels", _("channel configuration")
        STAFF = "staff", _("teams and users")

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(_("name"), max_length=100)
    prefix = models.CharField(max_length=12, editable=False)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    read_only = models.BooleanField(_("read-only"), default=False)
    scopes = models.JSONField(_("scopes"), default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    def allows_scope(self, scope: str) -> bool:
        return scope in self.scopes


class OneTimeSecret(models.Model):
    """What a one-time secret sent to someone keeps (portal sign-in tokens, chat email codes).

    Only a hash of the secret is looked up; the secret itself waits encrypted in `outbox` until the
    task that sends it has done so (tasks take ids, never secrets), and
    `channels_inbound.delivery.secret_send` blanks it then.
    """

    outbox = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    send_error = models.TextField(blank=True)

    class Meta:
        abstract = True


class Heartbeat(models.Model):
    """Last time a worker ran the beat-scheduled heartbeat task: proof that beat and workers live."""

    name = models.CharField(max_length=50, primary_key=True)
    at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} at {self.at:%Y-%m-%d %H:%M:%S}"
