"""One signed POST against a real local socket: the attempt's time limit."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid

import httpx
import pytest

from webhooks.sender import post

pytestmark = pytest.mark.anyio


async def test_a_receiver_that_trickles_its_answer_is_cut_at_the_time_limit() -> None:
    """``timeout_s`` bounds the whole attempt, not each read: a byte every 0.1 s is no answer."""

    async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(65536)
        with contextlib.suppress(ConnectionError):
            for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 10_000:
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(0.1)
        writer.close()

    server = await asyncio.start_server(trickle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server, httpx.AsyncClient() as client:
        started = time.monotonic()
        attempt = await post(
            client, f"http://127.0.0.1:{port}/hook", delivery_id=uuid.uuid4(), event="raised",
            body=b"{}", secret="whsec_test", timeout_s=0.5,
        )  # fmt: skip
        elapsed = time.monotonic() - started
    assert attempt.http_status is None
    assert "within 0.5 s" in (attempt.error or "")
    assert elapsed < 3.0
