from __future__ import annotations

from django import forms
from django.urls import reverse_lazy
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from tickets.forms import AttachmentMixin


class SigninForm(forms.Form):
    address = forms.CharField(label=_("Email address or phone number"), max_length=320,
                              widget=forms.TextInput(attrs={"autocomplete": "username", "autofocus": True}))


class CodeForm(forms.Form):
    code = forms.CharField(label=_("Code"), max_length=12,
                           widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}))


class ReplyForm(AttachmentMixin, forms.Form):
    text = forms.CharField(label=_("Your message"), widget=forms.Textarea(attrs={"rows": 4}), max_length=20_000, required=False)
    attachment = forms.FileField(label=_("Attach a file"), required=False)


class NewRequestForm(AttachmentMixin, forms.Form):
    subject = forms.CharField(label=_("Subject"), max_length=300, required=False)
    text = forms.CharField(label=_("How can we help?"), max_length=20_000,
                           widget=forms.Textarea(attrs={"rows": 6, "hx-get": reverse_lazy("portal-suggest"), "hx-trigger": "keyup changed delay:600ms",
                                                        "hx-target": "#suggestions"}))
    attachment = forms.FileField(label=_("Attach a file"), required=False)


class CallbackForm(forms.Form):
    phone = forms.CharField(label=_("Phone number"), max_length=40)
    preferred_at = forms.DateTimeField(label=_("Preferred time"), input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"],
                                       widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"))
    note = forms.CharField(label=_("Anything we should know?"), max_length=300, required=False)

    def clean_preferred_at(self):
        value = self.cleaned_data["preferred_at"]
        return value if timezone.is_aware(value) else timezone.make_aware(value)


SCORE_LABELS = {5: _("5 – Great"), 4: _("4 – Good"), 3: _("3 – OK"), 2: _("2 – Bad"), 1: _("1 – Very bad")}


class RateForm(forms.Form):
    score = forms.TypedChoiceField(label=_("Your rating"), coerce=int, choices=list(SCORE_LABELS.items()),
                                   widget=forms.RadioSelect)
    comment = forms.CharField(label=_("Comment (optional)"), widget=forms.Textarea(attrs={"rows": 3}), max_length=4000, required=False)


class NpsForm(forms.Form):
    score = forms.TypedChoiceField(label=_("How likely are you to recommend us? (0 = not at all, 10 = extremely)"),
                                   coerce=int, choices=[(n, str(n)) for n in range(11)], widget=forms.RadioSelect)
    comment = forms.CharField(label=_("What is the main reason for your score?"), widget=forms.Textarea(attrs={"rows": 3}),
                              max_length=4000, required=False)
