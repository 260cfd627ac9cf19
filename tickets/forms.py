from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils.translation import gettext_lazy as _

from channels_inbound.base import InboundAttachment
from tickets.models import Team, Ticket


class AttachmentMixin:
    """An optional `attachment` file field: checked against ATTACHMENT_MAX_BYTES, handed to services
    as InboundAttachments (the agent's composer and the customer portal)."""

    def clean_attachment(self):
        upload = self.cleaned_data.get("attachment")
        if upload and upload.size > settings.ATTACHMENT_MAX_BYTES:
            raise forms.ValidationError(
                _("The attachment is larger than the limit of %(limit)s bytes.") % {"limit": settings.ATTACHMENT_MAX_BYTES}
            )
        return upload

    def attachments(self) -> list[InboundAttachment]:
        upload = self.cleaned_data.get("attachment")
        if not upload:
            return []
        return [InboundAttachment(filename=upload.name, content_type=upload.content_type or "", data=upload.read())]


class ComposerForm(AttachmentMixin, forms.Form):
    KIND_CHOICES = [("reply", _("Reply to customer")), ("note", _("Internal note"))]

    kind = forms.ChoiceField(label=_("Type"), choices=KIND_CHOICES, initial="reply", widget=forms.RadioSelect)
    text = forms.CharField(label=_("Message"), widget=forms.Textarea(attrs={"rows": 4, "data-composer-text": "", "autocomplete": "off"}), max_length=100_000)
    attachment = forms.FileField(label=_("Attachment"), required=False)
    # "<channel id>:<identity id>" from the customer's reachable identities (tickets.workspace).
    target = forms.CharField(label=_("Reply on"), required=False, max_length=40)
    then_status = forms.ChoiceField(
        label=_("Then"), required=False,
        choices=[("", _("Keep the status")), ("pending", _("Set pending")), ("solved", _("Set solved"))],
    )
    # The newest timeline entry the agent saw when writing; newer ones trigger a warning first.
    last_entry = forms.IntegerField(required=False, widget=forms.HiddenInput, min_value=0)
    confirm = forms.BooleanField(required=False, widget=forms.HiddenInput)



class StaffChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj) -> str:
        return obj.display_name


class TicketUpdateForm(forms.Form):
    status = forms.ChoiceField(label=_("Status"), choices=Ticket.Status.choices)
    priority = forms.ChoiceField(label=_("Priority"), choices=Ticket.Priority.choices)
    team = forms.ModelChoiceField(label=_("Team"), queryset=Team.objects.all(), required=False, empty_label=_("No team"))
    assignee = StaffChoiceField(
        label=_("Assignee"), queryset=get_user_model().objects.filter(is_active=True, groups__isnull=False).distinct().order_by("username"),
        required=False, empty_label=_("Unassigned"),
    )


class BulkForm(forms.Form):
    ACTIONS = [
        ("assign", _("Assign")), ("status", _("Status")), ("priority", _("Priority")), ("tag", _("Add tag")),
        ("team", _("Team")), ("merge", _("Merge")),
    ]

    ids = forms.CharField(max_length=20_000)
    action = forms.ChoiceField(label=_("Action"), choices=ACTIONS)
    value = forms.CharField(label=_("Value"), max_length=100, required=False)

    def clean_ids(self) -> list[int]:
        ids = [int(v) for v in self.cleaned_data["ids"].split(",") if v.strip().isdigit()]
        if not ids or len(ids) > 500:
            raise forms.ValidationError(_("Select between 1 and 500 tickets."))
        return ids

    def changes(self) -> dict:
        """The service call's changes, or a ValidationError for a value that does not fit."""
        action, value = self.cleaned_data["action"], self.cleaned_data["value"].strip()
        if action == "status":
            if value not in Ticket.Status.values:
                raise forms.ValidationError(_("Choose a status."))
            return {"status": value}
        if action == "priority":
            if value not in Ticket.Priority.values:
                raise forms.ValidationError(_("Choose a priority."))
            return {"priority": value}
        if action == "team":
            if value in ("", "none"):
                return {"team": None}
            team = Team.objects.filter(pk=value if value.isdigit() else 0).first()
            if team is None:
                raise forms.ValidationError(_("Choose a team."))
            return {"team": team}
        if action == "tag":
            if not value:
                raise forms.ValidationError(_("Type a tag."))
            return {"add_tag": value[:50]}
        if value in ("", "none"):
            return {"assignee": None}
        user = get_user_model().objects.filter(pk=value if value.isdigit() else 0, is_active=True).first()
        if user is None:
            raise forms.ValidationError(_("Choose an agent."))
        return {"assignee": user}


class CannedResponseForm(forms.Form):
    title = forms.CharField(label=_("Title"), max_length=100)
    body = forms.CharField(
        label=_("Text"), widget=forms.Textarea(attrs={"rows": 4}), max_length=20_000,
        help_text=_("Variables: {{customer.first_name}}, {{customer.name}}, {{agent.name}}, {{ticket.number}}"),
    )
    shared = forms.BooleanField(label=_("Shared with every agent"), required=False)
