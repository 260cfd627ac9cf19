from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from omnicenter.models import OneTimeSecret


class Team(models.Model):
    name = models.CharField(_("name"), max_length=100, unique=True)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="teams", verbose_name=_("members"))
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("team")
        verbose_name_plural = _("teams")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Tag(models.Model):
    name = models.CharField(_("name"), max_length=50, unique=True)

    class Meta:
        verbose_name = _("tag")
        verbose_name_plural = _("tags")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Ticket(models.Model):
    class Status(models.TextChoices):
        NEW = "new", _("New")
        OPEN = "open", _("Open")
        PENDING = "pending", _("Pending")
        SOLVED = "solved", _("Solved")
        CLOSED = "closed", _("Closed")

    class Priority(models.TextChoices):
        LOW = "low", _("Low")
        NORMAL = "normal", _("Normal")
        HIGH = "high", _("High")
        URGENT = "urgent", _("Urgent")

    PRIORITY_RANK = {"low": 0, "normal": 1, "high": 2, "urgent": 3}

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    subject = models.CharField(_("subject"), max_length=300, blank=True)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.NEW)
    priority = models.CharField(_("priority"), max_length=10, choices=Priority.choices, default=Priority.NORMAL)
    customer = models.ForeignKey("customers.Customer", on_delete=models.PROTECT, related_name="tickets", verbose_name=_("customer"))
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="tickets", verbose_name=_("team"))
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="assigned_tickets",
        verbose_name=_("assignee"),
    )
    origin_channel = models.ForeignKey(
        "channels_inbound.Channel", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        verbose_name=_("origin channel"),
    )
    tags = models.ManyToManyField(Tag, blank=True, related_name="tickets", verbose_name=_("tags"))
    # A message on a closed ticket opens a new one that points back here.
    follow_up_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="follow_ups")
    # Set on a ticket merged into another (tickets/workspace_services.ticket_merge); it is closed.
    merged_into = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    last_message_at = models.DateTimeField(null=True, blank=True)
    first_response_at = models.DateTimeField(null=True, blank=True)
    solved_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    # Bumped on every change; live events carry it so clients can drop stale refetches.
    version = models.PositiveIntegerField(default=1)

    class Meta:
        verbose_name = _("ticket")
        verbose_name_plural = _("tickets")
        ordering = ["-last_message_at", "-pk"]
        indexes = [
            models.Index(fields=["status", "team", "-last_message_at"]),
            models.Index(fields=["assignee", "status"]),
            models.Index(fields=["customer", "status"]),
            # The inbox's view counts read only this index (tickets/inbox.py `view_counts`).
            models.Index(fields=["team", "status", "assignee"], condition=Q(status__in=["new", "open", "pending", "solved"]),
                         name="ticket_counted"),
            # The open views' lists sort from this index alone: an index-only scan filtered by what the
            # agent may see, instead of reading every heap page that holds one of a team's open tickets.
            models.Index(fields=["team", "assignee", "priority", "last_message_at", "id"],
                         condition=Q(status__in=["new", "open", "pending"]), name="ticket_open_list"),
        ]

    def __str__(self) -> str:
        return f"#{self.number} {self.subject}"

    @property
    def number(self) -> int:
        """The human-readable ticket number agents and customers quote (#1042)."""
        return self.pk

    @property
    def is_open(self) -> bool:
        return self.status in (self.Status.NEW, self.Status.OPEN, self.Status.PENDING)


class TicketThread(models.Model):
    """Maps a channel's conversation hint (an API `thread`, an email Message-ID) to a ticket.

    Scoped by the customer who used it: a hint someone else sends (a forged In-Reply-To, a reused
    thread id) starts that sender's own conversation and never reaches another customer's ticket.
    """

    channel = models.ForeignKey("channels_inbound.Channel", on_delete=models.CASCADE, related_name="+")
    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=500)
    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="threads")

    class Meta:
        # Key before customer: threading looks a hint up by (channel, key) alone (a merged
        # customer's hints stay under the old customer), and this index then serves that lookup
        # instead of scanning every hint of the channel.
        constraints = [models.UniqueConstraint(fields=["channel", "key", "customer"], name="ticket_thread_unique")]

    def __str__(self) -> str:
        return f"{self.key} → #{self.ticket_id}"


class TimelineEntry(models.Model):
    class Kind(models.TextChoices):
        MESSAGE = "message", _("Message")
        NOTE = "note", _("Internal note")
        CALL = "call", _("Call")
        EVENT = "event", _("System event")

    class Direction(models.TextChoices):
        INBOUND = "in", _("Inbound")
        OUTBOUND = "out", _("Outbound")

    class Delivery(models.TextChoices):
        RECEIVED = "received", _("Received")
        QUEUED = "queued", _("Queued")
        SENDING = "sending", _("Sending")
        UNKNOWN = "unknown", _("Outcome unknown")
        SENT = "sent", _("Sent")
        DELIVERED = "delivered", _("Delivered")
        READ = "read", _("Read")
        FAILED = "failed", _("Failed")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="entries")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    direction = models.CharField(max_length=3, choices=Direction.choices, blank=True)
    channel = models.ForeignKey("channels_inbound.Channel", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    identity = models.ForeignKey("customers.Identity", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    author_user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    author_customer = models.ForeignKey("customers.Customer", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    inbound_event = models.ForeignKey(
        "channels_inbound.InboundEvent", null=True, blank=True, on_delete=models.SET_NULL, related_name="entries"
    )
    text = models.TextField(blank=True)
    html = models.TextField(blank=True)
    provider_message_id = models.CharField(max_length=255, blank=True)
    delivery_status = models.CharField(max_length=10, choices=Delivery.choices, blank=True)
    delivery_error = models.TextField(blank=True)
    delivery_attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    is_auto_reply = models.BooleanField(default=False)
    # Structured details: call data, system event (what changed, from, to), provider extras.
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)
    status_changed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("timeline entry")
        verbose_name_plural = _("timeline entries")
        ordering = ["created_at", "pk"]
        constraints = [
            # Idempotency: one entry per provider message, whatever the number of deliveries.
            models.UniqueConstraint(
                fields=["channel", "direction", "provider_message_id"],
                condition=~Q(provider_message_id=""),
                name="entry_unique_provider_message",
            ),
        ]
        indexes = [
            models.Index(fields=["ticket", "created_at"]),
            models.Index(
                fields=["delivery_status", "next_attempt_at"],
                condition=Q(delivery_status__in=["queued", "sending", "unknown"]),
                name="entry_outbound_pending",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} on #{self.ticket_id}"

    @property
    def is_public(self) -> bool:
        return self.kind in (self.Kind.MESSAGE, self.Kind.CALL)


def attachment_path(instance: Attachment, filename: str) -> str:
    # Unguessable and free of the sender's file name, which stays in `filename`.
    return f"attachments/{instance.public_id.hex[:2]}/{instance.public_id.hex}"


class Attachment(models.Model):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    entry = models.ForeignKey(TimelineEntry, on_delete=models.CASCADE, related_name="attachments")
    file = models.FileField(upload_to=attachment_path, max_length=200)
    filename = models.CharField(max_length=255)
    content_type = models.CharField(max_length=100)
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("attachment")
        verbose_name_plural = _("attachments")

    def __str__(self) -> str:
        return self.filename


# --- Customer portal and satisfaction surveys (tickets/portal/, docs/portal.md) --------------------


class PortalLoginToken(OneTimeSecret):
    """A magic link or a one-time code that signs a customer in to the portal once.

    Only a hash is stored. The raw secret is kept encrypted (FIELD_ENCRYPTION_KEYS) in `outbox`
    until the task that sends it has done so, because tasks take ids, never secrets.
    """

    class Kind(models.TextChoices):
        LINK = "link", _("Magic link")
        CODE = "code", _("One-time code")

    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="+")
    identity = models.ForeignKey("customers.Identity", on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=4, choices=Kind.choices)
    # sha256 of a link's secret; an HMAC of (identity, code) for a code. Lookups by hash.
    token_hash = models.CharField(max_length=64, db_index=True)

    class Meta:
        indexes = [models.Index(fields=["identity", "kind", "expires_at"])]

    def __str__(self) -> str:
        return f"{self.kind} for {self.identity_id}"


class CallbackRequest(models.Model):
    """A customer asked to be called back. The workspace's "Callbacks due" view lists the open
    ones by `preferred_at`: `ticket.callbacks.filter(done_at__isnull=True)`."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="callbacks")
    phone = models.CharField(_("phone"), max_length=20)
    preferred_at = models.DateTimeField(_("preferred time"))
    note = models.CharField(_("note"), max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    done_at = models.DateTimeField(null=True, blank=True)
    done_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        verbose_name = _("callback request")
        verbose_name_plural = _("callback requests")
        indexes = [models.Index(fields=["preferred_at"], condition=Q(done_at__isnull=True), name="callback_due")]

    def __str__(self) -> str:
        return f"{self.phone} at {self.preferred_at:%Y-%m-%d %H:%M} (#{self.ticket_id})"


class Deflection(models.Model):
    """A customer about to open a request found the answer in a suggested article instead."""

    customer = models.ForeignKey("customers.Customer", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    article_ref = models.CharField(max_length=100)
    query = models.CharField(max_length=300, blank=True)
    language = models.CharField(max_length=8, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    def __str__(self) -> str:
        return f"deflected by {self.article_ref}"


class SurveyInvitation(models.Model):
    """A CSAT or NPS question sent to a customer (one CSAT invitation per ticket)."""

    class Kind(models.TextChoices):
        CSAT = "csat", _("Satisfaction (CSAT)")
        NPS = "nps", _("Net promoter score (NPS)")

    kind = models.CharField(max_length=4, choices=Kind.choices)
    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="survey_invitations")
    # CSAT: the solved ticket; NPS: the customer's latest ticket when asked (for reports by team and agent).
    ticket = models.ForeignKey(Ticket, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    channel = models.ForeignKey("channels_inbound.Channel", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    identity = models.ForeignKey("customers.Identity", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    # "" until tried; "sent", "inline" (the channel shows it itself), "failed" or "skipped" with `error`.
    outcome = models.CharField(max_length=10, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["ticket"], condition=Q(kind="csat"), name="survey_one_csat_invitation_per_ticket"),
        ]
        indexes = [models.Index(fields=["customer", "kind", "created_at"])]

    def __str__(self) -> str:
        return f"{self.kind} to {self.customer_id}"


class CsatRating(models.Model):
    """The customer's rating of one ticket (1-5). One per ticket, changeable for a while; every
    version is kept in `CsatRatingChange`."""

    ticket = models.OneToOneField(Ticket, on_delete=models.CASCADE, related_name="csat")
    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="csat_ratings")
    # Copied from the ticket when rated, so reports keep the team, agent and channel of that moment.
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    agent = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    channel = models.ForeignKey("channels_inbound.Channel", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    score = models.PositiveSmallIntegerField(_("rating"))
    comment = models.TextField(_("comment"), blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("satisfaction rating")
        verbose_name_plural = _("satisfaction ratings")
        constraints = [models.CheckConstraint(condition=Q(score__gte=1, score__lte=5), name="csat_score_1_to_5")]

    def __str__(self) -> str:
        return f"{self.score}/5 on #{self.ticket_id}"


class CsatRatingChange(models.Model):
    rating = models.ForeignKey(CsatRating, on_delete=models.CASCADE, related_name="history")
    score = models.PositiveSmallIntegerField()
    comment = models.TextField(blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return f"{self.score}/5 at {self.at:%Y-%m-%d %H:%M}"


class NpsResponse(models.Model):
    invitation = models.OneToOneField(SurveyInvitation, on_delete=models.CASCADE, related_name="nps_response")
    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="nps_responses")
    score = models.PositiveSmallIntegerField(_("score"))
    comment = models.TextField(_("comment"), blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("NPS response")
        verbose_name_plural = _("NPS responses")
        constraints = [models.CheckConstraint(condition=Q(score__gte=0, score__lte=10), name="nps_score_0_to_10")]

    def __str__(self) -> str:
        return f"NPS {self.score} from {self.customer_id}"
# --- Agent workspace (issue 6): canned responses, read markers, mentions, presence -----------------

class CannedResponse(models.Model):
    """A reusable answer, found by typing `/` in the composer. No owner: shared with everyone.

    The body may hold {{customer.first_name}}, {{customer.name}}, {{agent.name}} and
    {{ticket.number}}; they are replaced as plain text (no template language)."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="canned_responses",
        verbose_name=_("owner"), help_text=_("Empty: shared with every agent."),
    )
    title = models.CharField(_("title"), max_length=100)
    body = models.TextField(_("text"))
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("canned response")
        verbose_name_plural = _("canned responses")
        ordering = ["title", "pk"]

    def __str__(self) -> str:
        return self.title


class TicketSeen(models.Model):
    """When an agent last looked at a ticket: newer messages make it unread for them."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="+")
    seen_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "ticket"], name="ticket_seen_unique")]

    def __str__(self) -> str:
        return f"{self.user_id} saw #{self.ticket_id}"


class Mention(models.Model):
    """An @mention of an agent in an internal note."""

    entry = models.ForeignKey(TimelineEntry, on_delete=models.CASCADE, related_name="mentions")
    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="mentions")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="mentions")
    created_at = models.DateTimeField(auto_now_add=True)
    seen_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["entry", "user"], name="mention_unique")]
        indexes = [models.Index(fields=["user", "seen_at"])]

    def __str__(self) -> str:
        return f"@{self.user_id} on #{self.ticket_id}"


class AgentPresence(models.Model):
    class Status(models.TextChoices):
        ONLINE = "online", _("Online")
        AWAY = "away", _("Away")
        OFFLINE = "offline", _("Offline")

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="presence")
    status = models.CharField(_("presence"), max_length=10, choices=Status.choices, default=Status.OFFLINE)
    # Set by hand (kept until changed by hand) rather than by activity.
    manual = models.BooleanField(default=False)
    last_seen_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("presence")
        verbose_name_plural = _("presence")

    def __str__(self) -> str:
        return f"{self.user_id}: {self.status}"


class SavedView(models.Model):
    """A named list filter (view + filters, as a query string), personal or shared, in a folder."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="saved_views",
        verbose_name=_("owner"), help_text=_("Empty: shared with every agent."),
    )
    name = models.CharField(_("name"), max_length=80)
    folder = models.CharField(_("folder"), max_length=60, blank=True)
    query = models.CharField(max_length=1000)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("saved view")
        verbose_name_plural = _("saved views")
        ordering = ["folder", "name", "pk"]

    def __str__(self) -> str:
        return self.name
