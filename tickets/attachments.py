"""Attachment storage: size limit, type sniffed from the bytes, safe names."""

from __future__ import annotations

import hashlib
import re
import unicodedata

import filetype
from django.conf import settings
from django.core.files.base import ContentFile
from django.utils.translation import gettext as _

from omnicenter.errors import DomainError
from tickets.models import Attachment, TimelineEntry


class AttachmentRejected(DomainError):
    status_code = 413
    code = "attachment_rejected"


def safe_filename(name: str) -> str:
    name = unicodedata.normalize("NFC", name or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = re.sub(r"[\x00-\x1f\x7f\"<>:|?*]", "", name).strip(" .")
    return name[:200] or "attachment"


def sniff_content_type(data: bytes) -> str:
    """The type the bytes are, not the type the sender claimed (a .pdf that is an .exe stays an .exe)."""
    kind = filetype.guess(data[:8192])
    if kind is not None:
        return kind.mime
    try:
        data[:65536].decode("utf-8")
    except UnicodeDecodeError:
        return "application/octet-stream"
    return "text/plain"


def attachment_store(*, entry: TimelineEntry, filename: str, data: bytes, claimed_type: str = "") -> Attachment:
    if len(data) > settings.ATTACHMENT_MAX_BYTES:
        raise AttachmentRejected(
            _("The attachment is larger than the limit of %(limit)s bytes.") % {"limit": settings.ATTACHMENT_MAX_BYTES}
        )
    attachment = Attachment(
        entry=entry,
        filename=safe_filename(filename),
        content_type=sniff_content_type(data),
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
    )
    attachment.file.save("upload", ContentFile(data), save=False)
    attachment.save()
    return attachment
