"""The contract every registered detector passes (river's ``check_estimator`` idea)."""

from __future__ import annotations

import pickle

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from processing.detectors import (
    DETECTORS,
    STATE_VERSION,
    Detector,
    DetectorSnapshot,
    SpatialDetector,
    Thresholder,
    VectorDetector,
    default_thresholder,
    make_detector,
    restore,
)
from processing.errors import DetectorConfigError, SnapshotError

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]

NAMES = sorted(DETECTORS)
N_SENSORS = 6
STEP_S = 300.0
T0 = 1_790_000_000.0  # 2026-09-21, an arbitrary fixed start


def build(name: str) -> VectorDetector:
    detector = make_detector(name)
    if isinstance(detector, SpatialDetector):
        slots = np.arange(N_SENSORS)
        detector.set_positions(slots, 21.03 + 0.004 * slots, 105.85 + 0.003 * (slots % 3))
    return detector


def normal_stream(steps: int, seed: int = 0) -> tuple[IntArray, FloatArray, FloatArray]:
    """All sensors every STEP_S: a shared daily cycle (mg/L-like range) plus sensor noise."""
    rng = np.random.default_rng(seed)
    times = T0 + STEP_S * np.repeat(np.arange(steps), N_SENSORS)
    slots = np.tile(np.arange(N_SENSORS), steps).astype(np.intp)
    cycle = 7.0 + 1.5 * np.sin(2 * np.pi * times / 86400.0)
    values = np.asarray(cycle + 0.1 * slots + rng.normal(0.0, 0.15, times.size), np.float64)
    return slots, values, np.asarray(times, np.float64)


def warmed(name: str, steps: int = 300) -> tuple[VectorDetector, float]:
    detector = build(name)
    slots, values, times = normal_stream(steps)
    detector.process_many(slots, values, times)
    return detector, float(times[-1])


def score_sequence(detector: VectorDetector, values: list[float], start_s: float) -> list[float]:
    """Feed sensor 0 a sequence (other sensors normal at the same times); scores of sensor 0."""
    scores = []
    for k, value in enumerate(values, start=1):
        t = start_s + STEP_S * k
        batch = np.full(N_SENSORS, 7.0 + 1.5 * np.sin(2 * np.pi * t / 86400.0)) + 0.1 * np.arange(
            N_SENSORS
        )
        batch[0] = value
        s, _ = detector.process_many(np.arange(N_SENSORS), batch, np.full(N_SENSORS, t))
        scores.append(float(s[0]))
    return scores


def _level(t: float) -> float:
    return 7.0 + 1.5 * float(np.sin(2 * np.pi * t / 86400.0))


def canonical_anomaly(name: str, start_s: float) -> tuple[list[float], list[float]]:
    """(normal continuation, anomalous continuation) of sensor 0 for each detector's target."""
    times = [start_s + STEP_S * k for k in range(1, 11)]
    normal = [_level(t) + 0.05 * (-1) ** k for k, t in enumerate(times)]
    if name == "flatline":
        return normal, [normal[0]] * 10
    if name == "spatial":  # a sensor drifting away from its neighbours, not one odd reading
        return normal, [n + 0.5 * k for k, n in enumerate(normal)]
    if name == "cusum":  # a persistent shift, not one odd reading (its clipped steps add up)
        return normal, [n + 0.6 for n in normal]
    if name == "rate_of_rise":
        return normal, [n + 3.0 * k for k, n in enumerate(normal)]
    if name == "oxygen_risk":
        return normal, [max(0.2, n - 0.8 * k) for k, n in enumerate(normal)]
    spiked = list(normal)
    spiked[-1] = normal[-1] + 40.0
    return normal, spiked


@pytest.mark.parametrize("name", NAMES)
def test_metadata_is_documented(name: str) -> None:
    cls = DETECTORS[name]
    assert cls.name == name
    assert 0.0 < cls.default_threshold < 1.0
    assert cls.catches
    assert cls.__doc__ is not None
    assert ">>>" in cls.__doc__
    assert default_thresholder(name) == Thresholder(cls.default_threshold)
    assert isinstance(build(name), Detector)


def test_required_detectors_are_registered() -> None:
    required = {"seasonal_mad", "ewma", "cusum", "rate_of_rise", "flatline", "dropout"}
    assert required | {"spike", "spatial", "oxygen_risk"} <= set(DETECTORS)


def test_unknown_detector_and_bad_parameters_are_refused() -> None:
    with pytest.raises(DetectorConfigError, match="unknown detector"):
        make_detector("nope")
    with pytest.raises(DetectorConfigError, match="invalid parameters"):
        make_detector("ewma", no_such_parameter=1)
    with pytest.raises(DetectorConfigError):
        make_detector("ewma", alpha=0.0)
    with pytest.raises(DetectorConfigError):
        Thresholder(1.5)


@pytest.mark.parametrize("name", NAMES)
def test_deterministic(name: str) -> None:
    slots, values, times = normal_stream(120, seed=3)
    first, _ = build(name).process_many(slots, values, times)
    second, _ = build(name).process_many(slots, values, times)
    np.testing.assert_array_equal(first, second)
    seeded = make_detector(name, seed=7)  # accepted by every detector; none is stochastic
    assert seeded.params == make_detector(name).params


@pytest.mark.parametrize("name", NAMES)
def test_does_not_mutate_inputs(name: str) -> None:
    slots, values, times = normal_stream(60)
    copies = slots.copy(), values.copy(), times.copy()
    for frozen in (slots, values, times):
        frozen.setflags(write=False)
    detector = build(name)
    detector.process_many(slots, values, times)
    detector.learn_many(slots, values, times, np.ones(slots.size, dtype=bool))
    detector.score_many(slots, values, times)
    for original, copy in zip((slots, values, times), copies, strict=True):
        np.testing.assert_array_equal(original, copy)


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=25, deadline=None)
@given(
    data=st.lists(
        st.one_of(
            st.floats(allow_nan=True, allow_infinity=True),
            st.floats(min_value=-1e6, max_value=1e6),
            st.sampled_from([0.0, 1.0, -1.0, 1e-300, 1e300]),
        ),
        min_size=1,
        max_size=80,
    ),
    gaps=st.lists(st.floats(min_value=0.0, max_value=1e5), min_size=1, max_size=80),
)
def test_scores_are_finite_and_in_unit_interval(
    name: str, data: list[float], gaps: list[float]
) -> None:
    n = min(len(data), len(gaps))
    slots = (np.arange(n) % 3).astype(np.intp)
    times = T0 + np.cumsum(np.asarray(gaps[:n]))
    scores, flags = build(name).process_many(slots, np.asarray(data[:n]), times)
    assert np.all(np.isfinite(scores))
    assert np.all((scores >= 0.0) & (scores <= 1.0))
    assert flags.dtype == np.bool_


@pytest.mark.parametrize("name", NAMES)
def test_constant_signal_does_not_divide_by_zero(name: str) -> None:
    detector = build(name)
    steps = 200
    times = T0 + STEP_S * np.repeat(np.arange(steps), N_SENSORS)
    slots = np.tile(np.arange(N_SENSORS), steps).astype(np.intp)
    for constant in (0.0, 5.0):
        scores, _ = detector.process_many(slots, np.full(slots.size, constant), times)
        assert np.all(np.isfinite(scores))
        probe = detector.score_many(
            np.arange(3), np.array([constant, constant + 1e-9, constant + 10]), np.full(3, 1e10)
        )
        assert np.all(np.isfinite(probe))


@pytest.mark.parametrize("name", NAMES)
def test_canonical_anomaly_scores_above_the_baseline(name: str) -> None:
    # The drift lane judges with a calibration hours old: it needs days of history to back
    # a rarity of one in 100 000 within the ten readings of the canonical anomaly; the
    # CUSUM's sums on a young hour-of-day baseline need as long to learn their tail.
    detector, end = warmed(name, 900 if name in ("spatial", "cusum") else 300)
    normal, anomalous = canonical_anomaly(name, end)
    twin = restore(detector.snapshot())
    normal_scores = score_sequence(twin, normal, end)
    if name == "dropout":
        gap_end = end + STEP_S * 12
        anomalous_scores = [detector.score_one(7.0, gap_end)]
    else:
        anomalous_scores = score_sequence(detector, anomalous, end)
    assert max(anomalous_scores) > max(normal_scores)
    assert max(anomalous_scores) >= detector.default_threshold > max(normal_scores)


@pytest.mark.parametrize("name", NAMES)
def test_snapshot_restore_and_pickle_continue_identically(name: str) -> None:
    slots, values, times = normal_stream(240, seed=5)
    half = slots.size // 2
    original = build(name)
    original.process_many(slots[:half], values[:half], times[:half])
    restored = restore(original.snapshot())
    unpickled = pickle.loads(pickle.dumps(original))  # noqa: S301 - our own object
    expected, expected_flags = original.process_many(slots[half:], values[half:], times[half:])
    for twin in (restored, unpickled):
        got, got_flags = twin.process_many(slots[half:], values[half:], times[half:])
        np.testing.assert_array_equal(got, expected)
        np.testing.assert_array_equal(got_flags, expected_flags)


@pytest.mark.parametrize("name", NAMES)
def test_snapshot_is_versioned_and_checked(name: str) -> None:
    detector = build(name)
    detector.process_many(*normal_stream(10))
    snap = detector.snapshot()
    assert snap.version == STATE_VERSION
    assert snap.detector == name
    with pytest.raises(SnapshotError):
        restore(DetectorSnapshot(STATE_VERSION + 1, snap.detector, snap.params, snap.arrays))
    other = "ewma" if name != "ewma" else "cusum"
    with pytest.raises(SnapshotError):
        make_detector(other).load_snapshot(snap)
    with pytest.raises(SnapshotError):
        restore(DetectorSnapshot(STATE_VERSION, "nope", snap.params, snap.arrays))


def interleaved(seed: int) -> tuple[IntArray, FloatArray, FloatArray]:
    """Readings of a few sensors in random order (each sensor's own readings time-ordered)."""
    slots, values, times = normal_stream(80, seed)
    rng = np.random.default_rng(seed)
    keys = rng.random(slots.size)
    for slot in range(N_SENSORS):
        members = np.flatnonzero(slots == slot)
        keys[members] = np.sort(keys[members])
    order = np.argsort(keys, kind="stable")
    values = values.copy()
    values[rng.random(values.size) < 0.03] += 25.0  # some anomalies, so protection matters
    return slots[order], values[order], times[order]


@pytest.mark.parametrize("name", [n for n in NAMES if not DETECTORS[n].cross_sensor])
def test_vectorised_equals_one_at_a_time(name: str) -> None:
    slots, values, times = interleaved(seed=2)
    batch = build(name)
    thresholder = batch.thresholder()
    chunks = np.array_split(np.arange(slots.size), np.arange(11, slots.size, 11))
    batch_scores = np.concatenate(
        [batch.process_many(slots[c], values[c], times[c], thresholder)[0] for c in chunks]
    )
    single = build(name)
    loop_scores = []
    for slot, value, when in zip(slots.tolist(), values.tolist(), times.tolist(), strict=True):
        score = single.score_one(value, when, slot=slot)
        single.learn_one(value, when, slot=slot, protect=thresholder.classify(score))
        loop_scores.append(score)
    np.testing.assert_array_equal(batch_scores, np.asarray(loop_scores))


@pytest.mark.parametrize("name", [n for n in NAMES if DETECTORS[n].cross_sensor])
def test_cross_sensor_batch_equals_one_timestamp_at_a_time(name: str) -> None:
    slots, values, times = normal_stream(300, seed=2)  # one reading per sensor per time
    values = values.copy()
    values[::37] += 25.0
    values[(slots == 1) & (times > times[-1] - 4 * 3600.0)] += 25.0  # a sensor drifts away
    whole, whole_flags = build(name).process_many(slots, values, times)
    stepwise = build(name)
    parts = [
        stepwise.process_many(slots[i : i + N_SENSORS], values[i : i + N_SENSORS],
                              times[i : i + N_SENSORS])[0]
        for i in range(0, slots.size, N_SENSORS)
    ]  # fmt: skip
    np.testing.assert_array_equal(whole, np.concatenate(parts))
    assert whole_flags.any()


@pytest.mark.parametrize("name", NAMES)
def test_empty_batch_and_missing_values(name: str) -> None:
    detector = build(name)
    empty = np.array([], dtype=np.intp)
    scores, flags = detector.process_many(empty, np.array([]), np.array([]))
    assert scores.shape == flags.shape == (0,)
    detector.process_many(*normal_stream(50))
    before = detector.snapshot()
    scores, flags = detector.process_many(
        np.array([0, 1]), np.array([np.nan, 1.0]), np.array([T0 + 1e6, np.nan])
    )
    assert scores.tolist() == [0.0, 0.0]
    assert not flags.any()
    after = detector.snapshot()
    for key, array in before.arrays.items():
        np.testing.assert_array_equal(array, after.arrays[key])


@pytest.mark.parametrize("name", ["ewma", "seasonal_mad"])  # spike: every reading trains
def test_protected_anomaly_does_not_train_the_baseline(name: str) -> None:
    detector, end = warmed(name)
    untouched = restore(detector.snapshot())
    detector.learn_one(500.0, end + STEP_S, protect=True)
    probe = (_level(end + 2 * STEP_S), end + 2 * STEP_S)
    assert detector.score_one(*probe) == untouched.score_one(*probe)
    unprotected = restore(untouched.snapshot())
    unprotected.learn_one(500.0, end + STEP_S)
    assert unprotected.score_one(*probe) != untouched.score_one(*probe)


def test_relearn_after_accepts_a_new_regime() -> None:
    detector, end = warmed("ewma")
    flags = [
        detector.process_many(np.array([0]), np.array([30.0]), np.array([end + STEP_S * k]))[1][0]
        for k in range(1, 200)
    ]
    assert flags[0]
    assert not flags[-1]  # after relearn_after flags the shifted level became the baseline
    never = make_detector("ewma", relearn_after=0)
    never.process_many(*normal_stream(300))
    stuck = never.process_many(
        np.zeros(150, np.intp), np.full(150, 30.0), end + STEP_S * np.arange(150)
    )
    assert stuck[1].all()


@pytest.mark.parametrize("name", NAMES)
def test_capacity_grows_and_reset_forgets(name: str) -> None:
    detector = build(name)
    detector.process_many(*normal_stream(40))
    detector.score_many(np.array([5000]), np.array([1.0]), np.array([T0]))
    assert detector.capacity >= 5001
    detector.reset(np.arange(N_SENSORS))
    fresh = build(name)
    fresh.ensure_capacity(detector.capacity)
    for key, array in detector.snapshot().arrays.items():
        if name == "spatial" and key in {"lat", "lon", "group"}:
            continue
        np.testing.assert_array_equal(array, fresh.snapshot().arrays[key])


def test_negative_slots_and_ragged_inputs_are_refused() -> None:
    detector = make_detector("ewma")
    with pytest.raises(DetectorConfigError):
        detector.score_many(np.array([-1]), np.array([1.0]), np.array([0.0]))
    with pytest.raises(DetectorConfigError):
        detector.score_many(np.array([0, 1]), np.array([1.0]), np.array([0.0]))
    with pytest.raises(DetectorConfigError, match="time_s"):
        detector.score_one(1.0)


@pytest.mark.parametrize("name", NAMES)
def test_snapshot_params_are_plain_values(name: str) -> None:
    for value in build(name).snapshot().params.values():
        assert value is None or isinstance(value, bool | int | float | str)
