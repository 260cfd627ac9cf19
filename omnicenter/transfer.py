"""The parts of CSV and JSON import and export that the catalog and the knowledge base share: the
upload form of their admin screens and the download response of an export. What a file holds, how
it is checked and written, stays in each app (``catalog/transfer.py``, ``knowledge/transfer.py``).
"""

from __future__ import annotations

from django import forms
from django.http import Http404, HttpResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

CONTENT_TYPES = {"csv": "text/csv; charset=utf-8", "json": "application/json; charset=utf-8"}


class ImportForm(forms.Form):
    """A .csv or .json file of UTF-8 text (a BOM is dropped), and whether to only check it.
    ``cleaned_data["file"]`` is ``{"content": str, "format": "csv" | "json"}``."""

    file = forms.FileField(label=gettext_lazy("CSV or JSON file"))
    dry_run = forms.BooleanField(label=gettext_lazy("Dry run: check only, import nothing"), required=False, initial=True)

    max_megabytes = 10

    def clean_file(self) -> dict:
        upload = self.cleaned_data["file"]
        name = upload.name.lower()
        if not name.endswith((".csv", ".json")):
            raise forms.ValidationError(_("Upload a .csv or .json file."))
        if upload.size > self.max_megabytes * 1024 * 1024:
            raise forms.ValidationError(_("The file is larger than %(n)s MB.") % {"n": self.max_megabytes})
        try:
            content = upload.read().decode("utf-8-sig")
        except UnicodeDecodeError:
            raise forms.ValidationError(_("The file is not UTF-8 text.")) from None
        return {"content": content, "format": "csv" if name.endswith(".csv") else "json"}


def export_response(content: str, *, fmt: str, name: str) -> HttpResponse:
    """An export as a download named ``<name>-<UTC date and time>.<fmt>``; 404 for another format."""
    if fmt not in CONTENT_TYPES:
        raise Http404
    response = HttpResponse(content, content_type=CONTENT_TYPES[fmt])
    response["Content-Disposition"] = f'attachment; filename="{name}-{timezone.now():%Y%m%d-%H%M}.{fmt}"'
    return response
