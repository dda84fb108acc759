"""One signed POST to a receiver, bounded in time and in what it reads back.

Redirects are not followed (a 3xx is a failed attempt: configure the final URL). At most
:data:`MAX_ANSWER_BYTES` of the receiver's answer are read, for the error text; the rest is
discarded with the connection. ``timeout_s`` bounds the whole exchange, not each read: a
receiver that trickles its answer a byte at a time cannot hold a round (and its lease) for
longer than that.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Final

import httpx

from contract.webhook import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    sign,
)
from webhooks.policy import Attempt, retry_after_s

__all__ = ["MAX_ANSWER_BYTES", "USER_AGENT", "post"]

MAX_ANSWER_BYTES: Final = 2048
USER_AGENT: Final = "hanoi-ioc-webhooks/1"
_ERROR_CHARS: Final = 300


async def post(
    client: httpx.AsyncClient,
    url: str,
    *,
    delivery_id: uuid.UUID,
    event: str,
    body: bytes,
    secret: str,
    timeout_s: float,
) -> Attempt:
    """POST ``body`` to ``url``, signed with ``secret`` now; what it came to (never raises)."""
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": USER_AGENT,
        DELIVERY_HEADER: str(delivery_id),
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(secret, timestamp, body),
        EVENT_HEADER: event,
    }
    try:
        async with (
            asyncio.timeout(timeout_s),
            client.stream(
                "POST", url, content=body, headers=headers, timeout=timeout_s,
                follow_redirects=False,
            ) as response,
        ):  # fmt: skip
            answer = await _head_of(response)
            status = response.status_code
            wait = retry_after_s(response.headers.get("Retry-After"))
    except TimeoutError:
        return Attempt(None, f"no complete answer within {timeout_s:g} s")
    except httpx.HTTPError as exc:
        return Attempt(None, f"{type(exc).__name__}: {exc}"[:_ERROR_CHARS] or type(exc).__name__)
    if 200 <= status < 300:
        return Attempt(status)
    text = answer.decode("utf-8", "replace").strip()
    reason = f"HTTP {status}" + (f": {text}" if text else "")
    if 300 <= status < 400:
        reason = f"HTTP {status}: redirect not followed (configure the final URL)"
    return Attempt(status, reason[:_ERROR_CHARS], wait)


async def _head_of(response: httpx.Response) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_raw():
        chunks.append(chunk)
        size += len(chunk)
        if size >= MAX_ANSWER_BYTES:
            break
    return b"".join(chunks)[:MAX_ANSWER_BYTES]
