"""What a refused message leaves in the database, bounded (pure, no I/O).

Every refused message is *counted* exactly, per publisher, reason and minute; it is *kept*
(a quarantine row) only while its publisher stays within a rate. A row keeps a prefix of the
payload and of the topic with their full sizes and the payload's SHA-256, so one message can
take no more than a few kilobytes however large it was, and a flood of refused messages from
one publisher grows the quarantine by at most ``rate_per_min`` rows a minute (plus the first
of each reason in each minute, so every kind of fault keeps a sample). The rest is in the
exact counts.

The publisher is the station level of the topic. Under the broker's ACL only a station's own
device (or its registered gateway) can publish there, so it cannot be forged, unlike anything
in the payload or an MQTT 5 user property.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from db import QuarantineCount, QuarantineRecord
from stream.sampler import publisher_of
from stream.validate import Outcome, storable

__all__ = ["QuarantinePolicy", "quarantine_records"]

_CLIENT_CHARS: Final = 64


@dataclass(frozen=True, slots=True)
class QuarantinePolicy:
    """How much of a refused message is kept.

    Args:
        payload_prefix_bytes: bytes of the payload kept in its row (the size and SHA-256
            of the whole are kept too).
        topic_prefix_chars: characters of the topic kept.
    """

    payload_prefix_bytes: int = 8192
    topic_prefix_chars: int = 256


def quarantine_records(
    outcomes: Iterable[Outcome], policy: QuarantinePolicy, service: str = "ingest"
) -> tuple[list[QuarantineRecord], list[QuarantineCount]]:
    """The rows (sampled messages only) and the exact counts of a batch's refusals."""
    records: list[QuarantineRecord] = []
    counts: dict[tuple[datetime, str, str], list[int]] = {}
    for outcome in outcomes:
        if not outcome.quarantined:
            continue
        message = outcome.message
        publisher = storable(publisher_of(message.topic)) or ""
        window = message.received_at.replace(second=0, microsecond=0)
        size = len(message.payload)
        digest = hashlib.sha256(message.payload).digest() if outcome.sampled else b""
        topic = storable(message.topic[: policy.topic_prefix_chars]) or ""
        for q in outcome.quarantined:
            tally = counts.setdefault((window, publisher, q.reason), [0, 0, 0, 0])
            tally[0] += 1
            tally[1] += q.readings
            tally[2] += size
            if not outcome.sampled:
                continue
            tally[3] += 1
            records.append(
                QuarantineRecord(
                    received_at=message.received_at,
                    topic=topic,
                    topic_size=len(message.topic.encode("utf-8", "surrogatepass")),
                    client_id=storable(message.publisher[:_CLIENT_CHARS])
                    if message.publisher
                    else None,
                    payload=message.payload[: policy.payload_prefix_bytes],
                    payload_size=size,
                    payload_sha256=digest,
                    reason=q.reason,
                    detail=q.detail,
                    station_id=q.station_id,
                    quantity=q.quantity,
                    readings=q.readings,
                    service=service,
                )
            )
    tallies = [
        QuarantineCount(window, publisher, reason, service, *tally)
        for (window, publisher, reason), tally in counts.items()
    ]
    return records, tallies
