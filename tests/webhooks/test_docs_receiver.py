"""The receiver example of docs/webhooks.md, taken from the page as written, against the real
dispatcher: it verifies, stores each delivery once, keeps each alert's newest state, and
refuses forged and replayed requests."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import re
import sqlite3
import threading
import time
from http.server import ThreadingHTTPServer
from pathlib import Path
from types import ModuleType

import httpx
import pytest

from contract.webhook import sign
from db import Conn
from processing.alerts import Severity
from tests.webhooks.helpers import (
    alert,
    cleared,
    raised,
    registered,
    subscribe,
    updated,
    write,
)
from tests.webhooks.test_dispatcher import dispatching, settings, until

pytestmark = [pytest.mark.db, pytest.mark.anyio]

DOC = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"


def example(tmp_path: Path) -> ModuleType:
    """The page's receiver, as a module (its ``__main__`` part does not run)."""
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## A verifying receiver", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match is not None, "docs/webhooks.md has no receiver example"
    path = tmp_path / "receiver.py"
    path.write_text(match.group(1), encoding="utf-8")
    spec = importlib.util.spec_from_file_location("doc_receiver", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_the_documented_receiver_works_with_the_dispatcher(
    aconn: Conn, db_url: str, tmp_path: Path
) -> None:
    module = example(tmp_path)
    await registered(aconn)
    store = module.Store(str(tmp_path / "alerts.sqlite"))
    server = ThreadingHTTPServer(("127.0.0.1", 0), module.handler("", store))
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    _, secret = await subscribe(aconn, "so-tnmt", url, domains=["flood"])
    server.RequestHandlerClass = module.handler(secret, store)  # the secret, shown once
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        a = alert()
        await write(aconn, [raised(a)])
        await write(aconn, [updated(alert(severity=Severity.SEVERE, value=33.0))])
        await write(aconn, [cleared(a)])
        async with dispatching(settings(db_url)):
            await until(lambda: _delivered(aconn, 3))
        rows = sqlite3.connect(tmp_path / "alerts.sqlite").execute(
            "SELECT delivery_id FROM deliveries"
        )
        stored = {r[0] for r in rows}
        assert len(stored) == 3
        state = sqlite3.connect(tmp_path / "alerts.sqlite").execute(
            "SELECT event_id, alert FROM alerts"
        )
        ((event_id, doc),) = list(state)
        assert json.loads(doc)["state"] == "cleared"

        # a duplicate, a forged and a replayed request, sent by hand
        (body,) = [
            r[0]
            for r in sqlite3.connect(tmp_path / "alerts.sqlite").execute(
                "SELECT body FROM deliveries WHERE json_extract(body, '$.event.action') = 'raised'"
            )
        ]
        raw = body.encode()
        delivery = json.loads(body)["delivery_id"]
        now = int(time.time())
        async with httpx.AsyncClient() as http:

            async def send(ts: int, sig_body: bytes, key: str = secret) -> int:
                headers = {"X-Hanoi-Delivery": delivery, "X-Hanoi-Timestamp": str(ts),
                           "X-Hanoi-Signature": sign(key, ts, sig_body)}  # fmt: skip
                return (await http.post(url, content=raw, headers=headers)).status_code

            assert await send(now, raw) == 204  # a duplicate: accepted, stored once
            assert await send(now, raw + b" ") == 401  # signed over another body
            assert await send(now, raw, key=secret + "x") == 401  # another secret
            assert await send(now - 3600, raw) == 401  # an old request replayed
        again = sqlite3.connect(tmp_path / "alerts.sqlite").execute(
            "SELECT count(*), max(event_id) FROM deliveries, alerts"
        )
        assert list(again) == [(3, event_id)]  # the older event did not overwrite the state
    finally:
        server.shutdown()
        server.server_close()


async def _delivered(conn: Conn, n: int) -> bool:
    await asyncio.sleep(0)
    cur = await conn.execute("SELECT count(*) FROM webhook_outbox WHERE status = 'delivered'")
    row = await cur.fetchone()
    return row is not None and int(row[0]) >= n
