"""Our MQTT 5 properties class gives paho's results: packing, unpacking, checks, errors."""

# paho's properties API has no type annotations
# mypy: disable-error-code="no-untyped-call"

import struct

import paho.mqtt.client as mqtt
import paho.mqtt.properties as paho_properties
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.exception import MQTTException
from paho.mqtt.packettypes import PacketTypes

from stream.mqtt_properties import Properties, VariableByteIntegers, installed
from stream.mqtt_socket import BufferedClient

# A value of each property's type (and a second one for those allowed several times).
_VALUES: dict[str, object] = {
    "PayloadFormatIndicator": 1,
    "MessageExpiryInterval": 3600,
    "ContentType": "application/json",
    "ResponseTopic": "hanoi/v1/reply",
    "CorrelationData": b"\x00\x01\xfe",
    "SubscriptionIdentifier": 268435455,
    "SessionExpiryInterval": 604800,
    "AssignedClientIdentifier": "ingest-1",
    "ServerKeepAlive": 30,
    "AuthenticationMethod": "SCRAM-SHA-1",
    "AuthenticationData": b"nonce",
    "RequestProblemInformation": 0,
    "WillDelayInterval": 5,
    "RequestResponseInformation": 1,
    "ResponseInformation": "hanoi/v1/responses",
    "ServerReference": "broker-2:1883",
    "ReasonString": "Đã nhận / received",
    "ReceiveMaximum": 4000,
    "TopicAliasMaximum": 10,
    "TopicAlias": 7,
    "MaximumQoS": 1,
    "RetainAvailable": 1,
    "UserProperty": ("client", "trạm-01"),
    "MaximumPacketSize": 1 << 20,
    "WildcardSubscriptionAvailable": 1,
    "SubscriptionIdentifierAvailable": 0,
    "SharedSubscriptionAvailable": 1,
}
_PACKETS = [
    PacketTypes.CONNECT, PacketTypes.CONNACK, PacketTypes.PUBLISH, PacketTypes.PUBACK,
    PacketTypes.SUBSCRIBE, PacketTypes.SUBACK, PacketTypes.DISCONNECT, PacketTypes.AUTH,
    PacketTypes.WILLMESSAGE,
]  # fmt: skip


def _both(packet: int) -> tuple[paho_properties.Properties, Properties]:
    return paho_properties.Properties(packet), Properties(packet)


def _outcome(props: paho_properties.Properties, name: str, value: object) -> str:
    try:
        setattr(props, name, value)
    except Exception as exc:
        return f"refused: {type(exc).__name__}: {exc}"
    return "set"


@pytest.mark.parametrize("packet", _PACKETS, ids=str)
def test_every_property_is_set_packed_and_unpacked_as_paho_does(packet: int) -> None:
    theirs, ours = _both(packet)
    for name, value in _VALUES.items():
        # the same verdict (set, or refused for this packet type with the same message)
        assert _outcome(ours, name, value) == _outcome(theirs, name, value)
    if packet in (PacketTypes.PUBLISH, PacketTypes.CONNECT):  # several user properties
        for props in (theirs, ours):
            props.UserProperty = ("gateway", "ld-gw-001")
    assert ours.json() == theirs.json()
    assert str(ours) == str(theirs)
    packed = theirs.pack()
    assert ours.pack() == packed
    their_copy, our_copy = _both(packet)
    assert our_copy.unpack(packed) == (our_copy, len(packed))
    their_copy.unpack(packed)
    assert our_copy.json() == their_copy.json() == theirs.json()
    # unpacking again starts from nothing (clear), as paho's does
    our_copy.unpack(b"\x00")
    their_copy.unpack(b"\x00")
    assert our_copy.json() == their_copy.json() == {}
    assert our_copy.packetType == packet


def test_bad_names_values_and_duplicates_are_refused_as_paho_refuses() -> None:
    for attempt in (("NoSuchProperty", 1), ("ReceiveMaximum", 0), ("TopicAlias", 70000),
                    ("RequestProblemInformation", 2), ("SessionExpiryInterval", 1)):  # fmt: skip
        theirs, ours = _both(PacketTypes.PUBLISH)
        assert _outcome(ours, *attempt) == _outcome(theirs, *attempt)
        assert _outcome(ours, *attempt).startswith("refused")
    twice = b"\x0a\x02\x00\x00\x00\x05\x02\x00\x00\x00\x06"  # message expiry, twice
    theirs, ours = _both(PacketTypes.PUBLISH)
    with pytest.raises(MQTTException):
        theirs.unpack(twice)
    with pytest.raises(MQTTException):
        ours.unpack(twice)


def test_instances_share_no_state() -> None:
    first, second = Properties(PacketTypes.PUBLISH), Properties(PacketTypes.PUBLISH)
    first.UserProperty = ("a", "1")
    first.MessageExpiryInterval = 60
    assert second.json() == {}
    first.clear()
    assert first.json() == {}
    assert first.pack() == b"\x00"
    assert isinstance(first, paho_properties.Properties)


def test_our_clients_make_paho_build_them() -> None:
    BufferedClient(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    assert installed()
    from paho.mqtt import _packet  # paho 2.2's decoders

    topic = b"hanoi/v1/air/aq-01/telemetry"
    body = len(topic).to_bytes(2, "big") + topic + b"\x00\x07" + b"\x00" + b"{}"
    decoded = _packet.decode_publish(0x32, body, mqtt.MQTTv5)
    assert type(decoded.properties) is Properties
    assert decoded.payload == b"{}"
    assert decoded.mid == 7


def _verdict(props: paho_properties.Properties, block: bytes) -> object:
    try:
        _, used = props.unpack(block)
    except Exception as exc:  # malformed: paho turns any of these into a protocol error
        return ("refused", isinstance(exc, MQTTException | ValueError |
                                      IndexError | KeyError | struct.error))  # fmt: skip
    return ("read", used, props.json())


_PROPERTY = st.tuples(
    st.sampled_from([1, 2, 3, 8, 9, 11, 17, 23, 35, 38, 38, 38, 99]),  # 99: no such property
    st.binary(max_size=12),
)


@settings(max_examples=400, deadline=None)
@given(
    packet=st.sampled_from([PacketTypes.PUBLISH, PacketTypes.CONNECT, PacketTypes.PUBACK]),
    parts=st.lists(_PROPERTY, max_size=12),
    tail=st.binary(max_size=8),
    slack=st.integers(-3, 3),
)
def test_any_block_unpacks_as_paho_unpacks_it(
    packet: int, parts: list[tuple[int, bytes]], tail: bytes, slack: int
) -> None:
    # identifiers followed by arbitrary bytes, under a length that may be off: well-formed
    # blocks, truncated values, bad UTF-8, duplicates, out-of-range values, unknown ids
    body = b"".join(VariableByteIntegers.encode(i) + value for i, value in parts)
    block = VariableByteIntegers.encode(max(0, len(body) + slack)) + body + tail
    assert _verdict(Properties(packet), block) == _verdict(
        paho_properties.Properties(packet), block
    )


def test_many_user_properties_unpack_in_linear_time() -> None:
    # paho copies the rest of the block after each property and concatenates a new list
    # for each user property: quadratic; the broker lets a publisher send a megabyte of them
    pair = b"\x26\x00\x00\x00\x00"  # a user property: empty name, empty value
    packed = VariableByteIntegers.encode(5 * 200_000) + pair * 200_000  # 1 MB: the broker's max
    ours = Properties(PacketTypes.PUBLISH)
    assert ours.unpack(packed) == (ours, len(packed))
    assert len(ours.json()["UserProperty"]) == 200_000
