"""``hanoi-ioc bench``: the whole pipeline measured on private services, with its bases.

One run starts its own PostgreSQL and Mosquitto (loopback, in a temporary directory), the
ingest, processing and API services as processes, and measures, each step bounded in time:

- the bases: the broker's raw publish → subscribe rate and PostgreSQL's raw COPY rate
  (:mod:`hanoi_ioc.bench.bases`);
- the pipeline at offered loads (:mod:`hanoi_ioc.bench.driver`): readings/s stored and
  decided, and publish → commit / decision / alert-on-WebSocket latency
  (:mod:`hanoi_ioc.bench.probes`);
- peak memory per service (:mod:`hanoi_ioc.bench.procstat`);
- the engine's cost per batch and memory by registry size (:mod:`hanoi_ioc.bench.engine_cost`);
- WebSocket fan-out of one alert event (:mod:`hanoi_ioc.bench.fanout`).

:mod:`hanoi_ioc.bench.runner` orchestrates; :mod:`hanoi_ioc.bench.report` prints the table,
writes the JSON and draws the plots.
"""
