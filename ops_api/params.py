r"""Input types of the API: every text, id and time a client may send, bounded and clean (pure).

Each type carries its limits into the OpenAPI document (``maxLength``, ``pattern``,
``maximum``), so what the schema promises and what the server enforces are the same thing:

- :data:`Text` / :data:`Label` refuse NUL and the other C0/C1 control characters (tab and
  line breaks are allowed in free text) and lone surrogates, which PostgreSQL cannot store;
- :data:`DbId` is a positive ``bigint`` (a larger number is a 422, never a database error);
- :data:`ApiDatetime` is any ISO 8601 time with an offset; it is converted to UTC, and a time
  so close to the calendar's ends that UTC cannot hold it is clamped to the first or last
  representable instant (``to=0001-01-01T00:00:00+01:00`` means "before everything").

>>> from pydantic import TypeAdapter
>>> TypeAdapter(Text).validate_python("Ngập sâu\n25 cm")
'Ngập sâu\n25 cm'
>>> TypeAdapter(ApiDatetime).validate_python("0001-01-01T00:00:00+01:00").isoformat()
'0001-01-01T00:00:00+00:00'
>>> shift(MIN_TIME, -86400.0) == MIN_TIME
True
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Final

from pydantic import AfterValidator, AwareDatetime, BeforeValidator, Field

__all__ = [
    "BIGINT_MAX",
    "MAX_TIME",
    "MIN_TIME",
    "QUANTITY_PATTERN",
    "STATION_PATTERN",
    "TEXT_PATTERN",
    "ApiDatetime",
    "DbId",
    "Label",
    "Text",
    "check_text",
    "shift",
]

BIGINT_MAX: Final = 2**63 - 1
"""The largest id PostgreSQL's ``bigint`` holds."""
MIN_TIME: Final = datetime.min.replace(tzinfo=UTC)
MAX_TIME: Final = datetime.max.replace(tzinfo=UTC)

# Printable text: no C0 controls but tab/LF/CR, no DEL or C1 controls. Written so that it
# means the same to JSON Schema (ECMA 262), Python ``re`` and pydantic's Rust regex.
TEXT_PATTERN: Final = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$"
LABEL_PATTERN: Final = r"^[^\x00-\x1F\x7F-\x9F]*$"
STATION_PATTERN: Final = r"^[a-z0-9][a-z0-9-]{1,62}$"
QUANTITY_PATTERN: Final = r"^[a-z0-9_]{1,64}$"
_SURROGATE: Final = re.compile("[\ud800-\udfff]")


def check_text(value: str) -> str:
    """Refuse lone surrogates (valid in JSON escapes, not in UTF-8 or PostgreSQL).

    Raises:
        ValueError: when ``value`` holds one.
    """
    if _SURROGATE.search(value):
        msg = "text holds a lone UTF-16 surrogate"
        raise ValueError(msg)
    return value


Text = Annotated[str, Field(pattern=TEXT_PATTERN), AfterValidator(check_text)]
"""Free text (notes, descriptions): printable, lines allowed."""
Label = Annotated[str, Field(pattern=LABEL_PATTERN), AfterValidator(check_text)]
"""A one-line label (names, districts, filters)."""
DbId = Annotated[int, Field(ge=1, le=BIGINT_MAX)]
"""A database id (``bigint``, positive)."""


def _to_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:
        return MIN_TIME if value.year == 1 else MAX_TIME


_RFC3339: Final = re.compile(r"^\d{4}-\d\d-\d\d[Tt]\d\d:\d\d")


def _rfc3339(value: object) -> object:
    # pydantic would also take a number of seconds or a date alone; the API takes what its
    # schema says (RFC 3339 date-time), nothing else.
    if not isinstance(value, str) or not _RFC3339.match(value):
        msg = "expected an RFC 3339 date-time with an offset, e.g. 2026-09-30T13:00:00+07:00"
        raise ValueError(msg)
    return value


ApiDatetime = Annotated[AwareDatetime, BeforeValidator(_rfc3339), AfterValidator(_to_utc)]
"""An RFC 3339 time with an offset, as UTC (clamped to the representable range)."""


def shift(moment: datetime, seconds: float) -> datetime:
    """``moment`` moved by ``seconds``, clamped to the representable range."""
    try:
        return moment + timedelta(seconds=seconds)
    except OverflowError:
        return MIN_TIME if seconds < 0 else MAX_TIME
