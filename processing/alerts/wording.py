"""How alert texts name places and times: the parts every rule's wording shares (pure).

Each rule family writes its own sentences (they say different things), but a place is always
named the same way — the station's registered name, else its id, with its district — and a
time is always Hanoi time to the minute, saying so in both languages.

>>> from datetime import UTC, datetime
>>> place = Place.of(None, "fd-x")
>>> place.name, place.in_district
('fd-x', 'fd-x')
>>> local_vi(datetime(2025, 9, 30, 2, 10, tzinfo=UTC))
'09:10 30/09/2025 (giờ Hà Nội)'
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from contract import Station, hanoi_time

__all__ = ["Place", "local_en", "local_vi"]


@dataclass(frozen=True, slots=True)
class Place:
    """A station as alert texts name it.

    Args:
        name: the registered name (the id when the station is not registered).
        district: its district, if known.
    """

    name: str
    district: str | None = None

    @classmethod
    def of(cls, station: Station | None, station_id: str) -> Place:
        """The place of ``station_id`` (``station``: its registry entry, if any)."""
        if station is None:
            return cls(station_id)
        return cls(station.name, station.district)

    @property
    def in_district(self) -> str:
        """``name, district`` (the name alone when the district is unknown)."""
        return f"{self.name}, {self.district}" if self.district else self.name


def local_vi(moment: datetime) -> str:
    """An event time for a Vietnamese text: Hanoi time, saying so."""
    return f"{hanoi_time(moment)} (giờ Hà Nội)"


def local_en(moment: datetime) -> str:
    """An event time for an English text: Hanoi time, saying so."""
    return f"{hanoi_time(moment)} (Hanoi time)"
