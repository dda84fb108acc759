"""Simulators: a realistic Hanoi sensor fleet publishing over MQTT, with labelled ground truth.

What is simulated: 76 stations at real Hanoi places (:func:`hanoi_fleet`) — air quality,
West Lake buoys, rain gauges, street flood-depth sensors and traffic detectors — driven by
shared city weather, rain, traffic demand and the scenario's scripted events, with
reproducible noise and injectable sensor/device faults.

Layers (pure core, thin async shell):

- :func:`generate` turns a :class:`Scenario`, a fleet, a period and a seed into a
  time-ordered stream of :class:`Outgoing` messages (telemetry, status, ground truth) with no
  network involved — the same bytes the broker would carry;
- :class:`Publisher` plays that stream over MQTT in simulated time (:class:`SimClock`), one
  client identity per station (QoS 1, last will, jittered reconnects, bounded outbox);
- :func:`run_load` is the benchmark load generator.

Run it with ``python -m simulators`` (or ``hanoi-ioc simulate``); see docs/simulators.md.
It stands on ``contract`` (the vocabulary) and ``stream.backoff`` (the one reconnect policy).
"""

from simulators.clock import Clock, SimClock
from simulators.errors import DeviceGaveUpError, ScenarioError, SimulatorError
from simulators.faults import FaultKind, FaultRates
from simulators.fleet import hanoi_fleet, select_stations
from simulators.generator import generate
from simulators.load import LoadPlan, LoadReport, load_fleet, run_load
from simulators.publisher import Publisher, PublishStats
from simulators.scenario import Scenario, list_scenarios, load_scenario
from simulators.settings import SimulatorSettings
from simulators.stream import Outgoing, OutgoingKind
from simulators.truth import TruthFile, read_truth_file

__all__ = [
    "Clock",
    "DeviceGaveUpError",
    "FaultKind",
    "FaultRates",
    "LoadPlan",
    "LoadReport",
    "Outgoing",
    "OutgoingKind",
    "PublishStats",
    "Publisher",
    "Scenario",
    "ScenarioError",
    "SimClock",
    "SimulatorError",
    "SimulatorSettings",
    "TruthFile",
    "generate",
    "hanoi_fleet",
    "list_scenarios",
    "load_fleet",
    "load_scenario",
    "read_truth_file",
    "run_load",
    "select_stations",
]
