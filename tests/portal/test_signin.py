"""Sign-in to /portal/: magic links by email, one-time codes by SMS, and the rules around them."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.conf import settings
from django.core import mail
from django.utils import timezone

from omnicenter import crypto
from tests.factories import IdentityFactory
from tests.portal.conftest import link_from
from tickets.models import PortalLoginToken
from tickets.portal import services
from tickets.portal.views import PORTAL_CUSTOMER_KEY

pytestmark = pytest.mark.django_db


def request_link(client, capture, address: str):
    with capture(execute=True):
        return client.post("/portal/sign-in/", {"address": address})


def page(response, address: str) -> str:
    """The page without what differs by design: the address typed and the per-response CSRF mask."""
    text = response.content.decode().replace(address, "X")
    return re.sub(r'(csrfmiddlewaretoken" value="|X-CSRFToken": ")[^"]+', r"\1", text)


def path_of(url: str) -> str:
    return "/" + url.split("://", 1)[1].split("/", 1)[1]


def test_a_known_email_gets_a_link_through_its_channel_and_the_answer_is_the_same_as_for_an_unknown_one(
    client, people, email_channel, smtp_server, django_capture_on_commit_callbacks,
):
    known = request_link(client, django_capture_on_commit_callbacks, "Anna@Example.PL ")
    unknown = request_link(client, django_capture_on_commit_callbacks, "nobody@example.pl")

    assert known.status_code == unknown.status_code == 200
    assert page(known, "anna@example.pl") == page(unknown, "nobody@example.pl")
    [sent] = smtp_server.messages
    assert sent.rcpt_tos == ["anna@example.pl"]
    message = sent.message()
    assert message["From"].addresses[0].addr_spec == "support@example.test"
    assert message["Auto-Submitted"] == "auto-generated"
    assert "/portal/sign-in/link/" in message.get_body(("plain",)).get_content()


def test_the_token_is_stored_hashed_and_the_secret_leaves_the_database_once_sent(
    client, people, email_channel, smtp_server, django_capture_on_commit_callbacks,
):
    request_link(client, django_capture_on_commit_callbacks, "anna@example.pl")
    secret = link_from(smtp_server.messages[0].message().get_body(("plain",)).get_content()).rstrip("/").rsplit("/", 1)[1]

    token = PortalLoginToken.objects.get()
    assert secret not in token.token_hash
    assert (token.outbox, token.sent_at is not None) == ("", True)
    assert abs(token.expires_at - token.created_at - timedelta(minutes=settings.PORTAL_LINK_MINUTES)) < timedelta(seconds=5)


def test_without_an_email_channel_the_link_goes_through_djangos_default_mailer(client, people, django_capture_on_commit_callbacks):
    request_link(client, django_capture_on_commit_callbacks, "anna@example.pl")

    [sent] = mail.outbox
    assert sent.to == ["anna@example.pl"]
    assert "/portal/sign-in/link/" in sent.body


def test_an_email_channel_that_only_receives_leaves_the_link_to_the_default_mailer(
    client, people, django_capture_on_commit_callbacks,
):
    """As in the demo: a mailbox polled over IMAP, with no SMTP server and no ESP to send through."""
    from tests.factories import make_channel

    make_channel(kind="email", name="Inbox only", settings_data={"address": "support@help.example"})
    request_link(client, django_capture_on_commit_callbacks, "anna@example.pl")

    [sent] = mail.outbox
    assert sent.to == ["anna@example.pl"] and "/portal/sign-in/link/" in sent.body
    assert PortalLoginToken.objects.get().send_error == ""


def test_get_on_the_link_only_shows_a_button_and_post_signs_in_with_a_new_session_key(
    client, people, anna, smtp_server, django_capture_on_commit_callbacks,
):
    client.get("/portal/sign-in/")  # a session exists before signing in
    request_link(client, django_capture_on_commit_callbacks, "anna@example.pl")
    key_before = client.session.session_key
    link = path_of(link_from(smtp_server.messages[0].message().get_body(("plain",)).get_content()))

    shown = client.get(link)
    assert shown.status_code == 200 and b"<form method=\"post\"" in shown.content
    assert PORTAL_CUSTOMER_KEY not in client.session
    assert client.get("/portal/").status_code == 302  # a mail scanner's GET signed nobody in

    response = client.post(link)

    assert response.status_code == 302 and response["Location"] == "/portal/"
    assert client.session[PORTAL_CUSTOMER_KEY] == people.customer.pk
    assert client.session.session_key != key_before
    assert "Anna&#x27;s parcel" in client.get("/portal/").content.decode()


def test_a_link_works_once(client, people, anna, smtp_server, django_capture_on_commit_callbacks):
    from django.test import Client

    request_link(client, django_capture_on_commit_callbacks, "anna@example.pl")
    link = path_of(link_from(smtp_server.messages[0].message().get_body(("plain",)).get_content()))
    assert client.post(link).status_code == 302

    thief = Client()
    assert thief.post(link).status_code == 400
    assert b"no longer works" in thief.get(link).content
    assert thief.get("/portal/").status_code == 302


def test_an_expired_or_tampered_link_does_not_sign_in(client, people, smtp_server, email_channel, django_capture_on_commit_callbacks):
    request_link(client, django_capture_on_commit_callbacks, "anna@example.pl")
    link = path_of(link_from(smtp_server.messages[0].message().get_body(("plain",)).get_content()))
    tampered = link[:-3] + ("A" if link[-3] != "A" else "B") + link[-2:]

    assert client.post(tampered).status_code == 400
    PortalLoginToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert client.post(link).status_code == 400
    assert PORTAL_CUSTOMER_KEY not in client.session


def test_requests_are_limited_per_address_whether_or_not_it_is_known(client, people, email_channel, settings, django_capture_on_commit_callbacks):
    settings.PORTAL_SIGNIN_PER_ADDRESS = 3
    for address in ("anna@example.pl", "nobody@example.pl"):
        answers = [request_link(client, django_capture_on_commit_callbacks, address).status_code for _ in range(4)]
        assert answers == [200, 200, 200, 429]
    assert PortalLoginToken.objects.count() == 3


def test_requests_are_limited_per_ip(client, people, email_channel, settings, django_capture_on_commit_callbacks):
    settings.PORTAL_SIGNIN_PER_IP = 4
    answers = [request_link(client, django_capture_on_commit_callbacks, f"n{i}@example.pl").status_code for i in range(5)]
    assert answers == [200, 200, 200, 200, 429]
    other_ip = client.post("/portal/sign-in/", {"address": "n9@example.pl"}, REMOTE_ADDR="10.0.0.9")
    assert other_ip.status_code == 200


def test_an_invalid_address_gets_a_clear_error_and_nothing_is_issued(client, people):
    response = client.post("/portal/sign-in/", {"address": "not an address"})
    assert response.status_code == 200
    assert "is not a phone number" in response.content.decode()
    assert not PortalLoginToken.objects.exists()


# --- SMS codes --------------------------------------------------------------------------------------
# Most tests read the code from the token's encrypted outbox before the send task runs; the first
# one below sends it through a Twilio sms channel to a local stand-in for Twilio's API.


@pytest.fixture
def phone(people):
    return IdentityFactory(customer=people.customer, kind="phone", value="+48601234567")


def issued_code(client, address: str, capture) -> str:
    with capture(execute=False):
        response = client.post("/portal/sign-in/", {"address": address})
    assert response.status_code == 302 and response["Location"] == "/portal/sign-in/code/"
    token = PortalLoginToken.objects.order_by("-pk").first()
    return crypto.decrypt_json(token.outbox)["secret"]


def test_the_code_goes_out_by_sms_through_twilio_and_signs_in(client, people, phone, http_stub, settings,
                                                              django_capture_on_commit_callbacks):
    from urllib.parse import parse_qs

    from tests.channels_inbound.twilio.conftest import ACCOUNT_SID, AUTH_TOKEN, fixture
    from tests.factories import make_channel

    settings.TWILIO_API_BASE_URL = http_stub.base_url
    make_channel(kind="sms", name="SMS", default_team=people.team_a,
                 settings_data={"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, "phone_number": "+48221234567"})
    http_stub.respond(status=201, json=fixture("message_create_response"))

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/portal/sign-in/", {"address": "+48 601 234 567"})

    assert response.status_code == 302 and response["Location"] == "/portal/sign-in/code/"
    [sent] = http_stub.requests
    assert sent.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    form = {key: values[0] for key, values in parse_qs(sent.body.decode()).items()}
    assert form["To"] == "+48601234567" and form["From"] == "+48221234567"
    code = re.search(r"\b(\d{6})\b", form["Body"]).group(1)
    token = PortalLoginToken.objects.get()
    assert token.sent_at is not None and token.outbox == ""  # the raw code is gone once sent
    assert client.post("/portal/sign-in/code/", {"code": code}).status_code == 302
    assert client.session[PORTAL_CUSTOMER_KEY] == people.customer.pk


def test_a_phone_gets_a_code_and_the_right_code_signs_in_once(client, people, phone, anna, django_capture_on_commit_callbacks):
    code = issued_code(client, "+48 601 234 567", django_capture_on_commit_callbacks)
    assert len(code) == 6 and PortalLoginToken.objects.get().token_hash != code

    assert client.post("/portal/sign-in/code/", {"code": code}).status_code == 302
    assert client.session[PORTAL_CUSTOMER_KEY] == people.customer.pk

    client.post("/portal/sign-out/")
    client.post("/portal/sign-in/", {"address": "+48601234567"})  # a new request, then the old code again
    response = client.post("/portal/sign-in/code/", {"code": code})
    assert response.status_code == 200 and PORTAL_CUSTOMER_KEY not in client.session


def test_an_unknown_phone_gets_the_same_answer_and_no_code(client, people, phone):
    response = client.post("/portal/sign-in/", {"address": "+48 609 999 999"})
    assert response.status_code == 302 and response["Location"] == "/portal/sign-in/code/"
    assert not PortalLoginToken.objects.exists()
    assert client.post("/portal/sign-in/code/", {"code": "123456"}).status_code == 200


def test_a_code_dies_after_too_many_wrong_guesses(client, people, phone, settings, django_capture_on_commit_callbacks):
    code = issued_code(client, "+48601234567", django_capture_on_commit_callbacks)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for _ in range(settings.PORTAL_CODE_ATTEMPTS):
        client.post("/portal/sign-in/code/", {"code": wrong})

    client.post("/portal/sign-in/code/", {"code": code})

    assert PORTAL_CUSTOMER_KEY not in client.session


def test_only_the_newest_code_works(client, people, phone, django_capture_on_commit_callbacks):
    first = issued_code(client, "+48601234567", django_capture_on_commit_callbacks)
    second = issued_code(client, "+48601234567", django_capture_on_commit_callbacks)
    if first != second:
        client.post("/portal/sign-in/code/", {"code": first})
        assert PORTAL_CUSTOMER_KEY not in client.session
    client.post("/portal/sign-in/code/", {"code": second})
    assert client.session[PORTAL_CUSTOMER_KEY] == people.customer.pk


def test_an_expired_code_does_not_sign_in(client, people, phone, django_capture_on_commit_callbacks):
    code = issued_code(client, "+48601234567", django_capture_on_commit_callbacks)
    PortalLoginToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    client.post("/portal/sign-in/code/", {"code": code})
    assert PORTAL_CUSTOMER_KEY not in client.session


def test_without_an_sms_channel_the_code_cannot_be_sent_and_says_why(client, people, phone, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/portal/sign-in/", {"address": "+48601234567"})
    token = PortalLoginToken.objects.get()
    assert token.outbox == "" and token.sent_at is None
    assert "no active channel" in token.send_error


def test_code_guesses_are_limited_per_ip(client, people, phone, settings, django_capture_on_commit_callbacks):
    settings.PORTAL_SIGNIN_PER_IP = 3
    issued_code(client, "+48601234567", django_capture_on_commit_callbacks)  # one request counted
    answers = [client.post("/portal/sign-in/code/", {"code": "000000"}).status_code for _ in range(3)]
    assert answers == [200, 200, 429]


# --- separate from staff authentication ---------------------------------------------------------


def test_a_portal_session_is_not_a_staff_session_and_the_other_way_round(client, people, anna, sign_in):
    sign_in(client, "anna@example.pl")
    assert client.get("/app/").status_code == 302
    assert client.get(f"/app/tickets/{anna.ticket.pk}/").status_code == 302
    assert client.get("/api/v1/tickets/").status_code in (401, 403)

    from django.test import Client

    staff = Client()
    staff.force_login(people.supervisor)
    response = staff.get("/portal/")
    assert response.status_code == 302 and response["Location"].startswith("/portal/sign-in/")


def test_signing_out_ends_portal_access(client, people, anna, sign_in):
    sign_in(client, "anna@example.pl")
    client.post("/portal/sign-out/")
    assert client.get(f"/portal/tickets/{anna.ticket.number}/").status_code == 302


def test_an_erased_customer_cannot_sign_in_nor_stay_signed_in(client, people, anna, sign_in, django_capture_on_commit_callbacks):
    from customers.services import customer_erase

    sign_in(client, "anna@example.pl")
    with django_capture_on_commit_callbacks(execute=True):
        customer_erase(customer=people.customer, by=None)
    assert client.get("/portal/").status_code == 302
    assert services.signin_address("anna@example.pl").value == "anna@example.pl"
    assert services.portal_signin_request(address=services.signin_address("anna@example.pl")) is None
