from __future__ import annotations

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from knowledge.languages import kb_languages
from knowledge.models import Article, Category
from omnicenter.transfer import ImportForm as BaseImportForm


def _language_choices():
    names = dict(settings.LANGUAGES)
    return [(code, names.get(code, code)) for code in kb_languages()]


class ArticleForm(forms.Form):
    """Article settings plus one translation (the language being edited)."""

    slug = forms.CharField(label=_("Slug (URL)"), max_length=120)
    category = forms.ModelChoiceField(label=_("Category"), queryset=Category.objects.all(), required=False)
    status = forms.ChoiceField(label=_("Status"), choices=Article.Status.choices)
    visibility = forms.ChoiceField(label=_("Visibility"), choices=Article.Visibility.choices)
    source_language = forms.ChoiceField(label=_("Source language"), choices=_language_choices)
    tags = forms.CharField(label=_("Tags (comma-separated)"), required=False, max_length=1000)
    related_product_skus = forms.CharField(label=_("Related products (SKUs, comma-separated)"), required=False, max_length=2000)
    related_articles = forms.CharField(label=_("Related articles (slugs, comma-separated)"), required=False, max_length=2000)
    title = forms.CharField(label=_("Title"), max_length=300)
    body = forms.CharField(label=_("Main body (Markdown)"), widget=forms.Textarea(attrs={"rows": 14}), max_length=200_000)
    short_text = forms.CharField(
        label=_("Short text for SMS, WhatsApp and chat (empty: the main body)"), required=False,
        widget=forms.Textarea(attrs={"rows": 3}), max_length=1000,
    )
    rich_body = forms.CharField(
        label=_("Rich body for email, portal and help center (Markdown; empty: the main body)"), required=False,
        widget=forms.Textarea(attrs={"rows": 8}), max_length=200_000,
    )

    def clean_related_articles(self) -> list[Article]:
        slugs = [s.strip() for s in self.cleaned_data["related_articles"].split(",") if s.strip()]
        found = list(Article.objects.filter(slug__in=slugs))
        unknown = sorted(set(slugs) - {a.slug for a in found})
        if unknown:
            raise forms.ValidationError(_("Unknown articles: %(slugs)s") % {"slugs": ", ".join(unknown)})
        return found


class ImportForm(BaseImportForm):
    max_megabytes = 20
