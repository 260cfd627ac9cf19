"""Twilio channels in tests: requests signed exactly as Twilio signs them (the SDK's
RequestValidator.compute_signature over PUBLIC_BASE_URL + path + query and the POST parameters),
and the SDK's REST calls and media downloads sent to a local http_stub."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlencode

import pytest
from django.conf import settings
from twilio.request_validator import RequestValidator

from tests.factories import make_channel

FIXTURES = Path(__file__).resolve().parents[3] / "channels_inbound" / "twilio" / "fixtures"
ACCOUNT_SID = "AC" + "a" * 32
AUTH_TOKEN = "twilio-auth-token-0123456789abcdef"
NUMBER = "+48221234567"
CUSTOMER_PHONE = "+48601234567"


def fixture(name: str, **changes) -> dict:
    return {**json.loads((FIXTURES / f"{name}.json").read_text()), **changes}


def signature(path: str, params, token: str = AUTH_TOKEN) -> str:
    return RequestValidator(token).compute_signature(settings.PUBLIC_BASE_URL + path, params)


@pytest.fixture
def twilio_post(client):
    """POST form parameters as Twilio does, signed (or with the signature given)."""

    def post(path: str, params: dict, *, sign: str | None = None, token: str = AUTH_TOKEN, **extra):
        headers = {} if sign == "" else {"HTTP_X_TWILIO_SIGNATURE": sign or signature(path, params, token)}
        return client.post(path, data=urlencode(params), content_type="application/x-www-form-urlencoded",
                           **headers, **extra)

    return post


def _channel(kind: str, people, **extra):
    settings_data = {"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, "phone_number": NUMBER, **extra}
    channel, _generated = make_channel(kind=kind, name=f"Twilio {kind}", settings_data=settings_data,
                                       default_team=people.team_a)
    return channel


@pytest.fixture
def sms_channel(people):
    return _channel("sms", people)


@pytest.fixture
def whatsapp_channel(people):
    return _channel("whatsapp", people, phone_number="+14155238886")


@pytest.fixture
def voice_channel(people):
    return _channel(
        "voice", people, api_key_sid="SK" + "b" * 32, api_key_secret="api-key-secret-0123456789abcdefghijklmnop",
        twiml_app_sid="AP" + "c" * 32, default_language="en", greeting={"en": "Welcome to Omnicenter."},
        transcribe=True, voicemail_max_length=120, ring_timeout=20, queue_max_wait=180,
    )


@pytest.fixture
def twilio_api(http_stub, settings):
    """The SDK and media downloads talk to the local stub instead of api.twilio.com."""
    settings.TWILIO_API_BASE_URL = http_stub.base_url
    settings.TWILIO_MEDIA_ALLOW_PRIVATE = True
    settings.TWILIO_MEDIA_HOSTS = ["127.0.0.1"]
    return http_stub
