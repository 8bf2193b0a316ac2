"""The fast read path of ``ingest.mqtt_client.BufferedReadClient`` against paho's own decoding:
any stream of PUBLISH packets (QoS 0/1, with and without MQTT 5 properties, long and short,
mixed with other packets), cut into any chunks, is delivered exactly once, in order, with the
same topic, payload, mid and QoS as paho reports."""

from __future__ import annotations

import socket

import paho.mqtt.client as mqtt
from hypothesis import given, settings, strategies as st

from ingest.mqtt_client import BufferedReadClient


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _publish(topic: bytes, payload: bytes, qos: int, mid: int, props: bytes, dup: bool) -> bytes:
    body = len(topic).to_bytes(2, "big") + topic
    if qos:
        body += mid.to_bytes(2, "big")
    body += _varint(len(props)) + props + payload
    return bytes([0x30 | (qos << 1) | (0x08 if dup and qos else 0)]) + _varint(len(body)) + body


_PINGRESP = b"\xd0\x00"
_messages = st.lists(st.tuples(
    st.text("abcdefghij/-_", min_size=1, max_size=40).map(str.encode),
    st.binary(max_size=400),
    st.sampled_from([0, 1]),
    st.integers(1, 65535),
    st.sampled_from([b"", b"\x01\x01", b"\x03\x00\x04json"]),    # none, format indicator, content type
    st.booleans(),
    st.booleans(),                                                   # a PINGRESP after it
), min_size=1, max_size=40)


def _client(fast: bool, manual_ack: bool = True):
    c = BufferedReadClient(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5, manual_ack=manual_ack)
    got: list = []
    c.on_message = lambda cl, u, m: got.append(("paho", m.topic, bytes(m.payload), m.mid, m.qos))
    if fast:
        c.on_deliveries = lambda ds: got.extend(("fast", d.topic, d.payload, d.mid, d.qos) for d in ds)
    return c, got


def _feed(c, stream: bytes, cuts: list[int]) -> bytes:
    """Send ``stream`` in pieces cut at ``cuts`` and let ``c`` read it; returns what ``c`` wrote
    back (acks)."""
    a, b = socket.socketpair()
    b.setblocking(False)
    c._sock = b
    try:
        pos = 0
        for cut in sorted(set(cuts)) + [len(stream)]:
            if cut <= pos:
                continue
            a.sendall(stream[pos:cut])
            pos = cut
            for _ in range(4):                  # the loop may return early to write acks
                c.loop_read()
        c.loop_write()
        a.setblocking(False)
        try:
            return a.recv(1 << 20)
        except BlockingIOError:
            return b""
    finally:
        c._sock = None
        a.close()
        b.close()


@settings(max_examples=150, deadline=None)
@given(_messages, st.lists(st.integers(0, 20_000), max_size=12))
def test_fast_path_delivers_what_paho_decodes(messages, cuts):
    stream = b"".join(_publish(*m[:6]) + (_PINGRESP if m[6] else b"") for m in messages)
    expect = [(t.decode(), p, mid if q else 0, q) for t, p, q, mid, _props, _dup, _ping in messages]

    fast, got_fast = _client(fast=True)
    _feed(fast, stream, cuts)
    assert [g[1:] for g in got_fast] == expect

    stock, got_stock = _client(fast=False)
    _feed(stock, stream, cuts)
    assert [g[1:] for g in got_stock] == expect
    # packets with properties always go through paho; plain ones mostly take the fast path
    for g, m in zip(got_fast, messages):
        if m[4]:
            assert g[0] == "paho"


def test_fast_path_takes_whole_packets_and_leaves_a_cut_one_to_paho():
    c, got = _client(fast=True)
    one = _publish(b"prognos/v1/devices/d1/telemetry", b'{"v":1}', 1, 9, b"", False)
    _feed(c, one * 3 + one[:5], [])
    assert [g[0] for g in got] == ["fast"] * 3
    assert c._roff == len(c._rbuf)


def test_ack_many_and_automatic_acks_on_the_fast_path():
    mids = list(range(1, 21))
    stream = b"".join(_publish(b"t/x", b"p", 1, m, b"", False) for m in mids)
    auto, got = _client(fast=True, manual_ack=False)
    written = _feed(auto, stream, [])
    assert [g[0] for g in got] == ["fast"] * 20
    assert written == b"".join(b"\x40\x02" + m.to_bytes(2, "big") for m in mids)

    manual, got = _client(fast=True)
    assert _feed(manual, stream, []) == b""           # manual acks: nothing until asked
