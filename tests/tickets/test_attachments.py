"""Attachments: typed by their bytes, safely named, size-limited, downloaded only by who may see them."""

from __future__ import annotations

import base64

import pytest

from tests.factories import EntryFactory, TicketFactory
from tickets.attachments import AttachmentRejected, attachment_store, safe_filename
from tickets.models import Attachment

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


@pytest.fixture(autouse=True)
def media_in_tmp(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture
def entry(people):
    ticket = TicketFactory(customer=people.customer, team=people.team_a, subject="Printer")
    return EntryFactory(ticket=ticket, author_customer=people.customer)


@pytest.mark.parametrize(("filename", "data", "claimed", "expected"), [
    ("evil.pdf", PNG, "application/pdf", "image/png"),
    ("photo.png", PDF, "image/png", "application/pdf"),
    ("notes.txt", "Zażółć gęślą jaźń".encode(), "application/x-msdownload", "text/plain"),
    ("blob.dat", b"\x00\xff\x13\x37" * 64, "text/html", "application/octet-stream"),
])
def test_the_content_type_is_sniffed_from_the_bytes_not_the_claim(entry, filename, data, claimed, expected):
    attachment = attachment_store(entry=entry, filename=filename, data=data, claimed_type=claimed)

    assert attachment.content_type == expected
    assert attachment.filename == filename
    assert attachment.size == len(data)


def test_the_stored_bytes_and_checksum_match_and_the_path_hides_the_name(entry):
    attachment = attachment_store(entry=entry, filename="invoice-2024.pdf", data=PDF)

    stored = Attachment.objects.get(pk=attachment.pk)
    with stored.file.open("rb") as handle:
        assert handle.read() == PDF
    assert "invoice" not in stored.file.name
    assert stored.public_id.hex in stored.file.name
    assert len(stored.sha256) == 64


@pytest.mark.parametrize(("given", "expected"), [
    ("../../etc/passwd", "passwd"),
    ("C:\\Users\\anna\\Desktop\\report.pdf", "report.pdf"),
    ("/var/www/index.html", "index.html"),
    ("inv\x00oice\r\n.pdf", "invoice.pdf"),
    ('a<b>c:"d|e?f*.txt', "abcdef.txt"),
    ("  ..hidden.  ", "hidden"),
    ("", "attachment"),
    ("../", "attachment"),
    ("x" * 300 + ".txt", "x" * 200),
])
def test_file_names_lose_paths_and_control_characters(given, expected):
    assert safe_filename(given) == expected


def test_a_stored_attachment_gets_the_safe_name(entry):
    attachment = attachment_store(entry=entry, filename="../../../etc/cron.d/evil\x07.sh", data=b"echo hi\n")

    assert attachment.filename == "evil.sh"


def test_an_attachment_over_the_limit_is_rejected_and_nothing_is_stored(entry, settings):
    settings.ATTACHMENT_MAX_BYTES = 16

    attachment_store(entry=entry, filename="small.txt", data=b"x" * 16)
    with pytest.raises(AttachmentRejected) as raised:
        attachment_store(entry=entry, filename="big.txt", data=b"x" * 17)

    assert raised.value.status_code == 413
    assert "16" in raised.value.message
    assert list(entry.attachments.values_list("filename", flat=True)) == ["small.txt"]


def test_an_inbound_attachment_over_the_limit_is_refused_at_the_door(people, api_channel, post_inbound, settings):
    settings.ATTACHMENT_MAX_BYTES = 16
    payload = {"id": "m-big", "from": {"email": "anna@example.pl"}, "text": "see file",
               "attachments": [{"filename": "big.bin", "data_base64": base64.b64encode(b"x" * 17).decode()}]}

    response = post_inbound(api_channel, payload)

    assert response.status_code == 400
    assert "attachments" in response.json()["errors"]
    assert not Attachment.objects.exists()


def test_an_inbound_attachment_lands_on_the_timeline(people, api_channel, post_inbound, django_capture_on_commit_callbacks):
    payload = {"id": "m-att", "from": {"email": "anna@example.pl"}, "text": "see file",
               "attachments": [{"filename": "scan.pdf", "content_type": "application/pdf",
                                "data_base64": base64.b64encode(PNG).decode()}]}

    with django_capture_on_commit_callbacks(execute=True):
        assert post_inbound(api_channel, payload).status_code == 202

    attachment = Attachment.objects.get()
    assert (attachment.filename, attachment.content_type) == ("scan.pdf", "image/png")
    assert attachment.entry.text == "see file"


# --- download -------------------------------------------------------------------------------------

def download_url(attachment: Attachment) -> str:
    return f"/app/attachments/{attachment.public_id}/"


def test_the_download_is_an_attachment_with_nosniff(people, entry, client):
    attachment = attachment_store(entry=entry, filename="evil.pdf", data=PNG)
    client.force_login(people.agent_a)

    response = client.get(download_url(attachment))

    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="evil.pdf"'
    assert response["Content-Type"] == "image/png"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response["Content-Security-Policy"]
    assert b"".join(response.streaming_content) == PNG


def test_a_non_ascii_file_name_is_encoded_in_the_header(people, entry, client):
    attachment = attachment_store(entry=entry, filename="Zażółć.txt", data=b"hi")
    client.force_login(people.agent_a)

    response = client.get(download_url(attachment))

    assert response["Content-Disposition"].startswith("attachment; filename*=utf-8''Za%C5%BC")


def test_an_agent_who_cannot_see_the_ticket_gets_404(people, entry, client):
    attachment = attachment_store(entry=entry, filename="private.txt", data=b"secret")
    client.force_login(people.agent_b)

    assert client.get(download_url(attachment)).status_code == 404


def test_anonymous_visitors_are_sent_to_sign_in(people, entry, client):
    attachment = attachment_store(entry=entry, filename="private.txt", data=b"secret")

    response = client.get(download_url(attachment))

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_an_unknown_attachment_id_is_404(people, client):
    client.force_login(people.supervisor)

    assert client.get("/app/attachments/00000000-0000-0000-0000-000000000000/").status_code == 404
