"""OASIS CAP 1.2 messages for flood alerts, with ``vi-VN`` and ``en-US`` info blocks (pure).

One CAP message per alert *version*: the identifier carries the alert id and its newest
event id, so every change is a new message. The first version is ``msgType=Alert``; later
ones are ``Update`` and reference the first; a cleared alert is an ``Update`` with
``responseType=AllClear`` (domain.md §8.1, project convention [U]). Times are written with
the Asia/Ho_Chi_Minh offset (``2026-09-30T13:05:00+07:00``), as CAP requires no ``Z``.

Conventions marked [U] in the reference are used as such: category ``Met`` (rain-driven
urban flooding), urgency ``Immediate`` and certainty ``Observed`` (sensor observations),
expiry three hours after the message, a 0.5 km circle around the sensor.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final, Literal
from xml.etree.ElementTree import Element, SubElement, tostring

from contract import HANOI
from ops_api.alert_queries import AlertRecord
from processing.alerts import AlertState

__all__ = ["CAP_NS", "CapContext", "CapStatus", "cap_alert", "cap_time", "flood_feed", "to_xml"]

CAP_NS: Final = "urn:oasis:names:tc:emergency:cap:1.2"
ATOM_NS: Final = "http://www.w3.org/2005/Atom"
CapStatus = Literal["Actual", "Exercise", "System", "Test", "Draft"]
_EXPIRES: Final = timedelta(hours=3)  # [U] refreshed by every Update
_RADIUS_KM: Final = 0.5  # [U] a street-scale circle around the sensor
_PARAMETERS: Final = {"water_depth": "waterDepthCm", "rainfall": "rainfallMm"}
_TEXT: Final = {
    "vi-VN": {
        "event": "Ngập úng đô thị",
        "sender": "Trung tâm điều hành đô thị thông minh Hà Nội",
        "instruction": "Tránh đi qua khu vực ngập, không để xe chết máy trong nước; "
        "theo dõi các bản tin cập nhật.",
        "all_clear": "Nước đã rút; cảnh báo kết thúc.",
    },
    "en-US": {
        "event": "Urban flooding",
        "sender": "Hanoi Intelligent Operations Centre",
        "instruction": "Avoid the flooded area and do not drive through the water; "
        "follow the updates.",
        "all_clear": "The water has receded; the warning has ended.",
    },
}


@dataclass(frozen=True, slots=True)
class CapContext:
    """What a CAP message needs beyond the alert.

    Args:
        sender: CAP ``sender`` (no spaces, commas, ``<`` or ``&``).
        status: CAP ``status``; ``Test`` for simulated data.
        first_event_id: the alert's first event (its ``Alert`` message).
        first_sent: when that first message was sent.
        lat: the station's latitude, if known.
        lon: the station's longitude, if known.
        place_vi: area description in Vietnamese (station, district).
        place_en: area description in English.
        web: a link to more information, if any.
    """

    sender: str
    status: CapStatus
    first_event_id: int
    first_sent: datetime
    lat: float | None = None
    lon: float | None = None
    place_vi: str = "Hà Nội"
    place_en: str = "Hanoi"
    web: str | None = None


def cap_time(moment: datetime) -> str:
    """CAP ``dateTime``: seconds precision with the Hanoi offset.

    >>> from datetime import UTC, datetime
    >>> cap_time(datetime(2026, 9, 30, 6, 5, 7, 123456, tzinfo=UTC))
    '2026-09-30T13:05:07+07:00'
    """
    return moment.astimezone(HANOI).replace(microsecond=0).isoformat()


def _identifier(alert_id: int, event_id: int) -> str:
    return f"hanoi-ioc.alert.{alert_id}.{event_id}"


def _text(parent: Element, tag: str, value: str) -> Element:
    child = SubElement(parent, tag)
    child.text = value
    return child


def cap_alert(record: AlertRecord, ctx: CapContext) -> Element:
    """The CAP ``<alert>`` element for the alert's current version."""
    alert = record.alert
    event_id = record.last_event_id or ctx.first_event_id
    sent = record.updated_at
    root = Element("alert", {"xmlns": CAP_NS})
    _text(root, "identifier", _identifier(record.alert_id, event_id))
    _text(root, "sender", ctx.sender)
    _text(root, "sent", cap_time(sent))
    _text(root, "status", ctx.status)
    is_first = event_id == ctx.first_event_id
    _text(root, "msgType", "Alert" if is_first else "Update")
    _text(root, "scope", "Public")
    _text(root, "code", f"rule:{alert.rule}")
    if not is_first:
        first = _identifier(record.alert_id, ctx.first_event_id)
        _text(root, "references", f"{ctx.sender},{first},{cap_time(ctx.first_sent)}")
    cleared = alert.state is AlertState.CLEARED
    for language, (headline, description) in (
        ("vi-VN", (alert.title_vi, alert.message_vi)),
        ("en-US", (alert.title_en, alert.message_en)),
    ):
        _info(root, record, ctx, language, headline, description, sent, cleared)
    return root


def _info(  # one CAP <info> block; arguments are its fields
    root: Element,
    record: AlertRecord,
    ctx: CapContext,
    language: str,
    headline: str,
    description: str,
    sent: datetime,
    cleared: bool,
) -> None:
    text = _TEXT[language]
    info = SubElement(root, "info")
    _text(info, "language", language)
    _text(info, "category", "Met")
    _text(info, "event", text["event"])
    for response in ("AllClear",) if cleared else ("Avoid", "Monitor"):
        _text(info, "responseType", response)
    _text(info, "urgency", "Past" if cleared else "Immediate")
    _text(info, "severity", record.alert.severity.cap)
    _text(info, "certainty", "Observed")
    _text(info, "effective", cap_time(record.raised_at))
    _text(info, "onset", cap_time(record.alert.observed_at))
    _text(info, "expires", cap_time(sent + _EXPIRES))
    _text(info, "senderName", text["sender"])
    _text(info, "headline", headline)
    _text(info, "description", description)
    _text(info, "instruction", text["all_clear"] if cleared else text["instruction"])
    if ctx.web:
        _text(info, "web", ctx.web)
    name = _PARAMETERS.get(record.alert.quantity or "")
    if name is not None and record.alert.value is not None:
        parameter = SubElement(info, "parameter")
        _text(parameter, "valueName", name)
        _text(parameter, "value", f"{record.alert.value:g}")
    area = SubElement(info, "area")
    _text(area, "areaDesc", ctx.place_vi if language == "vi-VN" else ctx.place_en)
    if ctx.lat is not None and ctx.lon is not None:
        _text(area, "circle", f"{ctx.lat:.5f},{ctx.lon:.5f} {_RADIUS_KM}")


def to_xml(element: Element) -> bytes:
    """Serialise with an XML declaration."""
    data: bytes = tostring(element, encoding="utf-8", xml_declaration=True)
    return data


def flood_feed(
    entries: list[tuple[AlertRecord, Element, str]], *, self_url: str, updated: datetime
) -> Element:
    """An Atom feed whose entries carry the CAP messages inline.

    Args:
        entries: (alert, its CAP element, the URL of its standalone CAP message).
        self_url: the feed's own URL.
        updated: the feed's ``updated`` time.
    """
    feed = Element("feed", {"xmlns": ATOM_NS})
    _text(feed, "id", "urn:hanoi-ioc:cap:flood")
    _text(feed, "title", "Cảnh báo ngập úng Hà Nội / Hanoi flood alerts (CAP 1.2)")
    _text(feed, "updated", cap_time(updated))
    author = SubElement(feed, "author")
    _text(author, "name", "Hanoi IOC")
    SubElement(feed, "link", {"rel": "self", "href": self_url})
    for record, element, url in entries:
        entry = SubElement(feed, "entry")
        _text(entry, "id", f"urn:hanoi-ioc:{element.findtext('identifier')}")
        _text(entry, "title", f"{record.alert.title_vi} / {record.alert.title_en}")
        _text(entry, "updated", cap_time(record.updated_at))
        SubElement(entry, "link", {"rel": "alternate", "type": "application/cap+xml", "href": url})
        content = SubElement(entry, "content", {"type": "application/cap+xml"})
        content.append(element)
    return feed
