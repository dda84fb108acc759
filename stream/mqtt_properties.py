"""paho-mqtt's MQTT 5 properties, without rebuilding their tables for every packet.

paho builds a ``Properties`` object for every MQTT 5 packet it receives, and paho 2.2 also
for every PUBACK under MQTT 3.1.1, where the packet has no properties at all. Each one
rebuilds, in its constructor, two tables of the 27 property names and types, and walks all
27 names again in ``clear()``: 10 µs to build, 17 µs with an empty property block unpacked
(``timeit`` on the benchmark machine) — about 18 µs of ingest's ~100 µs of CPU per station
message, and 14 µs of each acknowledgement a publisher reads.

:class:`Properties` is paho's class with those tables built once, for the class; every
method but the constructor and ``clear()`` is paho's own, so packing, unpacking, checks and
errors are paho's (``tests/stream/test_mqtt_properties.py`` holds the two to the same
results). :func:`install` makes paho's packet code build it; :mod:`stream.mqtt_socket`
installs it for every client of ours. Upstream's own fix would make this module go.
"""

from __future__ import annotations

import importlib
from typing import Any, Final

import paho.mqtt.properties as paho_properties
from paho.mqtt.packettypes import PacketTypes

__all__ = ["Properties", "install", "installed"]

_TEMPLATE: Final = paho_properties.Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
_MODULES: Final = ("paho.mqtt.client", "paho.mqtt._packet")
"""paho's modules that build properties by the name they imported (``_packet``: 2.2+)."""


class Properties(paho_properties.Properties):
    """paho's MQTT 5 properties; the name and type tables are the class's, built once."""

    types = _TEMPLATE.types
    names = _TEMPLATE.names
    properties = _TEMPLATE.properties
    _compressed: Final = frozenset(name.replace(" ", "") for name in _TEMPLATE.names)

    def __init__(self, packetType: int) -> None:
        object.__setattr__(self, "packetType", packetType)

    def clear(self) -> None:
        """Remove every property set (paho's ``clear``, without walking all 27 names)."""
        for name in [key for key in vars(self) if key in self._compressed]:
            object.__delattr__(self, name)


def install() -> None:
    """Make paho's packet code build :class:`Properties` (idempotent)."""
    for name in _MODULES:
        try:
            module: Any = importlib.import_module(name)
        except ImportError:
            continue
        if getattr(module, "Properties", None) is paho_properties.Properties:
            module.Properties = Properties


def installed() -> bool:
    """Whether paho's client builds :class:`Properties` (for tests and diagnostics)."""
    module: Any = importlib.import_module("paho.mqtt.client")
    return getattr(module, "Properties", None) is Properties
