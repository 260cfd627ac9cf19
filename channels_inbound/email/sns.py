"""Amazon SNS message signatures, checked before anymail's Amazon SES views see a request.

Amazon SES reaches us through SNS. anymail checks the shared basic-auth secret and that the SNS
headers match the body, but not SNS's own signature; without it, anyone who learns the basic-auth
secret could post mail as any sender. This module verifies it as AWS documents
(https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html):

- the signing certificate's URL must be HTTPS on an SNS host (`sns.<region>.amazonaws.com`, or
  `.amazonaws.com.cn`), so nobody can point us at a certificate of their own;
- the certificate is fetched once and cached, and must be within its validity period;
- the signature (RSA PKCS#1 v1.5, SHA1 for SignatureVersion 1, SHA256 for 2) is over the
  canonical "Key\\nValue\\n" string of the fields AWS lists for the message type;
- optionally, the topic must be one of `AMAZON_SNS_TOPIC_ARNS`.

`sns_verified(view)` wraps anymail's views: a request without credentials goes straight to anymail
(which answers 401, the challenge SNS needs before it sends its credentials); any other request
must carry a valid signature, else it gets 400 and nothing is stored.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
from datetime import UTC, datetime
from functools import wraps

import requests
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from django.conf import settings
from django.core.cache import cache
from django.http import HttpResponseBadRequest

logger = logging.getLogger(__name__)

NOTIFICATION_FIELDS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
SUBSCRIPTION_FIELDS = ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type")
HASHES = {"1": hashes.SHA1, "2": hashes.SHA256}
CERT_CACHE_SECONDS = 24 * 3600
MAX_CERT_BYTES = 64 * 1024


class SnsVerificationError(Exception):
    pass


def string_to_sign(message: dict) -> str:
    kind = message.get("Type")
    if kind == "Notification":
        fields = NOTIFICATION_FIELDS
    elif kind in ("SubscriptionConfirmation", "UnsubscribeConfirmation"):
        fields = SUBSCRIPTION_FIELDS
    else:
        raise SnsVerificationError(f"unknown SNS message type {kind!r}")
    parts = []
    for name in fields:
        if name in message and message[name] is not None:
            parts.append(f"{name}\n{message[name]}\n")
        elif name != "Subject":  # the only optional field
            raise SnsVerificationError(f"SNS message without {name}")
    return "".join(parts)


def _certificate(url: str) -> x509.Certificate:
    if not re.fullmatch(settings.AMAZON_SNS_CERT_URL_RE, url or ""):
        raise SnsVerificationError("the signing certificate is not on an Amazon SNS host")
    key = "sns-cert:" + hashlib.sha256(url.encode()).hexdigest()
    pem = cache.get(key)
    if pem is None:
        try:
            response = requests.get(url, timeout=(3, 5), stream=True)
            response.raise_for_status()
            pem = response.raw.read(MAX_CERT_BYTES + 1, decode_content=True)
        except requests.RequestException as exc:
            raise SnsVerificationError(f"could not fetch the signing certificate: {exc.__class__.__name__}") from exc
        if len(pem) > MAX_CERT_BYTES:
            raise SnsVerificationError("the signing certificate is too large")
        cache.set(key, pem, CERT_CACHE_SECONDS)
    try:
        certificate = x509.load_pem_x509_certificate(pem)
    except ValueError as exc:
        raise SnsVerificationError("the signing certificate is not a PEM certificate") from exc
    now = datetime.now(UTC)
    if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
        raise SnsVerificationError("the signing certificate is expired or not yet valid")
    return certificate


def verify_sns_message(message: dict) -> None:
    """Raise SnsVerificationError unless `message` (a parsed SNS body) is signed by SNS."""
    algorithm = HASHES.get(str(message.get("SignatureVersion")))
    if algorithm is None:
        raise SnsVerificationError("unsupported SNS SignatureVersion")
    allowed_topics = settings.AMAZON_SNS_TOPIC_ARNS
    if allowed_topics and message.get("TopicArn") not in allowed_topics:
        raise SnsVerificationError("SNS topic not in AMAZON_SNS_TOPIC_ARNS")
    try:
        signature = base64.b64decode(message.get("Signature") or "", validate=True)
    except ValueError as exc:
        raise SnsVerificationError("the SNS signature is not base64") from exc
    public_key = _certificate(message.get("SigningCertURL", "")).public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise SnsVerificationError("the signing certificate has no RSA key")
    try:
        public_key.verify(signature, string_to_sign(message).encode(), padding.PKCS1v15(), algorithm())
    except InvalidSignature as exc:
        raise SnsVerificationError("the SNS signature does not match") from exc


def sns_verified(view):
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if "HTTP_AUTHORIZATION" in request.META:
            try:
                message = json.loads(request.body)
                if not isinstance(message, dict):
                    raise SnsVerificationError("the SNS body is not a JSON object")
                verify_sns_message(message)
            except (ValueError, UnicodeDecodeError, SnsVerificationError) as exc:
                logger.warning("rejected Amazon SNS post to %s: %s", request.path, exc)
                return HttpResponseBadRequest("Invalid Amazon SNS signature", content_type="text/plain")
        return view(request, *args, **kwargs)

    return wrapper
