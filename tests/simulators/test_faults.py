"""Faults: configured rates are what comes out, malformed payloads are really malformed."""

from datetime import UTC, datetime

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contract import PayloadError, Quantity, Topic, decode_telemetry
from simulators.faults import MALFORMED_FLAVOURS, FaultKind, FaultRates, StationFaults
from simulators.malformed import malformed_payload

Q = Quantity
STAMP = datetime(2025, 11, 12, 3, tzinfo=UTC)
READINGS = [(Q.PM25, 41.5), (Q.PM10, 60.2), (Q.NO2, 30.0), (Q.AIR_TEMPERATURE, 24.1)]


def _run(
    rates: FaultRates, days: float = 20, interval: float = 60.0, seed: int = 1
) -> tuple[int, int, dict[str, int]]:
    faults = StationFaults(
        "aq-kim-lien", [Q.PM25, Q.PM10], interval, rates, np.random.default_rng(seed)
    )
    chunk = 3600.0
    emitted = labels = samples = 0
    kinds: dict[str, int] = {}
    t0 = STAMP.timestamp()
    for hour in range(int(days * 24)):
        times = t0 + hour * chunk + np.arange(0, chunk, interval)
        outcome = faults.apply(
            times, {Q.PM25: np.full(len(times), 40.0), Q.PM10: np.full(len(times), 60.0)}
        )
        samples += len(times)
        emitted += len(outcome.emissions)
        labels += len(outcome.labels)
        for label in outcome.labels:
            kinds[label.kind] = kinds.get(label.kind, 0) + 1
    return samples, emitted, kinds


def _within(observed: float, expected: float, n: float) -> bool:
    sigma = max(np.sqrt(expected * (1 - expected / n)), 1.0)
    return bool(abs(observed - expected) <= 4 * sigma)


@pytest.mark.parametrize("kind", ["spike", "duplicate", "out_of_order", "malformed"])
def test_per_message_fault_rates(kind: str) -> None:
    rate = 0.01
    field = f"{kind}_rate"
    samples, _, kinds = _run(FaultRates(**{field: rate}), days=7)
    per = 2 if kind == "spike" else 1  # spikes hit each of the two quantities
    assert _within(kinds.get(kind, 0), rate * samples * per, samples * per)


def test_dropout_rate_is_the_share_of_lost_messages() -> None:
    samples, emitted, kinds = _run(FaultRates(dropout_rate=0.05), days=7)
    lost = samples - emitted
    assert _within(lost, 0.05 * samples, samples * 3)  # bursts of ~3 widen the spread
    assert 0 < kinds["dropout"] < lost  # gaps are bursts, one label each


@pytest.mark.parametrize(
    "kind", [FaultKind.STUCK, FaultKind.DRIFT, FaultKind.OFFLINE, FaultKind.CLOCK_SKEW]
)
def test_episode_rates_per_station_day(kind: FaultKind) -> None:
    days = 200
    _, _, kinds = _run(FaultRates(**{f"{kind.value}_per_day": 1.0}), days=days, interval=300.0)
    observed = kinds.get(kind.value, 0)
    # arrivals restart after each episode ends: expect days / (1 day + mean length)
    assert 0.5 * days < observed < 1.1 * days


def test_no_faults_means_every_sample_leaves_once_unchanged() -> None:
    samples, emitted, kinds = _run(FaultRates(), days=2)
    assert samples == emitted
    assert kinds == {}


def test_rates_are_validated() -> None:
    with pytest.raises(ValueError, match="finite"):
        FaultRates(spike_rate=-0.1)
    with pytest.raises(ValueError, match="shares"):
        FaultRates(dropout_rate=1.0)
    assert FaultRates(spike_rate=0.1).with_overrides(
        spike_rate=None, dropout_rate=0.2
    ) == FaultRates(spike_rate=0.1, dropout_rate=0.2)


@settings(max_examples=60, deadline=None)
@given(flavour=st.sampled_from(MALFORMED_FLAVOURS), seed=st.integers(0, 10_000))
def test_every_malformed_flavour_breaks_the_contract(flavour: str, seed: int) -> None:
    payload = malformed_payload(
        flavour, "aq-kim-lien", STAMP, READINGS, np.random.default_rng(seed)
    )
    topic = Topic.parse("hanoi/v1/air/aq-kim-lien/telemetry")
    try:
        decoded = decode_telemetry(topic, payload, STAMP)
    except PayloadError:
        return
    assert decoded.rejections, flavour


def test_malformed_flavours_are_varied() -> None:
    rng = np.random.default_rng(0)
    payloads = {
        malformed_payload(f, "aq-kim-lien", STAMP, READINGS, rng) for f in MALFORMED_FLAVOURS
    }
    assert len(payloads) == len(MALFORMED_FLAVOURS)
    with pytest.raises(ValueError, match="unknown"):
        malformed_payload("nope", "aq-kim-lien", STAMP, READINGS, rng)


def test_every_injected_spike_is_labelled_where_it_was_injected() -> None:
    # The spike lane's catches count as true only if each glitch is in the ground truth, at
    # its sample and quantity (the instruments' ordinary heavy-tailed noise is not a glitch).
    faults = StationFaults(
        "aq-kim-lien", [Q.PM25, Q.PM10], 60.0, FaultRates(spike_rate=0.01),
        np.random.default_rng(4),
    )  # fmt: skip
    injected: set[tuple[float, Quantity]] = set()
    labelled: set[tuple[float, Quantity]] = set()
    for hour in range(48):
        times = STAMP.timestamp() + 3600.0 * hour + np.arange(0.0, 3600.0, 60.0)
        clean = {Q.PM25: np.full(len(times), 40.0), Q.PM10: np.full(len(times), 60.0)}
        outcome = faults.apply(times, {q: v.copy() for q, v in clean.items()})
        for q, values in outcome.values.items():
            injected |= {(float(times[i]), q) for i in np.flatnonzero(values != clean[q])}
        for label in outcome.labels:
            assert label.kind == "spike"
            assert label.category == "fault"
            assert label.start_s == label.end_s
            labelled |= {(label.start_s, q) for q in label.quantities}
    assert injected
    assert injected == labelled
