"""Deliveries go only where the destination rule allows: real sockets, real name resolution."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from pydantic import ValidationError

from webhooks.destinations import DestinationRule, guarded_transport
from webhooks.sender import post
from webhooks.settings import WebhookSettings

pytestmark = pytest.mark.anyio

PROD = DestinationRule()


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1", "127.8.9.10", "::1", "10.1.2.3", "172.16.0.1", "192.168.1.1",
        "169.254.169.254", "fe80::1", "fc00::1", "0.0.0.0", "::", "100.64.0.1",
        "224.0.0.1", "ff02::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "240.0.0.1",
    ],
)  # fmt: skip
def test_addresses_that_are_not_public_are_refused(address: str) -> None:
    assert PROD.refusal(address) is not None
    assert DestinationRule(everything=True).refusal(address) is None


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert PROD.refusal(address) is None


def test_allowed_networks_open_exactly_their_addresses() -> None:
    rule = DestinationRule(("10.20.0.0/16", "fd00:1::/32"))
    assert rule.refusal("10.20.255.1") is None
    assert rule.refusal("fd00:1::5") is None
    assert rule.refusal("10.21.0.1") is not None
    assert rule.refusal("127.0.0.1") is not None


def test_the_setting_is_checked_and_dev_allows_everything() -> None:
    key = "k" * 40
    prod = WebhookSettings.model_validate(
        {"env": "prod", "secret_key": key, "allowed_networks": "10.20.0.0/16, 192.168.5.0/24"}
    )
    assert prod.destinations.refusal("192.168.5.9") is None
    assert prod.destinations.refusal("192.168.6.9") is not None
    assert WebhookSettings.model_validate({"env": "dev"}).destinations.everything
    with pytest.raises(ValidationError, match="does not appear to be an IPv4 or IPv6 network"):
        WebhookSettings.model_validate({"env": "dev", "allowed_networks": "10.0.0.0/33"})


async def _attempt(rule: DestinationRule, url: str) -> tuple[int | None, str | None]:
    limits = httpx.Limits(max_connections=2)
    async with httpx.AsyncClient(transport=guarded_transport(rule, limits)) as client:
        attempt = await post(
            client, url, delivery_id=uuid.uuid4(), event="raised", body=b"{}",
            secret="whsec_test", timeout_s=5.0,
        )  # fmt: skip
    return attempt.http_status, attempt.error


async def test_a_receiver_on_a_private_address_gets_nothing_unless_its_network_is_allowed() -> None:
    received: list[bytes] = []

    async def receiver(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received.append(await reader.read(65536))
        writer.write(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(receiver, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        for url in (f"http://127.0.0.1:{port}/hook", f"http://localhost:{port}/hook",
                    f"http://[::ffff:127.0.0.1]:{port}/hook"):  # fmt: skip
            status, error = await _attempt(PROD, url)
            assert status is None
            assert "destination refused" in (error or ""), url
            assert "loopback" in (error or "")
        assert received == []  # not even a connection carried a byte
        status, error = await _attempt(
            DestinationRule(("127.0.0.0/8",)), f"http://127.0.0.1:{port}/h"
        )
        assert (status, error) == (204, None)
        assert len(received) == 1
        assert received[0].startswith(b"POST /h ")
