"""Official and project indices, computed from readings as derived series (pure functions).

- :mod:`~processing.indices.vn_aqi`: VN_AQI hourly (NowCast) and daily, Decision 1459/QĐ-TCMT.
- :mod:`~processing.indices.qcvn05`: QCVN 05:2023/BTNMT ambient-air limits and exceedances.
- :mod:`~processing.indices.water`: DO saturation and an indicative, partial WQI.
- :mod:`~processing.indices.flood`: street flood-depth levels (project proposal, configurable).
- :mod:`~processing.indices.congestion`: traffic congestion from the speed ratio (configurable).
- :mod:`~processing.indices.hourly`: hour-ending aggregation and live per-station AQI state.
"""
