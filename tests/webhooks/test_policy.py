"""The pure parts of webhooks: the signature, the body, the retry schedule, dead letters."""

from __future__ import annotations

import json
import random
import uuid

import pytest

from contract.webhook import TOLERANCE_S, sign, subscriber_secret, verify
from webhooks.payload import render
from webhooks.policy import Attempt, RetryPolicy
from webhooks.settings import WebhookSettings

POLICY = RetryPolicy(retry_initial_s=2.0, retry_max_s=600.0, max_age_s=86400.0, max_attempts=100)
DEFAULTS = WebhookSettings.model_validate({"env": "dev"})
SECRET = subscriber_secret(b"k" * 32, bytes(range(16)))
BODY = '{"type":"alert.raised","alert":{"title_vi":"Ngập úng – Đống Đa"}}'.encode()


def test_the_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    import hashlib
    import hmac

    expected = hmac.new(SECRET.encode(), b"1700000000." + BODY, hashlib.sha256).hexdigest()
    assert sign(SECRET, 1_700_000_000, BODY) == f"sha256={expected}"


@pytest.mark.parametrize(
    ("timestamp", "body", "secret", "now", "ok"),
    [
        ("1700000000", BODY, SECRET, 1_700_000_000 + TOLERANCE_S, True),
        ("1700000000", BODY, SECRET, 1_700_000_000 - TOLERANCE_S, True),
        ("1700000000", BODY, SECRET, 1_700_000_001 + TOLERANCE_S, False),  # replayed later
        ("1700000000", BODY + b" ", SECRET, 1_700_000_000, False),  # body changed
        ("1700000001", BODY, SECRET, 1_700_000_000, False),  # timestamp changed
        ("1700000000", BODY, SECRET + "x", 1_700_000_000, False),  # another secret
        ("-1", BODY, SECRET, 1_700_000_000, False),
        ("", BODY, SECRET, 1_700_000_000, False),
    ],
)
def test_a_receiver_accepts_only_authentic_fresh_deliveries(
    timestamp: str, body: bytes, secret: str, now: float, ok: bool
) -> None:
    header = sign(SECRET, 1_700_000_000, BODY)
    assert verify(secret, timestamp, body, header, now_s=now) is ok


def test_backoff_doubles_with_equal_jitter_up_to_the_cap() -> None:
    rng = random.Random(3)
    for attempts in range(1, 40):
        ceiling = min(600.0, 2.0 * 2**attempts)
        delays = [POLICY.delay_s(attempts, rng) for _ in range(50)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert max(delays) - min(delays) > ceiling / 10  # jittered, not in step


def test_outcomes() -> None:
    rng = random.Random(1)
    did = uuid.uuid4()
    ok = POLICY.outcome(Attempt(200), attempts=3, age_s=50.0, rng=rng, delivery_id=did)
    assert (ok.delivery_id, ok.status, ok.http_status) == (did, "delivered", 200)
    for answer in (Attempt(None, "ConnectError"), Attempt(500), Attempt(404), Attempt(301)):
        again = POLICY.outcome(answer, attempts=1, age_s=0.0, rng=rng)
        assert again.status == "pending"
        assert 2.0 <= again.retry_in_s <= 4.0
    assert POLICY.outcome(Attempt(404), attempts=1, age_s=0, rng=rng).error == "HTTP 404"
    # Retry-After is honoured, within the cap
    slow = POLICY.outcome(Attempt(429, retry_after_s=120.0), attempts=1, age_s=0.0, rng=rng)
    assert slow.retry_in_s == 120.0
    capped = POLICY.outcome(Attempt(503, retry_after_s=1e9), attempts=1, age_s=0.0, rng=rng)
    assert capped.retry_in_s == 600.0


def test_dead_after_max_attempts_or_max_age() -> None:
    rng = random.Random(1)
    by_count = POLICY.outcome(Attempt(503), attempts=100, age_s=10.0, rng=rng)
    assert by_count.status == "dead"
    assert by_count.error is not None
    assert by_count.error.startswith("gave up after 100 attempt(s)")
    # the next attempt would come after the maximum age: give up now, not later
    by_age = POLICY.outcome(Attempt(None, "refused"), attempts=20, age_s=86000.0, rng=rng)
    assert by_age.status == "dead"
    assert POLICY.outcome(Attempt(None), attempts=20, age_s=80000.0, rng=rng).status == "pending"


def test_the_default_schedule() -> None:
    # With the defaults: how many attempts a 10-minute outage costs, how soon after the
    # receiver is back a delivery goes, and what gives up first. (The outage test scales
    # this schedule down.)
    policy = RetryPolicy(DEFAULTS.retry_initial_s, DEFAULTS.retry_max_s, DEFAULTS.max_age_s,
                         DEFAULTS.max_attempts)  # fmt: skip
    rng = random.Random(7)
    at, attempts, outage_s = 0.0, 0, 600.0
    while at < outage_s:
        attempts += 1
        at += policy.outcome(Attempt(None), attempts=attempts, age_s=at, rng=rng).retry_in_s
    assert 6 <= attempts <= 9
    assert at - outage_s <= DEFAULTS.retry_max_s == 300.0  # within five minutes of recovery
    # a receiver that never answers: the maximum age (24 h) decides, not the attempt count
    at, attempts, status = 0.0, 0, "pending"
    while status == "pending":
        attempts += 1
        outcome = policy.outcome(Attempt(None), attempts=attempts, age_s=at, rng=rng)
        status, at = outcome.status, at + outcome.retry_in_s
    assert attempts < DEFAULTS.max_attempts
    assert DEFAULTS.max_age_s - DEFAULTS.retry_max_s < at <= DEFAULTS.max_age_s


def _snapshot(note: str = "", details: dict[str, object] | None = None) -> dict[str, object]:
    return {
        "event": {"event_id": 9, "action": "updated", "at": "2026-07-01T01:00:00+00:00",
                  "actor": "processing", "severity": "severe", "value": 34.5, "note": note},
        "alert": {"alert_id": 4, "rule": "flood_depth", "category": "event",
                  "severity": "severe", "state": "raised", "title_vi": "Ngập úng – Đống Đa",
                  "observed_at": "2026-07-01T00:59:00+00:00", "acknowledged_at": None,
                  "details": details or {"peak_cm": 34.5}, "secret_salt": "never sent"},
    }  # fmt: skip


def test_the_body_is_stable_utf8_json_with_hanoi_times() -> None:
    did = uuid.uuid4()
    body = render(_snapshot(), did, max_bytes=65536)
    assert body is not None
    assert body == render(_snapshot(), did, max_bytes=65536)  # same bytes on every attempt
    doc = json.loads(body)
    assert "Ngập úng – Đống Đa".encode() in body  # UTF-8, not \u escapes
    assert doc["delivery_id"] == str(did)
    assert doc["type"] == "alert.updated"
    assert doc["alert"]["observed_at"] == "2026-07-01T00:59:00Z"
    assert doc["alert"]["observed_at_local"] == "2026-07-01T07:59:00+07:00"
    assert doc["alert"]["acknowledged_at"] is None
    assert doc["alert"]["details"] == {"peak_cm": 34.5}
    assert "secret_salt" not in doc["alert"]  # only the published fields


def test_an_oversized_body_loses_its_details_then_is_refused() -> None:
    big: dict[str, object] = {"trace": "x" * 10_000}
    body = render(_snapshot(details=big), uuid.uuid4(), max_bytes=4096)
    assert body is not None
    doc = json.loads(body)
    assert doc["alert"]["details"] is None
    assert doc["alert"]["details_omitted"] is True
    assert render(_snapshot(note="y" * 10_000), uuid.uuid4(), max_bytes=4096) is None


def test_settings_need_a_server_key_outside_dev() -> None:
    from pydantic import ValidationError

    assert WebhookSettings.model_validate({"env": "dev"}).key.startswith(b"hanoi-ioc-dev")
    with pytest.raises(ValidationError, match="API_SECRET_KEY"):
        WebhookSettings.model_validate({"env": "prod"})
    with pytest.raises(ValidationError, match="32 characters"):
        WebhookSettings.model_validate({"env": "prod", "secret_key": "short"})
    key = "k" * 40
    assert WebhookSettings.model_validate({"env": "prod", "secret_key": key}).key == key.encode()
