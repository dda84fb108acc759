"""The operations console in a real headless Chromium (Debian's, driven by Playwright).

The API serves a database filled with the demo scenario (through the real ingest and
processing code); the page must show the stations and the alerts, receive a live alert
without a reload, let an operator acknowledge it and show that to a second console, and
display what people read (no negative depths, human units, one labelled time per card).
A screenshot at 1280×720 is kept in the test's directory and, when ``HANOI_TEST_ARTIFACTS``
names a directory, copied there.

No browser is ever downloaded: the test uses ``/usr/bin/chromium`` (or ``HANOI_CHROMIUM``)
and is skipped, saying why, only when no Chromium binary exists.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Final

import anyio
import playwright.sync_api as playwright_sync
import psycopg
import pytest

from contract import now_utc
from hanoi_ioc.simfill import fill_with_simulation
from processing.alerts import Alert, AlertAction, Severity
from processing.alerts.lifecycle import Raise
from processing.alerts.sink import apply_commands, transition_alert
from processing.conditions.registry import RULES
from tests.ops_api.conftest import OPERATOR, VIEWER, make_settings
from tests.ops_api.server import free_port, running_api

pytestmark = [pytest.mark.db, pytest.mark.slow]


_WIDTH: Final = 1280
_HEIGHT: Final = 720
_TIMEOUT_MS: Final = 15_000


def _chromium() -> str:
    for candidate in (os.environ.get("HANOI_CHROMIUM"), shutil.which("chromium"),
                      "/usr/bin/chromium", shutil.which("chromium-browser")):  # fmt: skip
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    pytest.skip("no Chromium binary (apt-get install chromium, or set HANOI_CHROMIUM)")


@pytest.fixture
def console_db(db_url: str) -> str:
    """One simulated hour of the demo (stations, readings, alerts, some acknowledged)."""
    data = anyio.run(lambda: fill_with_simulation(db_url, hours=1.0))
    assert data.alerts > 0
    with psycopg.connect(db_url, autocommit=True) as conn:
        # a negative depth on a dry street, as gauges report it (its offset)
        conn.execute(
            "UPDATE latest SET value = -2.5 FROM sensors s WHERE latest.sensor_id = s.sensor_id "
            "AND s.station_id = 'fd-thai-ha' AND s.quantity = 'water_depth'"
        )
    # one alert cleared a moment ago stays on screen, greyed; one cleared three hours ago
    # (its clearing moved back in time) is gone
    anyio.run(_clear_two, db_url)
    return db_url


async def _clear_two(db_url: str) -> None:
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT alert_id FROM alerts WHERE state <> 'cleared' ORDER BY alert_id LIMIT 2"
        )
        now, before = (int(row[0]) for row in await cur.fetchall())
        for alert_id in (now, before):
            await transition_alert(
                conn, alert_id, AlertAction.CLEARED, actor="op-sim", note="xong",
                can_see=lambda _domain: True,
            )  # fmt: skip
        await conn.execute(
            "UPDATE alerts SET cleared_at = now() - interval '3 hours', title_en = 'Old story'"
            " WHERE alert_id = %s",
            (before,),
        )


def _raise_live(db_url: str) -> int:
    """A flood alert written by processing's sink, as the service writes it."""

    async def run() -> int:
        alert = Alert(
            dedup_key="browser-test:fd-thai-ha", rule="flood_depth", category="event",
            severity=Severity.SEVERE, station_id="fd-thai-ha", quantity="water_depth",
            domain="flood", district="Đống Đa", title_vi="Ngập sâu tại Thái Hà",
            title_en="Deep flooding at Thái Hà", message_vi="Nước ngập 35 cm.",
            message_en="Water 35 cm deep.", value=35.0, threshold=30.0,
            observed_at=now_utc() - timedelta(seconds=30),
            details=dict(RULES["flood_depth"].instructions()),
        )  # fmt: skip
        async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
            await apply_commands(conn, [Raise(alert, "browser-test")])
            cur = await conn.execute(
                "SELECT alert_id FROM alerts WHERE dedup_key = %s", (alert.dedup_key,)
            )
            row = await cur.fetchone()
            assert row is not None
            return int(row[0])

    # (Playwright's sync API runs an event loop in this thread: the sink runs in another)
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(anyio.run, run).result()


@pytest.fixture
def console_url(console_db: str) -> Iterator[str]:
    settings = make_settings(console_db, host="127.0.0.1", port=free_port())
    with running_api(settings) as base:
        yield base


def _artefact(path: Path) -> None:
    target = os.environ.get("HANOI_TEST_ARTIFACTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, Path(target) / path.name)


def test_console_in_a_real_browser(console_db: str, console_url: str, tmp_path: Path) -> None:
    chromium = _chromium()
    with playwright_sync.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            _exercise(browser, console_db, console_url, tmp_path)
        finally:
            browser.close()


def _exercise(browser: playwright_sync.Browser, db_url: str, base: str, tmp_path: Path) -> None:
    viewport = playwright_sync.ViewportSize(width=_WIDTH, height=_HEIGHT)
    operator = browser.new_context(viewport=viewport, timezone_id="UTC", locale="en-US")
    watcher = browser.new_context(viewport=viewport)
    page = operator.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.set_default_timeout(_TIMEOUT_MS)
    # the token in the fragment (never sent to the server; moved to localStorage)
    page.goto(f"{base}/#token={OPERATOR}")
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT count(*) FROM stations WHERE retired_at IS NULL").fetchone()
    assert row is not None
    stations = int(row[0])
    expect = playwright_sync.expect
    expect(page.locator("#stations g.station")).to_have_count(stations, timeout=_TIMEOUT_MS)
    page.wait_for_selector("#conn[data-state='live']")
    page.wait_for_selector("#alerts li.alert")
    assert "op-1 (operator)" in page.inner_text("#who")
    panels = page.inner_text("#panels")
    assert "Thái Hà" in panels

    # what people read: units, depths, one labelled time per card, no internal tags
    # (the alert texts themselves are processing's wording, checked where they are written)
    text = page.evaluate(
        "(() => { const c = document.body.cloneNode(true);"
        " c.querySelectorAll('.alert-msg, .alert-instr').forEach((m) => m.remove());"
        " return c.innerText; })()"
    )
    for machine in ("ug/m3", "Cel", " veh", "[U]"):
        assert machine not in text, machine
    assert "µg/m³" in text
    assert "°C" in text
    assert "xe/phút (veh/min)" in text
    name_cell = page.locator("td.name[title$='(fd-thai-ha)']")
    thai_ha = page.locator("#panels tr", has=name_cell).inner_text()
    assert "khô / dry" in thai_ha
    assert "-2" not in thai_ha
    with psycopg.connect(db_url) as conn:  # only the display: what is stored stays
        depth = conn.execute(
            "SELECT value FROM latest_readings WHERE station_id = 'fd-thai-ha'"
            " AND quantity = 'water_depth'"
        ).fetchone()
    assert depth == (-2.5,)
    cards = page.locator("#alerts li.alert")
    for i in range(cards.count()):
        card = cards.nth(i)
        assert card.locator("time").count() == 1
        assert card.locator("time").inner_text().startswith("Lúc / At ")
    cleared = page.locator("#alerts li.alert.state-cleared")
    assert cleared.count() >= 1
    assert "Đã kết thúc / Cleared" in cleared.first.inner_text()
    assert cleared.filter(has_text="Cleared by op-sim").count() == 1
    assert page.locator("#alerts li.alert", has_text="Old story").count() == 0
    first = tmp_path / "console-loaded-1280x720.png"
    page.screenshot(path=str(first))
    _artefact(first)
    # nothing clipped at 1280×720: no table wider than its box
    clipped = page.evaluate(
        "[...document.querySelectorAll('#panels .table-wrap')]"
        ".filter((w) => w.scrollWidth > w.clientWidth + 1).length"
    )
    assert clipped == 0

    # a second console (a viewer) is open before the alert arrives
    second = watcher.new_page()
    second.set_default_timeout(_TIMEOUT_MS)
    second.goto(f"{base}/#token={VIEWER}")
    second.wait_for_selector("#conn[data-state='live']")

    alert_id = _raise_live(db_url)
    card = page.locator(f"#alerts li.alert[data-id='{alert_id}']")
    card.wait_for()  # arrived over the WebSocket, no reload
    assert "Ngập sâu tại Thái Hà" in card.inner_text()
    assert "35.0 cm" in card.inner_text()
    advice = card.locator(".alert-instr").inner_text()  # what the public should do, vi + en
    assert advice.startswith("Khuyến cáo / Advice: ")
    assert RULES["flood_depth"].instruction_vi in advice
    assert RULES["flood_depth"].instruction_en in advice
    other = second.locator(f"#alerts li.alert[data-id='{alert_id}']")
    other.wait_for()
    assert other.get_by_role("button", name="Xác nhận / Acknowledge").is_disabled()

    card.get_by_role("button", name="Xác nhận / Acknowledge").click()
    page.wait_for_selector(f"#alerts li.alert.state-acknowledged[data-id='{alert_id}']")
    second.wait_for_selector(f"#alerts li.alert.state-acknowledged[data-id='{alert_id}']")
    assert "Acknowledged by op-1" in other.inner_text()
    with psycopg.connect(db_url) as conn:
        stored = conn.execute(
            "SELECT state, acknowledged_by FROM alerts WHERE alert_id = %s", (alert_id,)
        ).fetchone()
    assert stored == ("acknowledged", "op-1")

    page.wait_for_timeout(500)  # toasts and the map's re-render settle
    shot = tmp_path / "console-1280x720.png"
    page.screenshot(path=str(shot))
    assert shot.stat().st_size > 10_000
    _artefact(shot)
    assert errors == []
