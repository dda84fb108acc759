"""paho-mqtt's MQTT 5 properties: no tables rebuilt per packet, no quadratic unpacking.

paho builds a ``Properties`` object for every MQTT 5 packet it receives, and paho 2.2 also
for every PUBACK under MQTT 3.1.1, where the packet has no properties at all. Each one
rebuilds, in its constructor, two tables of the 27 property names and types, and walks all
27 names again in ``clear()``: 10 µs to build, 17 µs with an empty property block unpacked
(``timeit`` on the benchmark machine) — about 18 µs of ingest's ~100 µs of CPU per station
message, and 14 µs of each acknowledgement a publisher reads.

paho's ``unpack`` is also quadratic in the number of properties: it copies the rest of the
block after every property read, and a property allowed several times (a user property) is
kept by concatenating a new list each time. Any publisher may attach user properties and
the broker forwards them: a 112 kB block of 16,000 of them took paho 1.1 s to unpack, and a
1 MB packet (the broker's limit) would hold ingest for minutes — then again after every
reconnect, the message being redelivered.

:class:`Properties` is paho's class with those tables built once, for the class, and an
``unpack`` that walks the block once; each value is still read and checked by paho's own
code, and packing and every other method are paho's
(``tests/stream/test_mqtt_properties.py`` holds the two to the same results, on random
blocks too). :func:`install` makes paho's packet code build it; :mod:`stream.mqtt_socket`
installs it for every client of ours. Upstream's own fix would make this module go.
"""

from __future__ import annotations

import importlib
from typing import Any, Final

import paho.mqtt.properties as paho_properties
from paho.mqtt.exception import MQTTException
from paho.mqtt.packettypes import PacketTypes

VariableByteIntegers: Any = paho_properties.VariableByteIntegers

__all__ = ["Properties", "install", "installed"]

_TEMPLATE: Final = paho_properties.Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
_TYPES: Final = {name: index for index, name in enumerate(_TEMPLATE.types)}
_MULTIPLE: Final = frozenset({11, 38})
"""Properties allowed several times (subscription identifier, user property), as paho's."""
_USER_PROPERTY: Final = 38
_NAMES: Final = {ident: name.replace(" ", "") for name, ident in _TEMPLATE.names.items()}
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

    def unpack(self, buffer: bytes | bytearray) -> tuple[Properties, int]:
        """Unpack as paho does, in one pass: the same values, checks and errors.

        Each value is read by paho's ``readProperty`` from a slice holding just that value
        (instead of the whole rest of the block), and a property allowed several times is
        checked as paho checks it (user properties: their name and packet type, the first
        time; subscription identifiers: every value's range), then set once as a list.
        """
        self.clear()
        data = bytes(buffer)
        propslen, vbi_len = VariableByteIntegers.decode(data)
        pos, end = vbi_len, vbi_len + propslen
        several: dict[str, list[Any]] = {}
        while pos < end:
            identifier, id_len = VariableByteIntegers.decode(data[pos : pos + 4])
            pos += id_len
            attr_type = self.properties[identifier][0]
            value, value_len = self.readProperty(  # type: ignore[no-untyped-call]
                _value_slice(data, pos, attr_type), attr_type, end - pos
            )
            pos += value_len
            name = _NAMES[identifier]
            if identifier in _MULTIPLE:
                if name not in several:
                    several[name] = []
                    setattr(self, name, value)  # paho's checks, on the first value
                elif identifier != _USER_PROPERTY:  # a user property has no value check
                    setattr(Properties(self.packetType), name, value)  # paho's check, again
                several[name].append(value)
            elif name in vars(self):
                msg = f"Property '{name}' must not exist more than once"
                raise MQTTException(msg)
            else:
                setattr(self, name, value)
        for name, values in several.items():
            object.__setattr__(self, name, values)
        return self, end


def _value_slice(data: bytes, pos: int, attr_type: int) -> bytes:
    """The bytes from ``pos`` that a value of ``attr_type`` can occupy (what paho reads)."""
    if attr_type in (_TYPES["Binary Data"], _TYPES["UTF-8 Encoded String"]):
        return data[pos : pos + 2 + int.from_bytes(data[pos : pos + 2], "big")]
    if attr_type == _TYPES["UTF-8 String Pair"]:
        first = pos + 2 + int.from_bytes(data[pos : pos + 2], "big")
        return data[pos : first + 2 + int.from_bytes(data[first : first + 2], "big")]
    return data[pos : pos + 4]  # a byte, a 2- or 4-byte integer, a variable byte integer


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
