"""Traffic detectors: demand by time of day, a speed–flow relation, vehicle classes.

Demand is a fraction of capacity following Hanoi's rush hours (07–09, 17–19, lighter at
weekends, domain.md §7.3), scaled per corridor so that the busiest ones congest daily.
Speed follows a BPR-like curve (peak speeds of 10–20 km/h on inner arterials, 25–35 off
peak, [U]); occupancy follows density. Counts are Poisson draws per class with motorbikes
at ~86 % of vehicles on inner streets [U]; trucks are mostly banned from the inner city by
day, so they appear at night. Heavy rain cuts capacity. An incident lowers throughput at
and after the blocked point and builds a queue upstream (jam factor from the scenario).
"""

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from contract import Quantity
from simulators.signals.cycles import HOUR_S, local_hour, rush_profile
from simulators.signals.noise import AR1, zero_inflate

__all__ = ["CORRIDOR_PEAK_DEMAND", "TrafficDetectorModel", "corridor_activity"]

Array = npt.NDArray[np.float64]
Q = Quantity

# Weekday peak demand over capacity per corridor [U]; > 1 congests every rush hour.
CORRIDOR_PEAK_DEMAND = {
    "nguyen-trai": 1.15,
    "giai-phong": 1.1,
    "lang": 1.05,
    "truong-chinh": 1.1,
    "pham-van-dong": 0.95,
    "ring-3": 0.9,
    "cau-giay": 1.1,
    "kim-ma": 0.95,
    "tay-son": 1.05,
    "le-van-luong": 1.0,
}

# Vehicle shares of the count and PCU factors (motorbike 0.25, car 1, bus 2.5, truck 2) [U].
_MIX = {
    "inner": (0.86, 0.12, 0.01, 0.01),
    "arterial": (0.72, 0.23, 0.015, 0.035),
    "elevated": (0.0, 0.85, 0.03, 0.12),
}
_PCU = np.array([0.25, 1.0, 2.5, 2.0])
_PCU_LENGTH_M = 4.5  # effective detector length per PCU for occupancy [U]
_MISSED_INTERVALS = 0.005  # share of intervals a loop counts nothing [U]
_JAM_DENSITY_PCU_KM = 160.0


def corridor_activity(t_s: Array, corridor: str) -> Array:
    """Demand over capacity of a corridor at ``t_s`` (before incidents and rain)."""
    return np.asarray(rush_profile(t_s) * CORRIDOR_PEAK_DEMAND.get(corridor, 1.0))


@dataclass(slots=True)
class TrafficDetectorModel:
    """One traffic detector (one direction of a corridor).

    Args:
        corridor: corridor slug.
        free_flow_kmh: free-flow speed.
        capacity_pcu_h: capacity of the measured direction.
        mix: ``inner``, ``arterial`` or ``elevated``.
        interval_s: counting interval (counts are vehicles per interval).
        lanes: lanes of the direction (for occupancy).
    """

    corridor: str
    free_flow_kmh: float
    capacity_pcu_h: float
    mix: str
    interval_s: float
    lanes: int = 3
    _noise: AR1 | None = None

    def sample(
        self,
        rng: np.random.Generator,
        times_s: Array,
        city_rain_mm_h: Array,
        jam: Array,
        throughput: Array,
    ) -> dict[Quantity, Array]:
        """Counts, speed and occupancy at ``times_s``.

        Args:
            rng: the station's generator.
            times_s: sample times.
            city_rain_mm_h: rain rate at those times.
            jam: 0–1 queue from an incident downstream (1 = standing queue).
            throughput: 0–1 share of demand let through by an incident upstream.
        """
        if self._noise is None:
            self._noise = AR1(0.06, 0.5 * HOUR_S, self.interval_s)
        demand = corridor_activity(times_s, self.corridor) * np.exp(
            self._noise.sample(rng, len(times_s))
        )
        capacity = 1.0 - 0.25 * np.clip(city_rain_mm_h / 30.0, 0.0, 1.0)
        ratio = demand / capacity
        speed = self.free_flow_kmh / (1.0 + 1.6 * ratio**4)
        flow = np.minimum(ratio, 1.0) * capacity * (1.0 - 0.15 * np.clip(ratio - 1.0, 0.0, 1.0))
        flow = flow * throughput
        speed = np.where(throughput < 0.99, np.maximum(speed, self.free_flow_kmh * 0.85), speed)
        jam_speed = rng.uniform(4.0, 9.0, len(times_s))
        speed = speed * (1.0 - jam) + jam_speed * jam
        pcu_h = flow * self.capacity_pcu_h
        density = pcu_h / np.maximum(speed, 1.0) / self.lanes
        jam_density = _JAM_DENSITY_PCU_KM * rng.uniform(0.75, 0.95, len(times_s))
        density = density * (1.0 - jam) + jam_density * jam
        pcu_h = np.where(jam > 0, density * speed * self.lanes, pcu_h)
        occupancy = np.clip(density * _PCU_LENGTH_M / 10.0, 0.0, 98.0)
        return {
            **self._counts(rng, times_s, pcu_h),
            Q.SPEED: np.round(speed + rng.normal(0.0, 1.0, len(times_s)).clip(-2, 2), 1).clip(
                1.0, None
            ),
            Q.OCCUPANCY: np.round(occupancy, 1),
        }

    def _counts(
        self, rng: np.random.Generator, times_s: Array, pcu_h: Array
    ) -> dict[Quantity, Array]:
        shares = np.tile(np.array(_MIX[self.mix]), (len(times_s), 1))
        if self.mix == "inner":  # trucks banned by day in the inner city [U]
            hour = local_hour(times_s)
            night = (hour < 6.0) | (hour >= 21.0)
            shares[:, 3] = np.where(night, 0.05, 0.005)
            shares = shares / shares.sum(axis=1, keepdims=True)
        vehicles_h = pcu_h / (shares @ _PCU)
        expected = shares * (vehicles_h * self.interval_s / HOUR_S)[:, None]
        counts = rng.poisson(np.maximum(expected, 0.0)).astype(np.float64)
        # A loop now and then misses a whole interval: more zeros than Poisson [U].
        counts = zero_inflate(rng, counts, _MISSED_INTERVALS)
        out = {Q.FLOW_CAR: counts[:, 1], Q.FLOW_BUS: counts[:, 2], Q.FLOW_TRUCK: counts[:, 3]}
        if self.mix != "elevated":
            out = {Q.FLOW_MOTORBIKE: counts[:, 0], **out}
        return out
