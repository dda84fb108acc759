"""The webhook contract with receivers: headers, the signature and the subscriber secret (pure).

Every delivery is an HTTP ``POST`` of one JSON document (UTF-8) with these headers:

- ``X-Hanoi-Delivery``: the delivery id (a UUID), the same on every attempt and every
  redelivery of that delivery; receivers deduplicate on it;
- ``X-Hanoi-Timestamp``: when this attempt was signed, in Unix seconds;
- ``X-Hanoi-Signature``: ``sha256=`` and the lowercase hex of
  ``HMAC-SHA256(secret, timestamp + "." + body)``, the secret being the subscriber's
  ``whsec_…`` string as shown to the admin (its UTF-8 bytes), the body the exact bytes sent;
- ``X-Hanoi-Event``: ``alert.<action>`` (``alert.raised``, ``alert.updated``, …).

A receiver recomputes the signature over the bytes it received, compares it in constant time
and refuses a timestamp too far from its own clock (a replayed old request): see
:func:`verify` and docs/webhooks.md.

A subscriber's secret is never stored: it is ``whsec_`` and the URL-safe base64 of
``HMAC-SHA256(API_SECRET_KEY, "hanoi-ioc/subscriber/" + secret_salt)``, the random salt
being kept in the subscriber's row. The ops API shows it once; the dispatcher derives it
again for every signature.

>>> secret = subscriber_secret(b"k" * 32, bytes(16))
>>> header = sign(secret, 1_700_000_000, b'{"a":1}')
>>> header.startswith("sha256=")
True
>>> verify(secret, "1700000000", b'{"a":1}', header, now_s=1_700_000_100)
True
>>> verify(secret, "1700000000", b'{"a":2}', header, now_s=1_700_000_100)
False
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Final

__all__ = [
    "DELIVERY_HEADER",
    "DEV_SECRET_KEY",
    "EVENT_HEADER",
    "SIGNATURE_HEADER",
    "SIGNATURE_PREFIX",
    "TIMESTAMP_HEADER",
    "TOLERANCE_S",
    "secret_digest",
    "secret_matches",
    "sign",
    "subscriber_secret",
    "verify",
]

DELIVERY_HEADER: Final = "X-Hanoi-Delivery"
TIMESTAMP_HEADER: Final = "X-Hanoi-Timestamp"
SIGNATURE_HEADER: Final = "X-Hanoi-Signature"
EVENT_HEADER: Final = "X-Hanoi-Event"
SIGNATURE_PREFIX: Final = "sha256="
TOLERANCE_S: Final = 300
"""How far a receiver should accept a timestamp from its own clock (five minutes)."""

DEV_SECRET_KEY: Final = b"hanoi-ioc-development-secret-key-not-for-production"
"""The server key of the development environment (``ENV=dev`` without ``API_SECRET_KEY``)."""

_CONTEXT: Final = b"hanoi-ioc/subscriber/"


def subscriber_secret(key: bytes, salt: bytes) -> str:
    """The signing secret of the subscriber whose row holds ``salt``."""
    mac = hmac.new(key, _CONTEXT + salt, hashlib.sha256).digest()
    return "whsec_" + base64.urlsafe_b64encode(mac).decode().rstrip("=")


def secret_digest(secret: str) -> bytes:
    """What the database stores of a secret (``alert_subscribers.secret_hash``)."""
    return hashlib.sha256(secret.encode()).digest()


def secret_matches(secret: str, digest: bytes) -> bool:
    """Whether ``secret`` is the one recorded (constant time)."""
    return hmac.compare_digest(secret_digest(secret), digest)


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Hanoi-Signature`` value of ``body`` sent at ``timestamp`` (Unix seconds)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return SIGNATURE_PREFIX + mac.hexdigest()


def verify(
    secret: str,
    timestamp: str,
    body: bytes,
    signature: str,
    *,
    now_s: float,
    tolerance_s: float = TOLERANCE_S,
) -> bool:
    """Whether a received delivery is authentic and fresh (what a receiver checks).

    Args:
        secret: the subscriber's ``whsec_…`` secret.
        timestamp: the ``X-Hanoi-Timestamp`` header as received.
        body: the request body, byte for byte.
        signature: the ``X-Hanoi-Signature`` header as received.
        now_s: the receiver's clock (Unix seconds).
        tolerance_s: the largest accepted distance between the two clocks.
    """
    if not timestamp.isdigit() or abs(now_s - int(timestamp)) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, int(timestamp), body), signature)
