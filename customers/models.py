from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class Organization(models.Model):
    name = models.CharField(_("name"), max_length=200)
    domain = models.CharField(_("email domain"), max_length=253, blank=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("organization")
        verbose_name_plural = _("organizations")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Customer(models.Model):
    class Stage(models.TextChoices):
        PROSPECT = "prospect", _("Prospect")
        CUSTOMER = "customer", _("Customer")
        PARTNER = "partner", _("Partner")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    display_name = models.CharField(_("name"), max_length=200, blank=True)
    lifecycle_stage = models.CharField(_("lifecycle stage"), max_length=20, choices=Stage.choices, default=Stage.PROSPECT)
    language = models.CharField(_("language"), max_length=8, blank=True)
    attributes = models.JSONField(_("custom attributes"), default=dict, blank=True)
    organization = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.SET_NULL, related_name="customers",
        verbose_name=_("organization"),
    )
    # Set on the absorbed customer of a merge; its identities and tickets live on `merged_into`.
    merged_into = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    erased_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("customer")
        verbose_name_plural = _("customers")
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["display_name"])]

    def __str__(self) -> str:
        return self.display_name or str(_("Customer %(id)s") % {"id": self.pk})


class Identity(models.Model):
    """A way to reach a customer on a channel: an email, an E.164 phone, a social or external id.

    Verified identities are unique per (kind, namespace, value). An unverified claim (an email typed
    into the chat widget) is stored with verified=False on the claimant's own customer, so it can
    never attach anyone else's history.
    """

    class Kind(models.TextChoices):
        EMAIL = "email", _("Email")
        PHONE = "phone", _("Phone")
        EXTERNAL = "external", _("External id")
        MESSENGER = "messenger", _("Messenger")
        INSTAGRAM = "instagram", _("Instagram")
        TELEGRAM = "telegram", _("Telegram")
        VISITOR = "visitor", _("Chat visitor")

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="identities")
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    # Scopes ids that are only unique inside one channel or app (external ids per API channel,
    # page-scoped Messenger ids); empty for global ones (email, phone).
    namespace = models.CharField(max_length=100, blank=True, default="")
    value = models.CharField(_("value"), max_length=320)
    verified = models.BooleanField(_("verified"), default=True)
    display_name = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("identity")
        verbose_name_plural = _("identities")
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "namespace", "value"], condition=Q(verified=True), name="identity_unique_verified"
            ),
            # A customer may hold a verified identity and an unverified claim of the same value
            # (a merge brings them together); one unverified claim per value is enough.
            models.UniqueConstraint(
                fields=["customer", "kind", "namespace", "value"], condition=Q(verified=False),
                name="identity_unique_claim_per_customer",
            ),
        ]
        indexes = [models.Index(fields=["kind", "value"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.value}"


class ContactPreference(models.Model):
    """Opt-outs and messaging windows, kept per (identity, channel kind)."""

    identity = models.ForeignKey(Identity, on_delete=models.CASCADE, related_name="preferences")
    channel_kind = models.CharField(max_length=20)
    opted_out_at = models.DateTimeField(null=True, blank=True)
    window_expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["identity", "channel_kind"], name="preference_unique")]

    def __str__(self) -> str:
        return f"{self.identity} on {self.channel_kind}"


class MergeSuggestion(models.Model):
    """Two customers that one message tied together. Never merged automatically."""

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        MERGED = "merged", _("Merged")
        DISMISSED = "dismissed", _("Dismissed")

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    other = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    reason = models.CharField(max_length=300)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.OPEN)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("merge suggestion")
        verbose_name_plural = _("merge suggestions")
        constraints = [models.UniqueConstraint(fields=["customer", "other"], name="merge_suggestion_unique_pair")]

    def __str__(self) -> str:
        return f"{self.customer} ~ {self.other}"


class CustomerMerge(models.Model):
    """A merge, with exactly what moved, so that it can be undone."""

    into = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="merges_in")
    other = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="merges_out")
    merged_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    merged_at = models.DateTimeField(auto_now_add=True)
    # {"identities": [...ids], "tickets": [...ids], "into_before": {...fields}}
    moved = models.JSONField(default=dict)
    undone_at = models.DateTimeField(null=True, blank=True)
    undone_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        verbose_name = _("customer merge")
        verbose_name_plural = _("customer merges")
        ordering = ["-merged_at"]

    def __str__(self) -> str:
        return f"{self.other} → {self.into}"
