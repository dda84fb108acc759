"""Public alerts as CAP 1.2: which alerts are published, how they read, when a new version
is issued, what the feeds list; every document is validated against the OASIS schema."""

from __future__ import annotations

import asyncio
import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from lxml import etree

from contract import Domain, Quantity, Reading, Station, StationId
from ops_api.cap_rules import FEEDS, PROFILES
from processing.alerts.lifecycle import Command, Lifecycle
from processing.alerts.sink import apply_commands
from processing.conditions.registry import RULES
from processing.conditions.thresholds import DEFAULT_RULES, evaluate
from tests.ops_api import seed
from tests.ops_api.conftest import FLOOD, OPERATOR, VIEWER, TestClient, bearer
from tests.ops_api.seed import SyncConn

CAP = "{urn:oasis:names:tc:emergency:cap:1.2}"
ATOM = "{http://www.w3.org/2005/Atom}"
CAP_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+07:00$")
_XSD_ENV = "HANOI_CAP_XSD"
_XSD_REL = Path("shared/reference/CAP-v1.2.xsd")


def _xsd_path() -> Path:
    """``$HANOI_CAP_XSD``, else ``shared/reference/`` beside the checkout or an ancestor of it.

    The schema lives outside the repository, next to the checkout (``../shared``); a checkout
    made elsewhere (a worktree, CI's clean clone) finds it in the nearest ancestor holding one.
    """
    named = os.environ.get(_XSD_ENV)
    if named:
        return Path(named)
    repo = Path(__file__).resolve().parents[2]
    for folder in repo.parents:
        if (folder / _XSD_REL).is_file():
            return folder / _XSD_REL
    return repo.parent / _XSD_REL


Node = Any  # an lxml element (lxml ships no type stubs)


@pytest.fixture(scope="module")
def cap_schema() -> Any:
    """The official OASIS CAP 1.2 schema (see :func:`_xsd_path`)."""
    path = _xsd_path()
    if not path.is_file():
        pytest.skip(
            f"the OASIS CAP 1.2 schema is missing: put CAP-v1.2.xsd at {path} "
            f"(or name it in ${_XSD_ENV}) to validate the CAP documents"
        )
    return etree.XMLSchema(etree.parse(str(path)))


def _valid(schema: Any, element: Node) -> Node:
    if not schema.validate(element):
        raise AssertionError(f"CAP document invalid: {schema.error_log}")
    return element


def _parse(document: bytes) -> Node:
    return etree.fromstring(document)


def _cap(api: TestClient, schema: Any, alert_id: int, token: str = FLOOD) -> Node:
    response = api.get(f"/api/cap/alerts/{alert_id}.xml", headers=bearer(token))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/cap+xml")
    return _valid(schema, _parse(response.content))


def _feed(api: TestClient, schema: Any, name: str) -> list[Node]:
    """The CAP messages of a feed (each validated)."""
    response = api.get(f"/api/cap/{name}.xml", headers=bearer(VIEWER))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/atom+xml")
    feed = _parse(response.content)
    assert feed.tag == f"{ATOM}feed"
    return [_valid(schema, e) for e in feed.iterfind(f"{ATOM}entry/{ATOM}content/{CAP}alert")]


def _ids(messages: list[Node]) -> list[int]:
    return [int(m.findtext(f"{CAP}identifier").split(".")[2]) for m in messages]


def _infos(root: Node) -> dict[str, Node]:
    return {i.findtext(f"{CAP}language"): i for i in root.iterfind(f"{CAP}info")}


def _flood_station(db: SyncConn) -> None:
    seed.add_station(
        db, "fd-thai-ha", "flood", {"water_depth": ("cm", 30.0)}, lat=21.0118, lon=105.8201,
        name="Điểm ngập Thái Hà", district="Đống Đa",
    )  # fmt: skip


def _flood(db: SyncConn, **kwargs: Any) -> int:
    values: dict[str, Any] = {
        "station_id": "fd-thai-ha", "domain": "flood", "quantity": "water_depth",
        "rule": "flood_depth", **kwargs,
    }  # fmt: skip
    alert_id, _ = seed.add_alert(db, **values)
    return alert_id


def test_every_public_rule_has_a_cap_profile_and_an_instruction() -> None:
    public = {name for name, spec in RULES.items() if spec.public}
    assert set(PROFILES) == public
    assert {"flood_depth", "flood_forecast", "heavy_rain", "air_quality"} <= public
    for name in ("spike", "stuck", "neighbours", "sensor_silent", "clock_skew", "storage_job",
                 "processing_lag", "depth_without_rain", "stuck_zero_ok"):  # fmt: skip
        assert not RULES[name].public, name
    for name in public:
        assert RULES[name].instruction_vi, name
        assert RULES[name].instruction_en, name
    assert set(FEEDS["flood"].rules) == {"flood_depth", "flood_forecast", "heavy_rain"}
    assert set(FEEDS["air"].rules) == {"air_quality"}


@pytest.mark.db
def test_observed_flood_message(api: TestClient, db: SyncConn, cap_schema: Any) -> None:
    _flood_station(db)
    flood = _flood(db)
    root = _cap(api, cap_schema, flood)
    assert root.findtext(f"{CAP}identifier") == f"hanoi-ioc.alert.{flood}.1"
    assert CAP_TIME.match(root.findtext(f"{CAP}sent"))
    assert (root.findtext(f"{CAP}status"), root.findtext(f"{CAP}msgType")) == ("Actual", "Alert")
    assert (root.findtext(f"{CAP}scope"), root.findtext(f"{CAP}code")) == (
        "Public",
        "rule:flood_depth",
    )
    assert root.find(f"{CAP}references") is None
    infos = _infos(root)
    assert list(infos) == ["vi-VN", "en-US"]
    vi, en = infos["vi-VN"], infos["en-US"]
    assert vi.findtext(f"{CAP}event") == "Ngập úng đô thị"
    assert en.findtext(f"{CAP}headline") == "Deep flooding"
    assert vi.findtext(f"{CAP}instruction") == RULES["flood_depth"].instruction_vi
    assert en.findtext(f"{CAP}instruction") == RULES["flood_depth"].instruction_en
    for info in infos.values():
        assert [c.text for c in info.iterfind(f"{CAP}category")] == ["Met"]
        assert info.findtext(f"{CAP}severity") == "Moderate"
        assert (info.findtext(f"{CAP}urgency"), info.findtext(f"{CAP}certainty")) == (
            "Immediate", "Observed")  # fmt: skip
        assert [r.text for r in info.iterfind(f"{CAP}responseType")] == ["Avoid", "Monitor"]
        assert CAP_TIME.match(info.findtext(f"{CAP}expires"))
        assert info.findtext(f"{CAP}parameter/{CAP}valueName") == "waterDepthCm"
        assert info.findtext(f"{CAP}parameter/{CAP}value") == "25"
        assert info.findtext(f"{CAP}area/{CAP}circle") == "21.01180,105.82010 0.5"
    assert vi.findtext(f"{CAP}area/{CAP}areaDesc") == "Điểm ngập Thái Hà, Đống Đa, Hà Nội"


@pytest.mark.db
@pytest.mark.parametrize(("confidence", "certainty"), [(0.8, "Likely"), (0.3, "Possible")])
def test_forecast_is_likely_or_possible_with_onset(
    api: TestClient, db: SyncConn, cap_schema: Any, confidence: float, certainty: str
) -> None:
    _flood_station(db)
    details = {"eta_min": 20.0, "confidence": confidence, "instruction_vi": "Chuẩn bị phân luồng.",
               "instruction_en": "Prepare diversions."}  # fmt: skip
    alert_id = _flood(db, rule="flood_forecast", details=details)
    vi, en = _infos(_cap(api, cap_schema, alert_id)).values()
    for info in (vi, en):
        assert info.findtext(f"{CAP}certainty") == certainty
        assert info.findtext(f"{CAP}urgency") == "Expected"
        assert [r.text for r in info.iterfind(f"{CAP}responseType")] == ["Prepare", "Monitor"]
        assert info.findtext(f"{CAP}parameter/{CAP}valueName") == "expectedWaterDepthCm"
    assert vi.findtext(f"{CAP}event") == "Dự báo ngập úng đô thị"
    assert vi.findtext(f"{CAP}instruction") == "Chuẩn bị phân luồng."
    assert en.findtext(f"{CAP}instruction") == "Prepare diversions."
    onset, expires = vi.findtext(f"{CAP}onset"), vi.findtext(f"{CAP}expires")
    effective = vi.findtext(f"{CAP}effective")
    assert effective < onset < expires  # same offset: the strings order as the times do


@pytest.mark.db
def test_internal_alerts_never_leave_the_centre(
    api: TestClient, db: SyncConn, cap_schema: Any
) -> None:
    _flood_station(db)
    flood = _flood(db)
    internal = [
        _flood(db, rule="spike", category="sensor_health", severity="info"),
        _flood(db, rule="sensor_silent", category="sensor_health", quantity=None),
        _flood(db, rule="depth_without_rain", category="sensor_health"),
        seed.add_alert(db, station_id=None, domain=None, rule="storage_job", category="operations")[
            0
        ],
    ]
    assert _ids(_feed(api, cap_schema, "flood")) == [flood]
    for alert_id in internal:
        response = api.get(f"/api/cap/alerts/{alert_id}.xml", headers=bearer(VIEWER))
        assert response.status_code == 404
        body = response.json()
        assert body["code"] == "not_found"
        assert (
            body["message_en"] == "No CAP message for this alert (only public alerts are published)"
        )
        assert body["message_vi"]
        assert body["detail"]
    assert api.get("/api/cap/alerts/999999.xml", headers=bearer(VIEWER)).status_code == 404


@pytest.mark.db
def test_a_new_version_only_when_the_public_view_changes(
    api: TestClient, db: SyncConn, cap_schema: Any
) -> None:
    _flood_station(db)
    flood = _flood(db)
    first = _cap(api, cap_schema, flood)
    first_sent = first.findtext(f"{CAP}sent")
    assert api.post(f"/api/alerts/{flood}/acknowledge", headers=bearer(OPERATOR)).status_code == 200
    assert api.post(f"/api/alerts/{flood}/comment", headers=bearer(OPERATOR),
                    json={"note": "đã cử người"}).status_code == 200  # fmt: skip
    db.execute("UPDATE alerts SET escalation_level = 1, updated_at = now() WHERE alert_id = %s",
               (flood,))  # fmt: skip
    seed.add_event(db, flood, "escalated", "processing", severity="moderate")
    same = _cap(api, cap_schema, flood)
    assert etree.tostring(same) == etree.tostring(first)  # ack, comment, escalation: no version

    db.execute(
        "UPDATE alerts SET severity = 'severe', value = 31.5, message_vi = 'Độ sâu 31,5 cm', "
        "message_en = 'Depth 31.5 cm', updated_at = now() WHERE alert_id = %s", (flood,),
    )  # fmt: skip
    updated_event = seed.add_event(db, flood, "updated", "processing", severity="severe")
    update = _cap(api, cap_schema, flood)
    assert update.findtext(f"{CAP}msgType") == "Update"
    assert update.findtext(f"{CAP}identifier") == f"hanoi-ioc.alert.{flood}.{updated_event}"
    assert update.findtext(f"{CAP}references") == (
        f"hanoi-ioc,hanoi-ioc.alert.{flood}.1,{first_sent}")  # fmt: skip
    assert _infos(update)["vi-VN"].findtext(f"{CAP}description") == "Độ sâu 31,5 cm"
    assert _infos(update)["en-US"].findtext(f"{CAP}severity") == "Severe"

    assert api.post(f"/api/alerts/{flood}/clear", headers=bearer(OPERATOR)).status_code == 200
    cleared = _cap(api, cap_schema, flood)
    assert cleared.findtext(f"{CAP}msgType") == "Update"
    references = (cleared.findtext(f"{CAP}references") or "").split(" ")
    assert [r.split(",")[1] for r in references] == [
        f"hanoi-ioc.alert.{flood}.1", f"hanoi-ioc.alert.{flood}.{updated_event}"]  # fmt: skip
    infos = _infos(cleared)
    for info in infos.values():
        assert [r.text for r in info.iterfind(f"{CAP}responseType")] == ["AllClear"]
        assert (info.findtext(f"{CAP}urgency"), info.findtext(f"{CAP}severity"),
                info.findtext(f"{CAP}certainty")) == ("Past", "Minor", "Observed")  # fmt: skip
        assert info.find(f"{CAP}parameter") is None
    assert "đã kết thúc" in infos["vi-VN"].findtext(f"{CAP}description")
    assert "has ended" in infos["en-US"].findtext(f"{CAP}description")
    assert infos["en-US"].findtext(f"{CAP}headline").startswith("All clear – Urban flooding")


@pytest.mark.db
def test_feed_lists_every_open_alert_whatever_its_age(
    api: TestClient, db: SyncConn, cap_schema: Any
) -> None:
    _flood_station(db)
    old = _flood(db)
    db.execute("UPDATE alerts SET raised_at = now() - interval '3 days' WHERE alert_id = %s",
               (old,))  # fmt: skip
    # 600 later flood alerts, all cleared long ago, and 600 later sensor-health notes, open
    db.execute(
        "INSERT INTO alerts (dedup_key, rule, category, severity, state, station_id, domain, "
        "title_vi, title_en, message_vi, message_en, observed_at, cleared_at) "
        "SELECT 'flood_depth:old' || i, 'flood_depth', 'event', 'minor', 'cleared', "
        "'fd-thai-ha', 'flood', 'a', 'a', 'a', 'a', now(), now() - interval '2 days' "
        "FROM generate_series(1, 600) i"
    )
    db.execute(
        "INSERT INTO alerts (dedup_key, rule, category, severity, state, station_id, domain, "
        "title_vi, title_en, message_vi, message_en, observed_at) "
        "SELECT 'spike:' || i, 'spike', 'sensor_health', 'info', 'raised', 'fd-thai-ha', "
        "'flood', 's', 's', 's', 's', now() FROM generate_series(1, 600) i"
    )
    recent = _flood(db, rule="heavy_rain", quantity="rainfall")
    db.execute("UPDATE alerts SET state = 'cleared', cleared_at = now() WHERE alert_id = %s",
               (recent,))  # fmt: skip
    seed.add_event(db, recent, "cleared", "processing")
    messages = _feed(api, cap_schema, "flood")
    assert sorted(_ids(messages)) == sorted([old, recent])
    by_id = dict(zip(_ids(messages), messages, strict=True))
    clear_info = _infos(by_id[recent])["vi-VN"]
    assert clear_info.findtext(f"{CAP}responseType") == "AllClear"
    assert clear_info.findtext(f"{CAP}event") == "Mưa lớn"
    assert _feed(api, cap_schema, "air") == []


@pytest.mark.db
def test_air_quality_has_a_feed_of_its_own(api: TestClient, db: SyncConn, cap_schema: Any) -> None:
    _flood_station(db)
    seed.add_station(db, "aq-hoan-kiem", "air", {"pm25": ("ug/m3", 60.0)})
    advice = {"instruction_vi": "Ở trong nhà.", "instruction_en": "Stay indoors."}
    episode, _ = seed.add_alert(
        db, station_id="aq-hoan-kiem", domain="air", rule="air_quality", value=187.0,
        details=advice,
    )  # fmt: skip
    sample, _ = seed.add_alert(db, station_id="aq-hoan-kiem", domain="air", rule="pm25_high")
    flood = _flood(db)
    (message,) = _feed(api, cap_schema, "air")
    assert _ids([message]) == [episode]
    assert _ids(_feed(api, cap_schema, "flood")) == [flood]
    vi, en = _infos(message).values()
    for info in (vi, en):
        assert [c.text for c in info.iterfind(f"{CAP}category")] == ["Health", "Env"]
        assert info.findtext(f"{CAP}parameter/{CAP}valueName") == "VN_AQI"
    assert (vi.findtext(f"{CAP}instruction"), en.findtext(f"{CAP}instruction")) == (
        "Ở trong nhà.", "Stay indoors.")  # fmt: skip
    assert api.get(f"/api/cap/alerts/{sample}.xml", headers=bearer(VIEWER)).status_code == 404
    # the flood department's token sees the flood feed only
    assert api.get(f"/api/cap/alerts/{episode}.xml", headers=bearer(FLOOD)).status_code == 404
    assert api.get("/api/cap/air.xml", headers=bearer(FLOOD)).status_code == 403
    assert api.get("/api/cap/flood.xml").status_code == 401


@pytest.mark.db
def test_processing_follows_the_value_into_a_new_public_version(
    api: TestClient, db: SyncConn, db_url: str, cap_schema: Any
) -> None:
    """The street floods to 50.1 cm and drains: processing's own alerts, written by its sink,
    read in CAP as the first message and then an update with the current depth and trend."""
    _flood_station(db)
    station = Station(StationId("fd-thai-ha"), Domain.FLOOD, "Điểm ngập Thái Hà", "Đống Đa",
                      21.0118, 105.8201, "flood_depth")  # fmt: skip
    rules = {Quantity.WATER_DEPTH: [r for r in DEFAULT_RULES if r.name == "flood_depth"]}
    t0 = datetime(2025, 9, 30, tzinfo=UTC)
    life = Lifecycle()
    depths = [12.0, 12.0, 30.0, 50.1, *(50.1 - 2 * k for k in range(1, 15)), *[4.0] * 3]
    batches: list[list[Command]] = []
    for minute, cm in enumerate(depths):
        at = t0 + timedelta(minutes=minute)
        reading = Reading(StationId("fd-thai-ha"), Quantity.WATER_DEPTH, cm, at, at)
        batches.append([c for cond in evaluate([reading], rules, {"fd-thai-ha": station})
                        if (c := life.step(cond, station)) is not None])  # fmt: skip

    async def write(commands: list[Command]) -> None:
        async with await psycopg.AsyncConnection.connect(db_url) as conn, conn.transaction():
            await apply_commands(conn, commands)

    first_id = None
    for commands in batches[:-3]:  # up to 22.1 cm, still open
        if commands:
            asyncio.run(write(commands))
            if first_id is None:
                row = db.execute("SELECT alert_id FROM alerts").fetchone()
                assert row is not None
                first_id = int(str(row[0]))
    assert first_id is not None
    message = _cap(api, cap_schema, first_id)
    assert message.findtext(f"{CAP}msgType") == "Update"
    vi, en = _infos(message).values()
    assert vi.findtext(f"{CAP}severity") == "Extreme"
    assert "hiện tại" in vi.findtext(f"{CAP}description")
    assert "(đang giảm)" in vi.findtext(f"{CAP}description")
    assert "đỉnh 50,1 cm lúc 07:03 30/09/2025" in vi.findtext(f"{CAP}description")
    assert "peak 50.1 cm at 07:03 30/09/2025" in en.findtext(f"{CAP}description")
    parameters = {p.findtext(f"{CAP}valueName"): p.findtext(f"{CAP}value")
                  for p in en.iterfind(f"{CAP}parameter")}  # fmt: skip
    assert parameters["trend"] == "falling"
    assert float(parameters["waterDepthCm"]) < 50.1
    assert vi.findtext(f"{CAP}instruction") == RULES["flood_depth"].instruction_vi
    assert vi.findtext(f"{CAP}onset") == "2025-09-30T07:01:00+07:00"  # when it was raised
    # three readings back to normal: the all-clear says when the water receded (event time)
    cleared = [c for commands in batches[-3:] for c in commands]
    assert [type(c).__name__ for c in cleared] == ["Clear"]
    asyncio.run(write(cleared))
    vi = _infos(_cap(api, cap_schema, first_id))["vi-VN"]
    assert vi.findtext(f"{CAP}responseType") == "AllClear"
    assert vi.findtext(f"{CAP}description") == (
        "Ngập úng tại Điểm ngập Thái Hà, Đống Đa, Hà Nội đã kết thúc: nước đã rút "
        "(lúc 07:20 30/09/2025, giờ Hà Nội)."
    )
