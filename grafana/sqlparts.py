"""SQL fragments shared by the dashboards (PostgreSQL dialect, Grafana macros).

Range panels read the one-minute rollup ``readings_1m`` (a continuous aggregate on
TimescaleDB, a rollup table + live view on plain PostgreSQL; the same columns on both:
``bucket, sensor_id, avg, min, max, n``), grouped with ``$__timeGroupAlias`` at the panel
interval, which is never below one minute. Time-series queries return ``time`` first and are
ordered by it (Grafana's long-to-wide conversion needs ascending time); the station column is a
string, so Grafana turns it into a series label.
"""

from __future__ import annotations

from typing import Final, Literal

Agg = Literal["mean", "max", "min", "sum"]

# Quantity names of the wire contract (contract.Quantity); the tests check them.
PM25: Final = "pm25"
PM10: Final = "pm10"
NO2: Final = "no2"
WATER_TEMPERATURE: Final = "water_temperature"
DISSOLVED_OXYGEN: Final = "dissolved_oxygen"
PH: Final = "ph"
CHLOROPHYLL_A: Final = "chlorophyll_a"
RAINFALL: Final = "rainfall"
WATER_DEPTH: Final = "water_depth"
SPEED: Final = "speed"
OCCUPANCY: Final = "occupancy"
FLOWS: Final = ("flow_motorbike", "flow_car", "flow_bus", "flow_truck")

# The hourly VN_AQI rows that processing writes to ``indices`` (the ops API uses the same name).
AQI_INDEX: Final = "VN_AQI"

_AGG_SQL: Final[dict[Agg, str]] = {
    # weighted by sample count, so a bucket with more samples counts more
    "mean": "sum(r.avg * r.n) / nullif(sum(r.n), 0)",
    "max": "max(r.max)",
    "min": "min(r.min)",
    # quantities reported as increments per sample (rain in mm, vehicles counted)
    "sum": "sum(r.avg * r.n)",
}


def station_var_sql(where: str) -> str:
    """Values for a station variable: ``__value`` = station id, ``__text`` = name · id."""
    return f"""
SELECT st.name || ' · ' || st.station_id AS __text, st.station_id AS __value
FROM stations st
WHERE {where}
ORDER BY st.name, st.station_id"""


def district_var_sql(domain: str) -> str:
    """The districts that have stations of one domain."""
    return f"SELECT DISTINCT district FROM stations WHERE domain = '{domain}' ORDER BY 1"


def has_quantity(quantity: str) -> str:
    """SQL condition on ``st`` (stations): the station measures ``quantity``."""
    return (
        "EXISTS (SELECT 1 FROM sensors s2 WHERE s2.station_id = st.station_id"
        f" AND s2.quantity = '{quantity}')"
    )


def quantity_series(
    quantity: str, label: str, *, station_var: str = "station", agg: Agg = "mean"
) -> str:
    """One series per station of one quantity, from the one-minute rollup."""
    return f"""
SELECT
  $__timeGroupAlias(r.bucket, $__interval),
  s.station_id AS station,
  {_AGG_SQL[agg]} AS "{label}"
FROM readings_1m r
JOIN sensors s USING (sensor_id)
WHERE s.quantity = '{quantity}'
  AND s.station_id IN (${station_var})
  AND $__timeFilter(r.bucket)
GROUP BY 1, 2
ORDER BY 1, 2"""


def hourly_series(quantity: str, label: str, *, station_var: str = "station") -> str:
    """Hourly means per station from ``readings_1h``, stamped at the hour's end (VN_AQI usage)."""
    return f"""
SELECT
  r.bucket + interval '1 hour' AS "time",
  s.station_id AS station,
  r.avg AS "{label}"
FROM readings_1h r
JOIN sensors s USING (sensor_id)
WHERE s.quantity = '{quantity}'
  AND s.station_id IN (${station_var})
  AND $__timeFilter(r.bucket)
ORDER BY 1, 2"""


def rolling_24h_series(quantity: str, label: str, *, station_var: str = "station") -> str:
    """24-hour rolling mean of hourly means per station (the QCVN 05:2023 24 h averaging).

    Hours are stamped at their end; each point averages the hourly means of the 24 hours
    ending there that have data, so the query reads one day before the range.
    """
    return f"""
WITH hourly AS (
  SELECT r.bucket + interval '1 hour' AS t, s.station_id, r.avg AS v
  FROM readings_1h r
  JOIN sensors s USING (sensor_id)
  WHERE s.quantity = '{quantity}'
    AND s.station_id IN (${station_var})
    AND r.bucket >= $__timeFrom()::timestamptz - interval '24 hours'
    AND r.bucket <= $__timeTo()::timestamptz
), rolling AS (
  SELECT t, station_id,
         avg(v) OVER (PARTITION BY station_id ORDER BY t
                      RANGE BETWEEN interval '23 hours' PRECEDING AND CURRENT ROW) AS v24
  FROM hourly
)
SELECT t AS "time", station_id AS station, v24 AS "{label}"
FROM rolling
WHERE $__timeFilter(t)
ORDER BY 1, 2"""


def latest_by_station(quantity: str, label: str, *, station_var: str = "station") -> str:
    """The latest value per station of one quantity, as (station, value) rows."""
    return f"""
SELECT l.station_id AS "Trạm / Station", l.value AS "{label}"
FROM latest_readings l
WHERE l.quantity = '{quantity}'
  AND l.station_id IN (${station_var})
ORDER BY 2 DESC"""
