"""The passive sniffer on capture files built here: MQTT 3.1.1 and 5, frames over many segments."""

import random

import numpy as np
import pytest
from scapy.layers.inet import IP, TCP
from scapy.utils import wrpcap

from splitleak.attack import sniff
from splitleak.broker import topics, wire

DEVICE, BROKER, CLOUD = "10.77.0.2", "10.77.0.1", "10.77.0.4"
MSS = 1448


def _string(s: bytes) -> bytes:
    return len(s).to_bytes(2, "big") + s


def _packet(kind: int, flags: int, body: bytes) -> bytes:
    return bytes([kind << 4 | flags]) + sniff._varint_bytes(len(body)) + body


def connect(level: int, client_id: bytes, user=None, password=None, will=False) -> bytes:
    """A CONNECT as MQTT lays it out, with MQTT 5's property blocks (non-empty) at level 5."""
    props = b"\x05\x11\x00\x00\x00\x3c" if level == 5 else b""  # session expiry 60 s
    flags = (0x80 if user else 0) | (0x40 if password else 0) | (0x2C if will else 0) | 0x02
    body = _string(b"MQTT") + bytes([level, flags]) + (30).to_bytes(2, "big") + props
    body += _string(client_id)
    if will:
        body += (b"\x02\x01\x01" if level == 5 else b"") + _string(b"splitleak/n/status")
        body += _string(b'{"state":"offline"}')
    body += (_string(user) if user else b"") + (_string(password) if password else b"")
    return _packet(sniff.CONNECT, 0, body)


def publish(level: int, topic: str, payload: bytes, qos: int = 1, msgid: int = 7) -> bytes:
    props = b"\x02\x01\x00" if level == 5 else b""  # payload format indicator 0
    body = _string(topic.encode()) + (msgid.to_bytes(2, "big") if qos else b"") + props + payload
    return _packet(sniff.PUBLISH, qos << 1, body)


def segments(src, dst, sport, dport, stream: bytes, isn: int = 1000):
    """The stream as TCP segments of at most one MSS, SYN first."""
    out = [IP(src=src, dst=dst) / TCP(sport=sport, dport=dport, flags="S", seq=isn)]
    for at in range(0, len(stream), MSS):
        out.append(IP(src=src, dst=dst) / TCP(sport=sport, dport=dport, flags="PA",
                                                seq=isn + 1 + at) / stream[at:at + MSS])
    return out


def frame(node: str, seq: int, shape=(14, 14, 28)) -> tuple[bytes, np.ndarray]:
    values = np.random.default_rng(seq).normal(size=shape).astype(np.float32)
    return wire.encode(wire.Frame(node, seq, 1.7e9, values)), values


@pytest.mark.parametrize("level", [4, 5])
def test_frames_over_many_segments_and_the_password_are_read_off_the_wire(tmp_path, level):
    sent = [frame("cam-1", seq) for seq in range(3)]
    assert len(sent[0][0]) > 10 * MSS  # K = 2's activation: one frame spans many segments
    stream = connect(level, b"cam-1", b"cam-1", b"hunter2", will=True)
    stream += b"".join(publish(level, topics.activations("cam-1"), p) for p, _ in sent)
    packets = segments(DEVICE, BROKER, 40001, 1883, stream)
    packets[3], packets[4] = packets[4], packets[3]  # out of order
    packets.insert(6, packets[5].copy())  # a retransmission
    # the broker delivering the same frames to a subscriber: not what the device sent
    packets += segments(BROKER, CLOUD, 1883, 40002, publish(level, topics.activations("cam-1"),
                                                              sent[0][0]))
    wrpcap(str(tmp_path / "wire.pcap"), packets)

    spy = sniff.Sniffer(port=1883)
    sniff.read_pcap(spy, tmp_path / "wire.pcap")
    s = spy.stats()
    assert s["credentials"] == [{"client": DEVICE, "client_id": "cam-1", "username": "cam-1",
                                 "password": "hunter2", "mqtt": {4: "3.1.1", 5: "5"}[level]}]
    assert s["frames"] == 3 and s["nodes"] == {"cam-1": 3} and not s["rejected"]
    for got, (_, values) in zip(spy.frames, sent, strict=True):
        np.testing.assert_array_equal(got.as_float32(), values)


def test_a_tls_stream_yields_no_frames_and_no_credentials(tmp_path):
    record = bytes([0x16, 0x03, 0x01, 0x02, 0x00]) + random.Random(1).randbytes(512)
    wrpcap(str(tmp_path / "tls.pcap"), segments(DEVICE, BROKER, 40003, 8883, record * 40))
    spy = sniff.Sniffer(port=8883)
    sniff.read_pcap(spy, tmp_path / "tls.pcap")
    s = spy.stats()
    assert (s["frames"], s["credentials"], s["mqtt_packets"]) == (0, [], 0) and s["unreadable"] > 0


def test_mqtt5_properties_are_cut_out_before_scapy_reads_the_packet():
    plain = publish(4, "splitleak/a/activations", b"xyz")
    assert sniff.normalise(publish(5, "splitleak/a/activations", b"xyz"), 5) == plain
    assert sniff.normalise(plain, 4) == plain
    expected = bytearray(connect(4, b"c", b"u", b"p", will=True))
    expected[2 + len(_string(b"MQTT"))] = 5  # the level byte is all that stays different
    assert sniff.normalise(connect(5, b"c", b"u", b"p", will=True), 5) == expected


def test_a_missing_capture_file_is_one_line(tmp_path):
    with pytest.raises(FileNotFoundError, match="no capture file"):
        sniff.read_pcap(sniff.Sniffer(), tmp_path / "none.pcap")


def test_a_segment_retransmitted_after_its_packet_was_read_counts_its_frame_once(tmp_path):
    small = [frame("cam-2", seq, shape=(1, 1, 32))[0] for seq in range(3)]
    stream = connect(4, b"cam-2") + b"".join(publish(4, topics.activations("cam-2"), p)
                                             for p in small)
    packets = segments(DEVICE, BROKER, 40005, 1883, stream)
    assert len(packets) == 2  # SYN, then one segment with the login and the three frames
    packets.append(packets[-1].copy())  # that segment, sent again once it was read
    wrpcap(str(tmp_path / "again.pcap"), packets)
    spy = sniff.Sniffer(port=1883)
    sniff.read_pcap(spy, tmp_path / "again.pcap")
    s = spy.stats()
    assert (s["frames"], s["nodes"], s["repeats"]) == (3, {"cam-2": 3}, 3)
