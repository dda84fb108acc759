"""Flood alerts as CAP 1.2 (single messages and the Atom feed)."""

from __future__ import annotations

import re
from xml.etree.ElementTree import Element, fromstring

import pytest

from tests.ops_api import seed
from tests.ops_api.conftest import FLOOD, OPERATOR, VIEWER, TestClient, bearer
from tests.ops_api.seed import SyncConn

pytestmark = pytest.mark.db

CAP = "{urn:oasis:names:tc:emergency:cap:1.2}"
ATOM = "{http://www.w3.org/2005/Atom}"
CAP_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+07:00$")


def _parse(document: bytes) -> Element:
    return fromstring(document)  # noqa: S314 - the API's own output, not untrusted input


def _cap(api: TestClient, alert_id: int) -> Element:
    response = api.get(f"/api/cap/alerts/{alert_id}.xml", headers=bearer(FLOOD))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/cap+xml")
    return _parse(response.content)


def _seed(db: SyncConn) -> tuple[int, int]:
    seed.add_station(
        db, "fd-thai-ha", "flood", {"water_depth": ("cm", 30.0)}, lat=21.0118, lon=105.8201
    )
    seed.add_station(db, "aq-hoan-kiem", "air", {"pm25": ("ug/m3", 60.0)})
    flood, _ = seed.add_alert(db, station_id="fd-thai-ha", domain="flood", quantity="water_depth")
    air, _ = seed.add_alert(db, station_id="aq-hoan-kiem", domain="air")
    return flood, air


def test_cap_message_structure(api: TestClient, db: SyncConn) -> None:
    flood, _ = _seed(db)
    root = _cap(api, flood)
    assert root.tag == f"{CAP}alert"
    for required in ("identifier", "sender", "sent", "status", "msgType", "scope"):
        assert root.findtext(f"{CAP}{required}"), required
    assert root.findtext(f"{CAP}identifier") == f"hanoi-ioc.alert.{flood}.1"
    assert CAP_TIME.match(root.findtext(f"{CAP}sent") or "")
    assert (root.findtext(f"{CAP}status"), root.findtext(f"{CAP}msgType")) == ("Actual", "Alert")
    assert root.find(f"{CAP}references") is None
    infos = root.findall(f"{CAP}info")
    assert [i.findtext(f"{CAP}language") for i in infos] == ["vi-VN", "en-US"]
    vi, en = infos
    assert vi.findtext(f"{CAP}event") == "Ngập úng đô thị"
    assert en.findtext(f"{CAP}headline") == "Deep flooding"
    for info in infos:
        assert info.findtext(f"{CAP}category") == "Met"
        assert info.findtext(f"{CAP}severity") == "Moderate"
        assert info.findtext(f"{CAP}urgency") == "Immediate"
        assert info.findtext(f"{CAP}certainty") == "Observed"
        assert [r.text for r in info.findall(f"{CAP}responseType")] == ["Avoid", "Monitor"]
        assert CAP_TIME.match(info.findtext(f"{CAP}expires") or "")
        parameter = info.find(f"{CAP}parameter")
        assert parameter is not None
        assert parameter.findtext(f"{CAP}valueName") == "waterDepthCm"
        assert parameter.findtext(f"{CAP}value") == "25"
        area = info.find(f"{CAP}area")
        assert area is not None
        assert area.findtext(f"{CAP}circle") == "21.01180,105.82010 0.5"
    assert "fd-thai-ha" in (vi.findtext(f"{CAP}area/{CAP}areaDesc") or "")


def test_cap_updates_reference_the_first_message_and_clear_is_all_clear(
    api: TestClient, db: SyncConn
) -> None:
    flood, _ = _seed(db)
    first_sent = _cap(api, flood).findtext(f"{CAP}sent")
    api.post(f"/api/alerts/{flood}/acknowledge", headers=bearer(OPERATOR))
    update = _cap(api, flood)
    assert update.findtext(f"{CAP}msgType") == "Update"
    assert (
        update.findtext(f"{CAP}references") == f"hanoi-ioc,hanoi-ioc.alert.{flood}.1,{first_sent}"
    )
    assert update.findtext(f"{CAP}identifier") != f"hanoi-ioc.alert.{flood}.1"
    api.post(f"/api/alerts/{flood}/clear", headers=bearer(OPERATOR))
    cleared = _cap(api, flood)
    for info in cleared.findall(f"{CAP}info"):
        assert [r.text for r in info.findall(f"{CAP}responseType")] == ["AllClear"]
        assert info.findtext(f"{CAP}urgency") == "Past"


def test_cap_feed_lists_flood_alerts_only(api: TestClient, db: SyncConn) -> None:
    flood, air = _seed(db)
    response = api.get("/api/cap/flood.xml", headers=bearer(VIEWER))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/atom+xml")
    feed = _parse(response.content)
    assert feed.tag == f"{ATOM}feed"
    entries = feed.findall(f"{ATOM}entry")
    assert len(entries) == 1
    link = entries[0].find(f"{ATOM}link")
    assert link is not None
    assert link.get("href", "").endswith(f"/api/cap/alerts/{flood}.xml")
    inline = entries[0].find(f"{ATOM}content/{CAP}alert")
    assert inline is not None
    assert inline.findtext(f"{CAP}identifier") == f"hanoi-ioc.alert.{flood}.1"
    assert api.get(f"/api/cap/alerts/{air}.xml", headers=bearer(VIEWER)).status_code == 404
    assert api.get("/api/cap/flood.xml").status_code == 401
