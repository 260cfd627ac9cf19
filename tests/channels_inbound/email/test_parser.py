"""The MIME parser over the mail corpus in tests/fixtures/mail/: one expected outcome per mail."""

from __future__ import annotations

import hashlib
import random
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from channels_inbound.email.parser import ParsedEmail, UnparseableEmail, parse_email, to_normalized

CORPUS = Path(__file__).resolve().parents[2] / "fixtures" / "mail"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
CEST = timezone(timedelta(hours=2))
MSK = timezone(timedelta(hours=3))
ANNA = {"from_name": "Anna Kowalska", "from_email": "anna@example.pl", "to": ["support@omni.example"],
        "message_id": "m1@example.pl", "date": datetime(2024, 9, 3, 14, 5, tzinfo=CEST)}
ORIGINAL_ID = "out-1042.abc@omni.example"

# Each mail's expected outcome. Plain keys are ParsedEmail fields compared exactly; "attachments"
# lists (filename, content_type); "data" maps a filename to the bytes it starts with; "html_has" and
# "problems_has" are substrings. Unlisted is_auto_reply and is_bounce must be False, unlisted inline {}.
EXPECTED: dict[str, dict] = {
    "01-plain-ascii.eml": {**ANNA, "subject": "Where is my order?", "text": "Hi,\nmy order 1042 has not arrived.\n\nAnna",
                           "html": "", "attachments": [], "problems": []},
    "02-alternative-utf8-qp.eml": {
        **ANNA, "subject": "Zamówienie nr 77",
        "text": "Dzień dobry, proszę o zwrot pieniędzy za zamówienie.\nŻółć gęślą jaźń.",
        "html": "<p>Dzień dobry, proszę o <b>zwrot</b> pieniędzy za zamówienie.</p>", "attachments": [],
    },
    "03-mixed-alt-related-nested.eml": {
        **ANNA, "text": "See the invoice attached.", "html_has": ['<img src="cid:logo@shop">'],
        "attachments": [("logo.png", "image/png"), ("invoice.pdf", "application/pdf")],
        "inline": {"logo@shop": "logo.png"}, "data": {"logo.png": PNG_MAGIC, "invoice.pdf": PDF},
    },
    "04-subject-utf8-b-russian.eml": {
        "subject": "Не работает доставка", "from_name": "Борис Иванов", "from_email": "boris@example.ru",
        "text": "Здравствуйте! Заказ не пришёл.", "date": datetime(2024, 9, 4, 9, 0, tzinfo=MSK), "problems": [],
    },
    "05-koi8r-q-subject-8bit-body.eml": {
        "subject": "Возврат товара", "from_name": "Ольга", "from_email": "olga@example.ru",
        "text": "Прошу вернуть деньги за товар.\nСпасибо, Ольга", "problems": [],
    },
    "06-cp1251-b-subject-base64-body.eml": {
        "subject": "Счёт на оплату №15", "from_name": "Сергей Петров", "from_email": "s.petrov@example.ru",
        "text": "Добрый день, пришлите счёт ещё раз.", "problems": [],
    },
    "07-polish-iso-8859-2-qp.eml": {
        "subject": "Reklamacja - uszkodzona przesyłka", "from_name": "Paweł Wiśniewski",
        "text": "Przesyłka dotarła uszkodzona. Proszę o wymianę.\nŁukasz źle zapakował ŻÓŁTĄ skrzynkę.", "problems": [],
    },
    # A character split across two encoded-words, whitespace between adjacent words dropped, mixed charsets.
    "08-adjacent-encoded-words.eml": {"subject": "Привет мир and caféёж", "from_name": "Jürgen Miłosz",
                                      "from_email": "j@example.de", "date": datetime(2024, 9, 6, 8, 0, tzinfo=UTC)},
    "09-broken-encoded-words.eml": {
        "subject": "Hello World tail =?utf-8?Q?unterminated word", "from_name": "Café Owner",
        "problems_has": ["broken encoded-word in subject", "undecodable charset x-unknown"],
    },
    "10-rfc2231-filenames.eml": {
        "text": "Two files.", "attachments": [("Счёт №15.pdf", "application/pdf"), ("Umowa z łódź.txt", "text/plain")],
        "data": {"Umowa z łódź.txt": b"umowa"},
    },
    "11-declared-ascii-8bit-utf8.eml": {"text": "Grüße aus München — Łódź", "problems_has": ["us-ascii"]},
    "12-declared-utf8-cp1251-bytes.eml": {"text": "Здравствуйте, у меня вопрос по заказу.",
                                          "problems_has": ["declared utf-8, read as cp1251"]},
    "13-unknown-charset-x-unknown.eml": {
        "text": "Viele Grüße, Jörg",
        "problems_has": ["undecodable charset x-unknown in text/plain, used windows-1252 with replacement"],
    },
    "14-raw-8bit-utf8-headers.eml": {"subject": "Zwrot — pilne: żółw", "from_name": "Łukasz Żółtowski",
                                     "from_email": "lukasz@example.pl", "text": "Treść"},
    "15-raw-8bit-koi8r-headers.eml": {"subject": "Проблема с оплатой", "from_name": "Дмитрий",
                                      "text": "Не проходит оплата картой.", "problems_has": ["raw 8-bit bytes in subject"]},
    "16-inline-images-cid.eml": {
        "text": "Look: and", "attachments": [("screenshot.png", "image/png"), ("attachment-2.png", "image/png")],
        "inline": {"part1.ABC@example.pl": "screenshot.png", "ii_lz2": "attachment-2.png"},
        "data": {"attachment-2.png": PNG_MAGIC},
    },
    "17-attachments-without-filenames.eml": {
        "text": "Files without names.",
        "attachments": [("attachment-1.pdf", "application/pdf"), ("attachment-2.bin", "application/octet-stream"),
                        ("attachment-3.ics", "text/calendar")],
        "data": {"attachment-1.pdf": PDF, "attachment-2.bin": b"\x00\x01\x02binary", "attachment-3.ics": b"BEGIN:VCALENDAR"},
    },
    # Kept whole as an .eml: the forwarded mail's own text and image do not leak into this message.
    "18-forwarded-rfc822.eml": {
        "text": "Forwarding the customer's mail.", "attachments": [("Broken kettle.eml", "message/rfc822")],
        "data": {"Broken kettle.eml": b"From: Customer <c@example.com>"},
    },
    "19-winmail-dat.eml": {
        "text": "Please find the attached document. Café “quotes”.", "attachments": [("winmail.dat", "application/ms-tnef")],
        "data": {"winmail.dat": b"\x78\x9f\x3e\x22\x01\x00tnef-data"},
    },
    "20-missing-date.eml": {"date": datetime(2024, 9, 9, 7, 15, tzinfo=UTC), "from_name": "",
                            "from_email": "anna@example.pl", "problems_has": ["missing Date, used the Received time"]},
    "21-missing-from.eml": {"from_email": "", "from_name": "", "subject": "Who am I", "text": "No From header.",
                            "problems_has": ["missing or unreadable From"]},
    "22-missing-message-id.eml": {"message_id": "", "from_email": "jan@example.pl", "text": "No Message-ID.",
                                  "problems_has": ["missing Message-ID"]},
    "23-missing-subject.eml": {"subject": "", "message_id": "nosubj@example.pl", "text": "Just a body."},
    "24-almost-no-headers.eml": {"subject": "", "message_id": "", "from_email": "", "date": None,
                                 "to": ["support@omni.example"], "text": "Only a recipient."},
    "25-base64-text-body.eml": {"text": "Zażółć gęślą jaźń — Съешь же ещё этих мягких французских булок.", "problems": []},
    "26-html-only.eml": {"text": "Hello there,\n\nOrder #7 & more\n\nBye\n\none\n\ntwo", "html_has": ["<script>alert(1)</script>"]},
    "27-auto-submitted.eml": {"is_auto_reply": True},
    "28-x-autoreply.eml": {"is_auto_reply": True},
    "29-precedence-bulk.eml": {"is_auto_reply": True},
    "30-out-of-office-subject.eml": {"is_auto_reply": True, "subject": "Out of Office: Re: [#1042] Order"},
    "31-automatic-reply-outlook.eml": {"is_auto_reply": True},
    "32-autoresponse-ru.eml": {"is_auto_reply": True, "subject": "Автоответ: Re: заказ", "text": "Меня нет на месте."},
    "33-autoresponse-pl.eml": {"is_auto_reply": True, "subject": "Odpowiedź automatyczna: zamówienie"},
    "34-nieobecnosc-iso-8859-2.eml": {"is_auto_reply": True, "subject": "Nieobecność w biurze", "text": "Wracam w poniedziałek."},
    "35-bounce-dsn-rfc822.eml": {
        "is_bounce": True, "is_auto_reply": True, "bounced_message_id": ORIGINAL_ID, "dsn_action": "failed",
        "bounce_reason": "550 5.1.1 <gone@example.net>: Recipient address rejected: User unknown",
        "from_email": "mailer-daemon@mx.example.net", "attachments": [("[#1042] Re: Order.eml", "message/rfc822")],
    },
    "36-bounce-postmaster-headers-only.eml": {
        "is_bounce": True, "is_auto_reply": True, "bounced_message_id": ORIGINAL_ID, "bounce_reason": "Status 5.2.2",
    },
    # A delay warning is not a failure: the original must not be marked failed for it.
    "37-dsn-delayed.eml": {"is_bounce": False, "is_auto_reply": True, "dsn_action": "delayed", "bounced_message_id": "",
                           "bounce_reason": ""},
    # Bounces that are plain text, not delivery-status reports (qmail, Exim): the same outcome.
    "60-bounce-qmail-plain.eml": {
        "is_bounce": True, "is_auto_reply": True, "bounced_message_id": ORIGINAL_ID, "dsn_action": "failed",
        "bounce_reason": "550 5.1.1 <gone@example.net>: Recipient address rejected: User unknown",
    },
    "61-bounce-exim-plain.eml": {
        "is_bounce": True, "is_auto_reply": True, "bounced_message_id": ORIGINAL_ID, "dsn_action": "failed",
        "bounce_reason": "550 5.1.1 No such user here", "from_email": "mailer-daemon@mx.example.org",
    },
    "62-bounce-exim-delay-plain.eml": {"is_bounce": False, "is_auto_reply": True, "dsn_action": "delayed",
                                       "bounced_message_id": "", "bounce_reason": ""},
    "38-huge-cc.eml": {"cc_count": 600, "text": "Hello all."},
    "39-ticket-token-reply.eml": {
        "ticket_token": "0123456789abcdef0123456789abcdef", "in_reply_to": [ORIGINAL_ID],
        "references": ["m1@example.pl", ORIGINAL_ID], "message_id": "reply2@example.pl",
        "to": ["support+t-0123456789abcdef0123456789abcdef@omni.example"], "text": "Thanks!\n\n> earlier text",
    },
    "40-template-syntax.eml": {
        "subject": "{{ settings.SECRET_KEY }} {% debug %}",
        "text": "{{ request.user.password }} {% load static %} ${7*7} <%= 1 %>",
    },
    "41-path-in-filenames.eml": {"attachments": [("scan.pdf", "application/pdf"), ("passwd", "text/plain")]},
    "42-declared-cp1251-actually-koi8r.eml": {"text": "Добрый вечер, посылка потерялась где-то в пути.",
                                              "problems_has": ["declared windows-1251 but is koi8_r"]},
    "43-deeply-nested.eml": {"text": "Deep inside.", "attachments": [("deep.zip", "application/zip")]},
    "44-utf8-8bit-polish.eml": {"subject": "Pytanie o gwarancję", "from_name": "Małgorzata Wójcik",
                                "text": "Czy gwarancja obejmuje wyświetlacz? Pozdrawiam, Małgorzata", "problems": []},
    "45-many-charsets.eml": {
        "text": "日本語のテキスト\n\n中文文本\n\n한국어\n\nΕλληνικά\n\nUTF-16 text\n\nTürkçe ğış\n\nŚwiętokrzyska\n\n繁體中文",
        "problems": [],
    },
    "46-garbage.eml": {"unparseable": True},
    "47-format-flowed.eml": {
        "text": "This is a long line that was wrapped by the mail client at seventy-two characters and continues here.\n"
                "> quoted line that goes on\n-- \nAnna",
    },
    "48-mdn-read-receipt.eml": {"is_auto_reply": True, "is_bounce": False},
    "49-unparseable-date.eml": {"date": None, "problems_has": ["invalid Date"]},
    "50-mbox-from-line.eml": {**ANNA, "subject": "Exported from mbox", "text": "Body after an mbox From_ line."},
    "51-duplicate-filenames.eml": {"attachments": [("image.png", "image/png"), ("image-2.png", "image/png")],
                                   "inline": {"a": "image.png", "b": "image-2.png"}, "text": ""},
    "52-date-with-comment-no-zone.eml": {"date": datetime(2024, 9, 3, 14, 5, tzinfo=UTC)},
    "53-cp1250-polish.eml": {"subject": "Faktura korygująca", "from_name": "Żaneta Łęcka",
                             "text": "Proszę o fakturę korygującą. Dziękuję, Żaneta", "problems": []},
    "54-apple-split-body.eml": {"text": "Before the photo.\n\nAfter the photo.", "attachments": [("IMG_0001.png", "image/png")]},
    "55-declared-utf8-iso-8859-2-bytes.eml": {"text": "Dzień dobry, proszę o szybką odpowiedź.",
                                              "problems_has": ["declared utf-8, read as iso8859_2"]},
    "56-rfc2047-filename.eml": {"attachments": [("Zamówienie 12.pdf", "application/pdf")]},
    "57-broken-multipart-no-end.eml": {"text": "The mail was cut off here.", "attachments": [("x.pdf", "application/pdf")],
                                       "problems_has": ["CloseBoundaryNotFoundDefect"]},
    "58-bad-base64-and-bad-content-type.eml": {"text": "Hello world\n\nplain fallback",
                                               "problems_has": ["InvalidBase64CharactersDefect"]},
    "59-header-that-trips-the-modern-policy.eml": {
        **ANNA, "text": "The modern policy raises IndexError on this Content-Type.", "problems_has": ["compat32 fallback"],
    },
}

SPECIAL = {"attachments", "data", "html_has", "problems_has", "cc_count", "unparseable"}


def _parse(name: str) -> ParsedEmail:
    return parse_email((CORPUS / name).read_bytes())


def test_every_mail_in_the_corpus_has_an_expected_outcome():
    on_disk = sorted(p.name for p in CORPUS.glob("*.eml"))
    assert len(on_disk) >= 40
    assert on_disk == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_given_a_corpus_mail_when_parsed_then_it_reads_as_expected(name):
    expected = EXPECTED[name]
    if expected.get("unparseable"):
        with pytest.raises(UnparseableEmail):
            _parse(name)
        return
    parsed = _parse(name)
    for key, value in expected.items():
        if key not in SPECIAL:
            assert getattr(parsed, key) == value, key
    if "attachments" in expected:
        assert [(a.filename, a.content_type) for a in parsed.attachments] == expected["attachments"]
    by_name = {a.filename: a.data for a in parsed.attachments}
    for filename, prefix in expected.get("data", {}).items():
        assert by_name[filename].startswith(prefix), filename
    for fragment in expected.get("html_has", []):
        assert fragment in parsed.html
    for fragment in expected.get("problems_has", []):
        assert any(fragment in problem for problem in parsed.problems), (fragment, parsed.problems)
    if "cc_count" in expected:
        assert len(parsed.cc) == expected["cc_count"]
    assert parsed.is_auto_reply is expected.get("is_auto_reply", False)
    assert parsed.is_bounce is expected.get("is_bounce", False)
    assert parsed.inline == expected.get("inline", {})
    assert parsed.date is None or parsed.date.tzinfo is not None
    assert "\x00" not in parsed.text + parsed.html + parsed.subject + parsed.from_name


def test_given_a_huge_cc_list_then_every_address_is_kept_lowercased_and_in_order():
    parsed = _parse("38-huge-cc.eml")
    assert parsed.cc == [f"person{i}@example.com" for i in range(600)]


def test_given_a_forwarded_mail_then_the_attachment_is_the_whole_original_message():
    attachment = _parse("18-forwarded-rfc822.eml").attachments[0]
    inner = parse_email(attachment.data)
    assert inner.message_id == "inner@example.com"
    assert inner.text == "The kettle leaks."
    assert [a.filename for a in inner.attachments] == ["kettle.png"]


def test_given_a_mail_with_attachments_then_their_bytes_are_decoded_exactly():
    parsed = _parse("03-mixed-alt-related-nested.eml")
    assert {a.filename: a.data for a in parsed.attachments}["invoice.pdf"] == PDF


@pytest.mark.parametrize("raw", [b"", b"   \r\n", b"\x00\x01\x02\x03", b"hello world, this is no mail\nat all",
                                 bytes(range(256)), b"<html><body>hi</body></html>", b"%PDF-1.4 binary"])
def test_given_bytes_that_are_not_a_mail_then_unparseable_email_is_raised(raw):
    with pytest.raises(UnparseableEmail):
        parse_email(raw)


def test_given_something_that_is_not_bytes_then_unparseable_email_is_raised():
    with pytest.raises(UnparseableEmail):
        parse_email("From: a@b.c\n\nstr, not bytes")  # type: ignore[arg-type]


def test_given_truncated_or_corrupted_corpus_mails_then_only_unparseable_email_ever_escapes():
    rng = random.Random(20240903)
    outcomes = {"parsed": 0, "unparseable": 0}
    for path in sorted(CORPUS.glob("*.eml")):
        data = path.read_bytes()
        variants = [data[:cut] for cut in range(0, len(data), max(1, len(data) // 8))]
        for _ in range(12):
            mutated = bytearray(data)
            for _ in range(rng.randint(1, 16)):
                mutated[rng.randrange(len(mutated))] = rng.choice(
                    [0, 10, 13, 0x22, 0x25, 0x27, 0x2a, 0x2d, 0x3b, 0x3d, 0x3f, 0x80, 0xFF, rng.randrange(256)]
                )
            variants.append(bytes(mutated))
        for variant in variants:
            try:
                parsed = parse_email(variant)
            except UnparseableEmail:
                outcomes["unparseable"] += 1
            else:
                assert isinstance(parsed, ParsedEmail)
                outcomes["parsed"] += 1
    assert outcomes["parsed"] > outcomes["unparseable"] > 0


# ------------------------------------------------------------------------------------------------
# to_normalized


def test_normalized_message_carries_a_normalized_email_claim_and_the_mail_content():
    raw = (CORPUS / "03-mixed-alt-related-nested.eml").read_bytes()
    parsed = parse_email(raw)
    message = to_normalized(parsed, raw_sha256=hashlib.sha256(raw).hexdigest())
    assert message.provider_message_id == "m1@example.pl"
    [claim] = message.sender
    assert (claim.kind, claim.value, claim.display_name, claim.verified) == ("email", "anna@example.pl", "Anna Kowalska", True)
    assert message.display_name == "Anna Kowalska"
    assert message.subject == "Invoice and logo"
    assert message.text == "See the invoice attached."
    assert 'src="cid:logo@shop"' in message.html
    assert [a.filename for a in message.attachments] == ["logo.png", "invoice.pdf"]
    assert message.timestamp == datetime(2024, 9, 3, 12, 5, tzinfo=UTC)
    assert message.is_auto_reply is False
    assert message.thread_keys == []


def test_thread_keys_are_in_reply_to_then_references_without_duplicates_then_the_token():
    message = to_normalized(_parse("39-ticket-token-reply.eml"), raw_sha256="0" * 64)
    assert message.thread_keys == [
        f"msgid:{ORIGINAL_ID}", "msgid:m1@example.pl", "token:0123456789abcdef0123456789abcdef",
    ]


def test_without_a_message_id_the_provider_id_falls_back_to_the_raw_bytes_hash():
    raw = (CORPUS / "22-missing-message-id.eml").read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    message = to_normalized(parse_email(raw), raw_sha256=digest)
    assert message.provider_message_id == f"sha256:{digest}"


def test_auto_reply_flag_reaches_the_normalized_message():
    assert to_normalized(_parse("30-out-of-office-subject.eml"), raw_sha256="0" * 64).is_auto_reply is True


def test_mixed_case_sender_becomes_one_lowercase_identity():
    parsed = _parse("01-plain-ascii.eml")
    parsed.from_email = "Anna@Example.PL"
    assert to_normalized(parsed, raw_sha256="0" * 64).sender[0].value == "anna@example.pl"


def test_without_a_sender_to_normalized_raises_unparseable_email():
    with pytest.raises(UnparseableEmail):
        to_normalized(_parse("21-missing-from.eml"), raw_sha256="0" * 64)


def test_with_an_invalid_sender_address_to_normalized_raises_unparseable_email():
    parsed = _parse("01-plain-ascii.eml")
    parsed.from_email = "not an address@@example..com"
    with pytest.raises(UnparseableEmail):
        to_normalized(parsed, raw_sha256="0" * 64)
