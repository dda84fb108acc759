"""Every field's whole input space: nothing but a PayloadError ever comes out of decoding.

Times are drawn from the whole representable range (year 1 to 9999) with every offset the
parser accepts (-23:59 to +23:59), in every form it accepts (``T``, ``t`` or a space; ``Z``,
``z``, ``±HH:MM`` or ``±HHMM``; 0 to 9 fraction digits) and some it does not; numbers in
every JSON form (integers of hundreds of digits, exponents far past a double's range, the
smallest subnormals, negative zero) and some non-JSON ones. For each, decoding either
accepts with the exact value (a time is the same instant in UTC, a value the number sent) or
refuses with a reason, and the validator — the loop boundary of both services — never has
to fall back to ``internal_error``: that fallback exists for bugs, not for inputs.
"""

import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from contract import (
    QUANTITIES,
    SENML_PREFIX,
    Decoded,
    Domain,
    PayloadError,
    Quantity,
    Registry,
    Sensor,
    Station,
    StationId,
    Topic,
    decode_status,
    decode_telemetry,
)
from stream.consumer import RawMessage
from stream.validate import Validator

NOW = datetime(2026, 11, 23, 4, 0, tzinfo=UTC)
TOPIC = Topic.parse("hanoi/v1/air/aq-edge/telemetry")
STATUS = Topic.parse("hanoi/v1/air/aq-edge/status")
SENSORS = (Sensor(Quantity.PM25, 60.0), Sensor(Quantity.AIR_TEMPERATURE, 60.0))
STATION = Station(StationId("aq-edge"), Domain.AIR, "E", "x", 21.0, 105.8, "urban", SENSORS)
REGISTRY = Registry.of(
    [STATION], {("aq-edge", Quantity.PM25): 1, ("aq-edge", Quantity.AIR_TEMPERATURE): 2}
)
SETTINGS = settings(max_examples=400, deadline=None, derandomize=True, database=None)

# -- times -------------------------------------------------------------------------------------


@st.composite
def rendered_times(draw: st.DrawFn) -> tuple[str, datetime | None]:
    """A time as text, and the instant it means (None: naive, or not representable in UTC)."""
    wall = draw(st.datetimes(min_value=datetime.min, max_value=datetime.max))
    digits = draw(st.integers(0, 9))
    fraction = f"{wall.microsecond:06d}{draw(st.text('0123456789', min_size=3, max_size=3))}"
    separator = draw(st.sampled_from(["T", "t", " "]))
    text = (
        f"{wall.year:04d}-{wall.month:02d}-{wall.day:02d}{separator}"
        f"{wall.hour:02d}:{wall.minute:02d}:{wall.second:02d}"
    )
    text = f"{text}.{fraction[:digits]}" if digits else text
    offset = draw(st.none() | st.integers(-(24 * 60 - 1), 24 * 60 - 1))
    if offset is None:
        return text, None  # naive: refused
    micros = round(Decimal(f"0.{fraction[:digits]}") * 1_000_000) if digits else 0
    try:
        moment = wall.replace(microsecond=0) + timedelta(microseconds=int(micros))
        instant: datetime | None = (moment - timedelta(minutes=offset)).replace(tzinfo=UTC)
    except OverflowError:
        instant = None
    if offset == 0 and draw(st.booleans()):
        return text + draw(st.sampled_from(["Z", "z"])), instant
    sign = "-" if offset < 0 or (offset == 0 and draw(st.booleans())) else "+"
    hours, minutes = divmod(abs(offset), 60)
    colon = draw(st.sampled_from([":", ""]))
    return f"{text}{sign}{hours:02d}{colon}{minutes:02d}", instant


def _telemetry(time_text: str, value: str = "12.5") -> bytes:
    return (
        '{"station":"aq-edge","time":"' + time_text + '","readings":'
        '[{"quantity":"pm25","value":' + value + ',"unit":"ug/m3"}]}'
    ).encode()


def _decode(topic: Topic, payload: bytes) -> tuple[Decoded | None, str | None]:
    """The decoded message, or the refusal's reason (anything else propagates: a failure)."""
    try:
        return decode_telemetry(topic, payload, NOW), None
    except PayloadError as exc:
        return None, exc.reason


def _refused(call: Callable[[], object]) -> str | None:
    """Run ``call``; the refusal's reason, or None when it was accepted."""
    try:
        call()
    except PayloadError as exc:
        return exc.reason
    return None


@SETTINGS
@given(rendered_times())
def test_every_time_form_and_offset_is_decoded_exactly_or_refused(
    drawn: tuple[str, datetime | None],
) -> None:
    text, instant = drawn
    naive = text[-1].isdigit() and text[-3] not in "+-:" and text[-5] not in "+-"
    decoded, reason = _decode(TOPIC, _telemetry(text))
    if decoded is None:
        # refused with a reason, never an exception: naive, or an instant outside the range
        # (or a fraction rounding past 9999-12-31T23:59:59.999999, which the parser refuses)
        assert reason in ("naive_time", "time_out_of_range", "schema"), (text, reason)
        assert instant is None or reason == "schema", (text, reason)
        assert reason != "schema" or text.startswith("9999-12-31")
        return
    assert not naive or instant is not None
    assert instant is not None, text
    (reading,) = decoded.readings
    assert reading.measured_at.tzinfo is UTC
    assert abs(reading.measured_at - instant) <= timedelta(microseconds=1), text


@SETTINGS
@given(rendered_times())
def test_a_status_time_is_decoded_or_refused_the_same_way(
    drawn: tuple[str, datetime | None],
) -> None:
    text, instant = drawn
    payload = b'{"state":"offline","time":"' + text.encode() + b'"}'
    reason = _refused(lambda: decode_status(STATUS, payload, NOW))
    assert reason in (None, "naive_time", "time_out_of_range", "schema")
    assert reason is not None or instant is not None


@SETTINGS
@given(rendered_times())
def test_the_validator_never_falls_back_to_internal_error_on_a_time(
    drawn: tuple[str, datetime | None],
) -> None:
    text, _ = drawn
    validator = Validator(REGISTRY)
    for topic, payload in (
        ("hanoi/v1/air/aq-edge/telemetry", _telemetry(text)),
        ("hanoi/v1/air/aq-edge/status", b'{"state":"online","time":"' + text.encode() + b'"}'),
    ):
        outcome = validator.check(RawMessage(topic, payload, 1, 1, NOW, 1))
        assert "internal_error" not in {q.reason for q in outcome.quarantined}, outcome


# -- numbers -----------------------------------------------------------------------------------

JSON_NUMBERS = st.one_of(
    st.integers(-(10**400), 10**400).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.from_regex(r"-?(0|[1-9][0-9]{0,40})(\.[0-9]{1,40})?([eE][+-]?[0-9]{1,5})?", fullmatch=True),
    st.sampled_from(["-0", "-0.0", "0e0", "1E+308", "1.8e308", "-1e309", "4.9e-324", "2.5e-324",
                     "1e-400", "0.00000000000000000000001", "9" * 600]),
)  # fmt: skip
NOT_NUMBERS = st.sampled_from(["NaN", "Infinity", "-Infinity", "+1", ".5", "5.", "01", "0x10",
                               "1e", "--1", '"12"', "true", "null", "[1]", "{}"])  # fmt: skip


@SETTINGS
@given(JSON_NUMBERS)
def test_every_number_form_is_stored_exactly_or_refused(number: str) -> None:
    decoded, reason = _decode(TOPIC, _telemetry("2026-11-23T03:59:00Z", number))
    if decoded is None:
        assert reason in ("schema", "malformed_json"), reason  # e.g. an integer past 64 bits
        return
    spec = QUANTITIES[Quantity.PM25]
    if decoded.readings:
        (reading,) = decoded.readings
        assert math.isfinite(reading.value)
        assert spec.physical_min <= reading.value <= spec.physical_max
        assert reading.value == float(number)
    else:
        (rejection,) = decoded.rejections
        assert rejection.reason in ("physically_impossible", "not_finite")
        assert not (spec.physical_min <= float(number) <= spec.physical_max)


@SETTINGS
@given(NOT_NUMBERS)
def test_what_json_does_not_call_a_number_is_refused(text: str) -> None:
    decoded, reason = _decode(TOPIC, _telemetry("2026-11-23T03:59:00Z", text))
    if decoded is None:
        assert reason in ("malformed_json", "schema"), reason
    else:  # null: that reading refused, the message taken
        assert decoded.readings == ()
        assert [r.reason for r in decoded.rejections] == ["not_finite"]


@SETTINGS
@given(JSON_NUMBERS, st.none() | JSON_NUMBERS)
def test_every_senml_time_is_absolute_exactly_or_refused(bt: str, t: str | None) -> None:
    record = f'{{"bn":"{SENML_PREFIX}aq-edge:","bt":{bt},"n":"pm25","u":"ug/m3","v":1'
    record += f',"t":{t}}}' if t is not None else "}"
    payload = f"[{record}]".encode()
    decoded, reason = _decode(TOPIC, payload)
    if decoded is None:
        assert reason in ("relative_time", "time_out_of_range", "schema", "senml"), reason
        return
    (reading,) = decoded.readings
    seconds = float(bt) + (float(t) if t is not None else 0.0)
    assert abs(seconds) >= 2**28  # never relative to the time of delivery
    assert reading.measured_at == datetime.fromtimestamp(seconds, UTC)
    again = decode_telemetry(TOPIC, payload, NOW + timedelta(days=30))  # another delivery
    assert again.readings[0].measured_at == reading.measured_at


@SETTINGS
@given(JSON_NUMBERS)
def test_a_sequence_number_of_any_form_is_taken_or_refused(seq: str) -> None:
    payload = _telemetry("2026-11-23T03:59:00Z")[:-1] + f',"seq":{seq}}}'.encode()
    assert _refused(lambda: decode_telemetry(TOPIC, payload, NOW)) in (None, "schema")


def test_the_issues_two_times() -> None:
    """The two messages that once stopped both services, stated plainly."""
    over = b'{"state":"offline","time":"9999-12-31T23:59:59-01:00"}'
    under = _telemetry("0001-01-01T00:00:00+01:00")
    assert _refused(lambda: decode_status(STATUS, over, NOW)) == "time_out_of_range"
    assert _refused(lambda: decode_telemetry(TOPIC, under, NOW)) == "time_out_of_range"
    assert _refused(lambda: decode_telemetry(TOPIC, _telemetry("9999-12-31T23:59:59-01:00"),
                                             NOW)) == "time_out_of_range"  # fmt: skip
    assert timezone(timedelta(minutes=1439))  # the widest offset the parser takes
