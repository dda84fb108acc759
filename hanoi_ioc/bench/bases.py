"""The bases of the ratios: the broker's raw rate and PostgreSQL's raw COPY rate.

- **Broker**: one paho publisher and one paho subscriber (each its own process, QoS 1 both
  ways, the publisher's in-flight window as load mode's, both on the buffered socket of
  :mod:`stream.mqtt_socket` as our clients are, the publisher writing 32 messages at a
  time) on the private broker, with load-mode station messages (8 readings). Rate =
  messages the subscriber received ÷ its first → last receipt; in readings/s, × 8. No
  validation, no database: what the broker and paho carry on this machine.
- **COPY**: rows with the readings' shape (time, sensor key, value, quality, received)
  COPYed in 50,000-row batches, one transaction each, into an unindexed table of the private
  (durable) database. The rows are encoded once beforehand, so this is the database's rate,
  not Python's.

Run as a child: ``python -m hanoi_ioc.bench.bases pub|sub PORT USER PASSWORD SECONDS``.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Final

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion

from contract import Quantity, encode_telemetry
from simulators.fleet import AIR_QUANTITIES
from stream.mqtt_socket import BufferedClient

__all__ = ["BaseFigures", "broker_rate", "copy_rate"]

BaseFigures = dict[str, float]
_TOPIC: Final = "bench/raw/air/ld-00001/telemetry"
_WINDOW: Final = 100
_MAX_PENDING: Final = 2000
_BLOCK: Final = 32
_COPY_ROWS: Final = 50_000
READINGS_PER_MESSAGE: Final = len(AIR_QUANTITIES)


def _client(user: str, password: str, port: int) -> BufferedClient:
    client = BufferedClient(CallbackAPIVersion.VERSION2, client_id=user, protocol=mqtt.MQTTv311)
    client.username_pw_set(user, password)
    client.max_inflight_messages_set(_WINDOW)
    client.connect("127.0.0.1", port, keepalive=30)
    deadline = time.monotonic() + 10
    while not client.is_connected() and time.monotonic() < deadline:
        client.wait(0.05)
    return client


def _publish(port: int, user: str, password: str, seconds: float) -> dict[str, float]:
    client = _client(user, password, port)
    values: list[tuple[Quantity, float]] = [(q, 40.5) for q in AIR_QUANTITIES]
    infos: list[mqtt.MQTTMessageInfo] = []
    acked = sent = 0
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        sock = client.buffered_socket
        if sock is None:
            break
        with sock.corked():  # as the load generator sends: a block of messages per write
            for _ in range(_BLOCK):
                payload = encode_telemetry("ld-00001", datetime.now(UTC), values, seq=sent)
                infos.append(client.publish(_TOPIC, payload, qos=1))
                sent += 1
        client.pump()
        while acked < len(infos) and infos[acked].is_published():
            acked += 1
        while sent - acked > _MAX_PENDING:
            client.wait(0.01)
            while acked < len(infos) and infos[acked].is_published():
                acked += 1
    deadline = time.monotonic() + 30
    while acked < sent and time.monotonic() < deadline:
        client.wait(0.01)
        while acked < len(infos) and infos[acked].is_published():
            acked += 1
    client.disconnect()
    return {"sent": sent, "acked": acked}


def _subscribe(port: int, user: str, password: str, seconds: float) -> dict[str, float]:
    client = _client(user, password, port)
    got = {"n": 0.0, "first": 0.0, "last": 0.0}

    def on_message(_c: mqtt.Client, _u: object, _m: mqtt.MQTTMessage) -> None:
        now = time.time()
        if not got["n"]:
            got["first"] = now
        got["n"] += 1
        got["last"] = now

    client.on_message = on_message
    client.subscribe(_TOPIC, qos=1)
    print("ready", flush=True)  # noqa: T201 - the parent waits for this line
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        client.wait(0.05)
        if got["n"] and time.time() - got["last"] > 2.0:
            break  # the publisher is done
    client.disconnect()
    return got


async def broker_rate(port: int, users: tuple[tuple[str, str], tuple[str, str]],
                      seconds: float) -> BaseFigures:  # fmt: skip
    """Raw QoS 1 publish → subscribe messages/s (and readings/s) on the broker."""
    (pub_user, pub_pw), (sub_user, sub_pw) = users
    me = [sys.executable, "-m", "hanoi_ioc.bench.bases"]
    sub = await asyncio.create_subprocess_exec(
        *me, "sub", str(port), sub_user, sub_pw, str(seconds + 40), stdout=subprocess.PIPE
    )
    if sub.stdout is None:
        msg = "no pipe"
        raise RuntimeError(msg)
    await asyncio.wait_for(sub.stdout.readline(), 20)
    pub = await asyncio.create_subprocess_exec(
        *me, "pub", str(port), pub_user, pub_pw, str(seconds), stdout=subprocess.PIPE
    )
    pub_out, _ = await pub.communicate()
    sub_out, _ = await sub.communicate()
    published = json.loads(pub_out)
    got = json.loads(sub_out)
    span = max(got["last"] - got["first"], 1e-9)
    rate = got["n"] / span
    return {
        "published": published["acked"], "received": got["n"], "seconds": round(span, 2),
        "messages_s": round(rate), "readings_s": round(rate * READINGS_PER_MESSAGE),
    }  # fmt: skip


def _copy_block(rows: int) -> bytes:
    at = datetime.now(UTC) - timedelta(hours=1)
    stamp = at.isoformat()
    return b"".join(f"{stamp}\t{i % 32000 + 1}\t{20.5 + i % 7}\t0\t{stamp}\n".encode()
                    for i in range(rows))  # fmt: skip


def copy_rate(url: str, seconds: float) -> BaseFigures:
    """Rows/s COPYed into an unindexed readings-shaped table (one transaction per batch)."""
    block = _copy_block(_COPY_ROWS)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS bench_copy (time timestamptz NOT NULL, sensor_id int "
            "NOT NULL, value float8 NOT NULL, quality smallint NOT NULL, received_at timestamptz)"
        )
        conn.execute("TRUNCATE bench_copy")
        rows, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds or rows == 0:
            with conn.transaction(), conn.cursor().copy("COPY bench_copy FROM STDIN") as copy:
                copy.write(block)
            rows += _COPY_ROWS
        elapsed = time.perf_counter() - started
        conn.execute("DROP TABLE bench_copy")
    return {"rows": rows, "seconds": round(elapsed, 2), "rows_s": round(rows / elapsed)}


def main(argv: list[str] | None = None) -> int:
    """The child roles (publisher, subscriber) of :func:`broker_rate`."""
    role, port, user, password, seconds = (argv or sys.argv[1:])[:5]
    run = _publish if role == "pub" else _subscribe
    print(json.dumps(run(int(port), user, password, float(seconds))), flush=True)  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
