from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils.translation import gettext_lazy as _

from channels_inbound.base import InboundAttachment
from tickets.models import Team, Ticket


class ComposerForm(forms.Form):
    KIND_CHOICES = [("reply", _("Reply to customer")), ("note", _("Internal note"))]

    kind = forms.ChoiceField(label=_("Type"), choices=KIND_CHOICES, initial="reply", widget=forms.RadioSelect)
    text = forms.CharField(label=_("Message"), widget=forms.Textarea(attrs={"rows": 4, "data-composer-text": ""}), max_length=100_000)
    attachment = forms.FileField(label=_("Attachment"), required=False)

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
