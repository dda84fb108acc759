"""Which alerts are public, and how each public rule reads in CAP 1.2 (pure).

Only the rules :data:`processing.conditions.RULES` marks ``public`` leave the operations
centre; sensor-health, data-quality and operations alerts never appear in a CAP document.
Each public rule belongs to one feed and names its CAP ``event``, ``category``,
``responseType`` and ``parameter`` here; urgency and certainty follow from whether it
observes or forecasts (OASIS CAP 1.2 §3.2.2):

| rule | feed | category | urgency | certainty |
|---|---|---|---|---|
| ``flood_depth`` (street flooding) | flood | Met | Immediate | Observed |
| ``heavy_rain`` (2-hour rain) | flood | Met | Immediate | Observed |
| ``flood_forecast`` (nowcast) | flood | Met | Expected | Likely (Possible: confidence < 0.5) |
| ``air_quality`` (hourly VN_AQI) | air | Health, Env | Immediate | Observed |
| ``low_oxygen`` (West Lake) | water | Env | Immediate | Observed |
| ``algal_bloom`` (West Lake) | water | Env, Health | Immediate | Observed |

An all-clear (the alert was cleared) is an ``Update`` referencing the earlier messages,
``responseType`` ``AllClear``, urgency ``Past``, severity ``Minor``, certainty ``Observed``,
with a text saying the hazard has ended.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal

from contract import Domain
from processing.alerts import AlertAction
from processing.conditions.registry import RULES

__all__ = [
    "FEEDS",
    "PROFILES",
    "PUBLIC_ACTIONS",
    "CapFeed",
    "CapProfile",
    "FeedName",
    "profile_of",
]

FeedName = Literal["flood", "air", "water"]

PUBLIC_ACTIONS: Final = (
    AlertAction.RAISED,
    AlertAction.UPDATED,
    AlertAction.CLEARED,
    AlertAction.REOPENED,
)
"""The actions that change what the public sees (a new CAP version); an acknowledgement, a
comment or an escalation is the operations centre's own business."""


@dataclass(frozen=True, slots=True)
class CapProfile:
    """How one public rule reads in CAP.

    Args:
        feed: the feed it is published in.
        event_vi: CAP ``event`` in Vietnamese.
        event_en: in English.
        categories: CAP ``category`` values.
        responses: CAP ``responseType`` values while it is on.
        parameter: CAP ``parameter`` name of the alert's value (None: none).
        ended_vi: the all-clear's description (``{place}``, ``{time}``) in Vietnamese.
        ended_en: in English.
        after_vi: the all-clear's instruction in Vietnamese.
        after_en: in English.
    """

    feed: FeedName
    event_vi: str
    event_en: str
    categories: tuple[str, ...]
    responses: tuple[str, ...]
    parameter: str | None
    ended_vi: str
    ended_en: str
    after_vi: str
    after_en: str


_FLOOD_AFTER: Final = (
    "Đi lại bình thường; cẩn thận với bùn, rác và nắp hố ga bị bật.",
    "Travel as usual; watch out for mud, debris and displaced manhole covers.",
)

PROFILES: Final[Mapping[str, CapProfile]] = {
    "flood_depth": CapProfile(
        "flood", "Ngập úng đô thị", "Urban flooding", ("Met",), ("Avoid", "Monitor"),
        "waterDepthCm",
        "Ngập úng tại {place} đã kết thúc: nước đã rút (lúc {time}, giờ Hà Nội).",
        "The flooding at {place} has ended: the water has receded ({time}, Hanoi time).",
        *_FLOOD_AFTER,
    ),
    "heavy_rain": CapProfile(
        "flood", "Mưa lớn", "Heavy rain", ("Met",), ("Prepare", "Monitor"), "rainfall2hMm",
        "Đợt mưa lớn tại {place} đã kết thúc (lúc {time}, giờ Hà Nội).",
        "The heavy rain at {place} has ended ({time}, Hanoi time).",
        "Mưa đã ngớt; nước ở các điểm trũng có thể chưa rút hết, tiếp tục theo dõi các bản tin "
        "ngập.",
        "The rain has eased; low-lying spots may still be flooded, keep following the flood "
        "bulletins.",
    ),
    "flood_forecast": CapProfile(
        "flood", "Dự báo ngập úng đô thị", "Urban flooding expected", ("Met",),
        ("Prepare", "Monitor"), "expectedWaterDepthCm",
        "Không còn dự báo ngập tại {place} (lúc {time}, giờ Hà Nội); cảnh báo kết thúc.",
        "Flooding is no longer expected at {place} ({time}, Hanoi time); the warning has "
        "ended.",
        "Không cần chuẩn bị ứng phó ngập tại khu vực này; tiếp tục theo dõi các bản tin.",
        "No flood preparations are needed here any more; keep following the bulletins.",
    ),
    "air_quality": CapProfile(
        "air", "Ô nhiễm không khí", "Air pollution episode", ("Health", "Env"),
        ("Avoid", "Monitor"), "VN_AQI",
        "Đợt ô nhiễm không khí tại {place} đã kết thúc: VN_AQI đã về mức trung bình hoặc tốt "
        "hơn (lúc {time}, giờ Hà Nội).",
        "The air pollution episode at {place} has ended: the VN_AQI is back to moderate or "
        "better ({time}, Hanoi time).",
        "Có thể hoạt động ngoài trời bình thường.",
        "Outdoor activities can resume as usual.",
    ),
    "low_oxygen": CapProfile(
        "water", "Oxy hoà tan thấp trong hồ", "Low dissolved oxygen in the lake", ("Env",),
        ("Avoid", "Monitor"), "dissolvedOxygenMgL",
        "Oxy hoà tan tại {place} đã trở lại bình thường (lúc {time}, giờ Hà Nội).",
        "Dissolved oxygen at {place} is back to normal ({time}, Hanoi time).",
        "Không cần biện pháp đặc biệt; tiếp tục theo dõi các bản tin.",
        "No special measures are needed; keep following the bulletins.",
    ),
    "algal_bloom": CapProfile(
        "water", "Tảo nở hoa", "Algal bloom", ("Env", "Health"), ("Avoid", "Monitor"),
        "chlorophyllAUgL",
        "Tảo nở hoa tại {place} đã giảm về mức bình thường (lúc {time}, giờ Hà Nội).",
        "The algal bloom at {place} has subsided ({time}, Hanoi time).",
        "Có thể sử dụng mặt hồ bình thường.",
        "The lake can be used as usual.",
    ),
}  # fmt: skip
"""Every public rule's CAP profile (a test holds it to :data:`RULES`' public flags)."""


@dataclass(frozen=True, slots=True)
class CapFeed:
    """One public CAP feed.

    Args:
        name: its name (``/api/cap/<name>.xml``).
        domain: the domain a token must see to read it.
        title: the Atom feed's title.
    """

    name: FeedName
    domain: Domain
    title: str

    @property
    def rules(self) -> tuple[str, ...]:
        """The public rules it carries."""
        return tuple(name for name, profile in PROFILES.items() if profile.feed == self.name)


FEEDS: Final[Mapping[FeedName, CapFeed]] = {
    "flood": CapFeed("flood", Domain.FLOOD,
                     "Cảnh báo ngập úng và mưa lớn Hà Nội / Hanoi flood and heavy-rain alerts"),
    "air": CapFeed("air", Domain.AIR,
                   "Cảnh báo ô nhiễm không khí Hà Nội / Hanoi air-pollution alerts"),
    "water": CapFeed("water", Domain.WATER,
                     "Cảnh báo chất lượng nước hồ Hà Nội / Hanoi lake water-quality alerts"),
}  # fmt: skip


def profile_of(rule: str) -> CapProfile | None:
    """The CAP profile of a public rule; None for any other (it never leaves the centre)."""
    spec = RULES.get(rule)
    if spec is None or not spec.public:
        return None
    return PROFILES.get(rule)
