"""OASIS CAP 1.2 messages for public alerts, with ``vi-VN`` and ``en-US`` info blocks (pure).

One CAP message per *public version* of an alert: its identifier carries the alert id and
the event that made the version (a raise, a processing update, a clear), and ``sent`` is
that event's time, so an operator's acknowledgement, comment or an escalation issues no new
message. The first version is ``msgType=Alert``; later ones are ``Update`` and reference
the first and the previous one. A cleared alert is the all-clear CAP expects: an ``Update``
with ``responseType=AllClear``, urgency ``Past``, severity ``Minor`` and a text saying it
has ended. How each rule reads (event, category, urgency, certainty) is
:mod:`ops_api.cap_rules`. Times carry the Asia/Ho_Chi_Minh offset
(``2026-09-30T13:05:00+07:00``), as CAP allows no ``Z``.

Conventions marked [U] (project proposals): expiry three hours after an observation's
message (three hours after the expected onset for a forecast), a 0.5 km circle around the
sensor, a forecast ``Likely`` from a nowcast confidence of 0.5 (else ``Possible``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final, Literal
from xml.etree.ElementTree import Element, SubElement, tostring

from contract import HANOI, hanoi_time
from ops_api.alert_queries import AlertRecord, PublicVersions
from ops_api.cap_rules import CapFeed, CapProfile
from processing.alerts import AlertEvent, AlertState
from processing.conditions.registry import RULES

__all__ = ["CAP_NS", "CapContext", "CapStatus", "cap_alert", "cap_feed", "cap_time", "to_xml"]

CAP_NS: Final = "urn:oasis:names:tc:emergency:cap:1.2"
ATOM_NS: Final = "http://www.w3.org/2005/Atom"
CapStatus = Literal["Actual", "Exercise", "System", "Test", "Draft"]
_EXPIRES: Final = timedelta(hours=3)  # [U] refreshed by every Update
_RADIUS_KM: Final = 0.5  # [U] a street-scale circle around the sensor
_LIKELY_FROM: Final = 0.5  # [U] nowcast confidence from which a forecast is Likely
_SENDER_NAME: Final = {
    "vi-VN": "Trung tâm điều hành đô thị thông minh Hà Nội",
    "en-US": "Hanoi Intelligent Operations Centre",
}
_ALL_CLEAR: Final = {"vi-VN": "Hết cảnh báo", "en-US": "All clear"}


@dataclass(frozen=True, slots=True)
class CapContext:
    """What a CAP message needs beyond the alert.

    Args:
        sender: CAP ``sender`` (no spaces, commas, ``<`` or ``&``).
        status: CAP ``status``; ``Test`` for simulated data.
        versions: the alert's public versions (first, previous, current).
        profile: how its rule reads in CAP.
        lat: the station's latitude, if known.
        lon: the station's longitude, if known.
        place_vi: area description in Vietnamese (station, district).
        place_en: area description in English.
        web: a link to more information, if any.
    """

    sender: str
    status: CapStatus
    versions: PublicVersions
    profile: CapProfile
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


def _reference(sender: str, event: AlertEvent) -> str:
    return f"{sender},{_identifier(event.alert_id, event.event_id)},{cap_time(event.at)}"


def _text(parent: Element, tag: str, value: str) -> Element:
    child = SubElement(parent, tag)
    child.text = value
    return child


def cap_alert(record: AlertRecord, ctx: CapContext) -> Element:
    """The CAP ``<alert>`` element of the alert's current public version."""
    versions = ctx.versions
    current = versions.current
    root = Element("alert", {"xmlns": CAP_NS})
    _text(root, "identifier", _identifier(record.alert_id, current.event_id))
    _text(root, "sender", ctx.sender)
    _text(root, "sent", cap_time(current.at))
    _text(root, "status", ctx.status)
    is_first = current.event_id == versions.first.event_id
    _text(root, "msgType", "Alert" if is_first else "Update")
    _text(root, "scope", "Public")
    _text(root, "code", f"rule:{record.alert.rule}")
    if not is_first:
        earlier = [versions.first]
        if versions.previous is not None and versions.previous.event_id != versions.first.event_id:
            earlier.append(versions.previous)
        _text(root, "references", " ".join(_reference(ctx.sender, e) for e in earlier))
    for language in ("vi-VN", "en-US"):
        if record.alert.state is AlertState.CLEARED:
            _all_clear(root, record, ctx, language)
        else:
            _info(root, record, ctx, language)
    return root


def _detail(record: AlertRecord, key: str) -> str | float | int | bool | None:
    return record.alert.details.get(key)


def _event_time(record: AlertRecord, key: str, default: datetime) -> datetime:
    """An event time the details record (``2025-09-30T02:10:00Z``), else ``default``."""
    value = _detail(record, key)
    if not isinstance(value, str):
        return default
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return default


def _instruction(record: AlertRecord, language: str) -> str:
    key = "instruction_vi" if language == "vi-VN" else "instruction_en"
    given = _detail(record, key)
    if isinstance(given, str) and given:
        return given
    spec = RULES[record.alert.rule]
    return spec.instruction_vi if language == "vi-VN" else spec.instruction_en


def _timing(record: AlertRecord, sent: datetime) -> tuple[str, str, str, str]:
    """urgency, certainty, onset and expires of a message that is still on."""
    alert = record.alert
    if not RULES[alert.rule].forecast:
        began = _event_time(record, "raised_observed_at", alert.observed_at)
        return "Immediate", "Observed", cap_time(began), cap_time(sent + _EXPIRES)
    eta = _detail(record, "eta_min")
    confidence = _detail(record, "confidence")
    minutes = float(eta) if isinstance(eta, int | float) else 0.0
    onset = alert.observed_at + timedelta(minutes=minutes)
    likely = isinstance(confidence, int | float) and confidence >= _LIKELY_FROM
    return (
        "Expected",
        "Likely" if likely else "Possible",
        cap_time(onset),
        cap_time(max(onset, sent) + _EXPIRES),
    )


def _head(root: Element, ctx: CapContext, language: str, categories: tuple[str, ...]) -> Element:
    info = SubElement(root, "info")
    _text(info, "language", language)
    for category in categories:
        _text(info, "category", category)
    _text(info, "event", ctx.profile.event_vi if language == "vi-VN" else ctx.profile.event_en)
    return info


def _info(root: Element, record: AlertRecord, ctx: CapContext, language: str) -> None:
    alert = record.alert
    vi = language == "vi-VN"
    info = _head(root, ctx, language, ctx.profile.categories)
    for response in ctx.profile.responses:
        _text(info, "responseType", response)
    urgency, certainty, onset, expires = _timing(record, ctx.versions.current.at)
    _text(info, "urgency", urgency)
    _text(info, "severity", alert.severity.cap)
    _text(info, "certainty", certainty)
    _text(info, "effective", cap_time(ctx.versions.current.at))
    _text(info, "onset", onset)
    _text(info, "expires", expires)
    _text(info, "senderName", _SENDER_NAME[language])
    _text(info, "headline", alert.title_vi if vi else alert.title_en)
    _text(info, "description", alert.message_vi if vi else alert.message_en)
    _text(info, "instruction", _instruction(record, language))
    _tail(info, record, ctx, language)


def _all_clear(root: Element, record: AlertRecord, ctx: CapContext, language: str) -> None:
    vi = language == "vi-VN"
    profile = ctx.profile
    cleared = ctx.versions.current.at
    place = ctx.place_vi if vi else ctx.place_en
    info = _head(root, ctx, language, profile.categories)
    _text(info, "responseType", "AllClear")
    _text(info, "urgency", "Past")
    _text(info, "severity", "Minor")
    _text(info, "certainty", "Observed")
    _text(info, "effective", cap_time(cleared))
    _text(info, "expires", cap_time(cleared + _EXPIRES))
    _text(info, "senderName", _SENDER_NAME[language])
    event = profile.event_vi if vi else profile.event_en
    _text(info, "headline", f"{_ALL_CLEAR[language]} – {event}: {place}")
    ended = profile.ended_vi if vi else profile.ended_en
    ended_at = _event_time(record, "cleared_observed_at", cleared)
    _text(info, "description", ended.format(place=place, time=hanoi_time(ended_at)))
    _text(info, "instruction", profile.after_vi if vi else profile.after_en)
    _tail(info, record, ctx, language, with_value=False)


def _tail(
    info: Element, record: AlertRecord, ctx: CapContext, language: str, *, with_value: bool = True
) -> None:
    """``web``, ``parameter`` and ``area``: the parts every info block ends with."""
    if ctx.web:
        _text(info, "web", ctx.web)
    value = record.alert.value
    if with_value and ctx.profile.parameter is not None and value is not None:
        parameter = SubElement(info, "parameter")
        _text(parameter, "valueName", ctx.profile.parameter)
        _text(parameter, "value", f"{value:g}")
    trend = _detail(record, "trend")
    if with_value and isinstance(trend, str):
        parameter = SubElement(info, "parameter")
        _text(parameter, "valueName", "trend")
        _text(parameter, "value", trend)
    area = SubElement(info, "area")
    _text(area, "areaDesc", ctx.place_vi if language == "vi-VN" else ctx.place_en)
    if ctx.lat is not None and ctx.lon is not None:
        _text(area, "circle", f"{ctx.lat:.5f},{ctx.lon:.5f} {_RADIUS_KM}")


def to_xml(element: Element) -> bytes:
    """Serialise with an XML declaration."""
    data: bytes = tostring(element, encoding="utf-8", xml_declaration=True)
    return data


def cap_feed(
    feed: CapFeed,
    entries: list[tuple[AlertRecord, Element, str]],
    *,
    self_url: str,
    updated: datetime,
) -> Element:
    """An Atom feed whose entries carry the CAP messages inline.

    Args:
        feed: which public feed.
        entries: (alert, its CAP element, the URL of its standalone CAP message).
        self_url: the feed's own URL.
        updated: the feed's ``updated`` time.
    """
    root = Element("feed", {"xmlns": ATOM_NS})
    _text(root, "id", f"urn:hanoi-ioc:cap:{feed.name}")
    _text(root, "title", f"{feed.title} (CAP 1.2)")
    _text(root, "updated", cap_time(updated))
    author = SubElement(root, "author")
    _text(author, "name", "Hanoi IOC")
    SubElement(root, "link", {"rel": "self", "href": self_url})
    for record, element, url in entries:
        entry = SubElement(root, "entry")
        _text(entry, "id", f"urn:hanoi-ioc:{element.findtext('identifier')}")
        _text(entry, "title", f"{record.alert.title_vi} / {record.alert.title_en}")
        _text(entry, "updated", element.findtext("sent") or cap_time(record.updated_at))
        SubElement(entry, "link", {"rel": "alternate", "type": "application/cap+xml", "href": url})
        content = SubElement(entry, "content", {"type": "application/cap+xml"})
        content.append(element)
    return root
