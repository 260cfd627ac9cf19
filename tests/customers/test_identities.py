"""Normalizing identity values: one spelling per address, so that lookups are exact."""

from __future__ import annotations

import pytest

from customers.identities import InvalidIdentity, claim, normalize, normalize_email, normalize_phone


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Anna@Example.PL", "anna@example.pl"),
        ("  <New.Person@Example.COM>  ", "new.person@example.com"),
        ("Jan@Bücher.example", "jan@xn--bcher-kva.example"),
        ("jan@BÜCHER.example.", "jan@xn--bcher-kva.example"),
        ("ANNA@münchen.DE", "anna@xn--mnchen-3ya.de"),
    ],
)
def test_given_an_email_when_normalized_then_it_is_lowercased_and_idna_safe(raw, expected):
    assert normalize_email(raw) == expected


def test_given_two_spellings_of_one_unicode_domain_when_normalized_then_they_are_equal():
    assert normalize_email("jan@bücher.example") == normalize_email("JAN@xn--bcher-kva.EXAMPLE")


@pytest.mark.parametrize("raw", ["", "not-an-email", "anna@", "@example.com", "an na@example.com", "anna@exa mple.com",
                                 "anna@" + "x" * 64 + ".com"])
def test_given_a_bad_email_when_normalized_then_invalid_identity_says_what_is_wrong(raw):
    with pytest.raises(InvalidIdentity) as excinfo:
        normalize_email(raw)
    message = str(excinfo.value)
    assert message == excinfo.value.message
    assert "email address" in message or "invalid domain" in message
    assert raw.strip() in message


@pytest.mark.parametrize(
    "raw",
    ["+48 601 234 567", "+48601234567", "whatsapp:+48601234567", "WhatsApp:+48 601-234-567", "tel:+48-601-234-567",
     "sms:+48601234567", " +48 (601) 234 567 "],
)
def test_given_a_phone_in_any_channel_spelling_when_normalized_then_it_is_e164(raw):
    assert normalize_phone(raw) == "+48601234567"


@pytest.mark.parametrize("raw", ["", "hello", "+48 12", "+999 601 234 567", "whatsapp:", "+48 601 234 567 890 123 456"])
def test_given_an_impossible_phone_when_normalized_then_invalid_identity_is_raised(raw):
    with pytest.raises(InvalidIdentity) as excinfo:
        normalize_phone(raw)
    assert "is not a phone number" in str(excinfo.value)


def test_given_a_national_number_when_a_region_is_given_then_it_becomes_e164():
    assert normalize_phone("601 234 567", region="PL") == "+48601234567"


def test_given_other_kinds_when_normalized_then_values_are_trimmed_and_checked():
    assert normalize("external", "  crm-77 ") == "crm-77"
    with pytest.raises(InvalidIdentity):
        normalize("external", "   ")
    with pytest.raises(InvalidIdentity):
        normalize("external", "x" * 321)
    with pytest.raises(InvalidIdentity) as excinfo:
        normalize("fax", "123")
    assert "fax" in str(excinfo.value)


def test_given_a_claim_when_built_then_value_is_normalized_and_key_includes_the_namespace():
    built = claim("email", "Jan@Bücher.example", display_name="  Jan  ")
    assert built.value == "jan@xn--bcher-kva.example"
    assert built.display_name == "Jan"
    assert built.verified is True
    assert claim("external", "42", namespace="shop-a").key == ("external", "shop-a", "42")
    assert claim("external", "42", namespace="shop-a") != claim("external", "42", namespace="shop-b")
