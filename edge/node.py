"""The edge node: run the TFLite mobile stage on each image and publish the activation.

One paho client per node id (a `--fleet` of K nodes shares the interpreter), QoS 1, a
persistent session and paho's unbounded local queue: a frame published while the broker is
away waits on the device and is sent after the reconnect (1 s to 30 s backoff). The clients'
network work runs in the streaming thread (`CallerLoop`), between frames.

On every connect a node publishes its retained status (`wire.encode_status`: online, the
model's sha256, the wire version, when it started); its last will says offline. With MQTT 5
the broker's refusal of a frame (PUBACK 0x87 from an ACL) is counted apart from
acknowledgements and streaming stops. At the end the node waits for the acknowledgements,
then for the predictions, and reports both. With `ack_log` it also writes when the broker
acknowledged each frame (`splitleak bench faults` tells crash losses apart by it).
"""

import csv
import logging
import select
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
from tqdm import tqdm

from splitleak.broker import topics, wire
from splitleak.broker.stats import percentiles
from splitleak.broker.urls import (
    DEFAULT_MQTT,
    CallerLoop,
    acknowledged,
    connect,
    make_client,
    refusal_text,
    url_for_user,
)
from splitleak.edge.defences import Device
from splitleak.edge.omniglot import to_png

log = logging.getLogger("splitleak.edge")
END = object()  # what next() gives once the frames are exhausted


@dataclass
class EdgeConfig:
    model: str
    broker: str
    node_id: str = "edge"
    rate: float = 0.0  # frames per second per node; 0 = as fast as the stage runs
    count: int | None = None  # frames per node; None = the whole source once
    fleet: int = 1
    ca_file: str | None = None
    protocol: str = DEFAULT_MQTT
    credentials: dict[str, str] | None = None  # user -> password: each node logs in as itself
    ack_timeout: float = 120.0  # seconds to wait for the last acknowledgements
    prediction_timeout: float = 10.0  # seconds to wait for the last predictions
    progress: bool = True
    defense: str | None = None  # edge/defences.py spec, applied to every frame
    seed: int | None = None  # the defence noise's seed (None: fresh)
    ack_log: str | None = None  # CSV node,seq,acked_at (unix s) of every acknowledged frame
    preview: str | None = None  # a folder: each published frame's input as <seq>.png

    def node_ids(self) -> list[str]:
        """The node ids to emulate; checks the settings."""
        if self.fleet < 1:
            raise ValueError(f"--fleet must be at least 1, got {self.fleet}")
        if self.rate < 0:
            raise ValueError(f"--rate must be zero (unpaced) or positive, got {self.rate}")
        if self.fleet == 1:
            return [topics.check_node_id(self.node_id)]
        return [topics.check_node_id(f"{self.node_id}-{k}") for k in range(self.fleet)]

    def url_for(self, node_id: str):
        """The broker URL for `node_id`: logged in as the node id when credentials are given."""
        if self.credentials is None:
            return self.broker
        return url_for_user(self.broker, node_id, self.credentials, "the credentials file")


@dataclass
class NodeLink:
    """One node's MQTT client and its counters.

    Everything runs in the streaming thread (paho's callbacks too, from `loop.step`), so the
    counters need no lock. Were a paho thread used instead, its callbacks would run holding
    paho's lock: taking one of ours there could deadlock against `publish`.
    """

    node_id: str
    client: object = None
    loop: CallerLoop | None = None
    online: bytes = b""  # this node's status message, sent at every connect
    sent: int = 0
    acked: int = 0
    refused: int = 0
    refusal: str = ""  # the broker's reason for the first refused frame
    bad_predictions: int = 0
    foreign: int = 0  # messages on topics this node did not subscribe to
    predictions: set = field(default_factory=set)  # sequence numbers answered
    round_trips: list = field(default_factory=list)  # seconds, capture -> prediction here
    status_mids: set = field(default_factory=set)  # acks of status messages are not frames
    acked_at: dict | None = None  # seq -> when the broker acknowledged it (with an ack log)
    pending: dict = field(default_factory=dict)  # mid -> seq of frames awaiting their ack

    @cached_property
    def topic(self) -> str:  # per frame on the hot path: checked and built once
        return topics.activations(self.node_id)

    @cached_property
    def prediction_topic(self) -> str:
        return topics.predictions(self.node_id)

    def on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            log.warning("%s: broker refused the connection (%s)", self.node_id, reason_code)
            return
        # No PUBACK is handled before this callback returns, so recording the mid here is safe.
        info = client.publish(topics.status(self.node_id), self.online, qos=1, retain=True)
        self.status_mids.add(info.mid)
        client.subscribe(self.prediction_topic, qos=1)

    def on_disconnect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            log.warning("%s: lost the broker (%s); queueing frames and reconnecting",
                        self.node_id, reason_code)

    def on_publish(self, client, userdata, mid, reason_code, properties):
        if mid in self.status_mids:
            self.status_mids.discard(mid)
            if reason_code.is_failure:
                log.warning("%s: the broker refused the status message: %s", self.node_id,
                            refusal_text(reason_code))
        elif reason_code.is_failure:
            self.refused += 1
            self.refusal = self.refusal or refusal_text(reason_code)
        else:
            self.acked += 1
            if self.acked_at is not None and (seq := self.pending.pop(mid, None)) is not None:
                self.acked_at[seq] = time.time()

    def on_message(self, client, userdata, msg):
        if msg.topic != self.prediction_topic:  # amqtt 0.12 leaks retained messages
            if not self.foreign:
                log.warning("%s: ignored a message on %s, which it did not subscribe to; further "
                            "ones are only counted", self.node_id, msg.topic)
            self.foreign += 1
            return
        try:
            p = wire.decode_prediction(msg.payload)
            if p["node_id"] != self.node_id:
                raise wire.BadNodeId(f"prediction for {p['node_id']!r} came on {msg.topic}")
        except wire.WireError as exc:
            if not self.bad_predictions:
                log.warning("%s: dropped a bad prediction (%s); further ones are only counted",
                            self.node_id, exc)
            self.bad_predictions += 1
            return
        if p["seq"] not in self.predictions:
            self.predictions.add(p["seq"])
            self.round_trips.append(time.time() - p["captured_at"])

    def open(self, cfg: EdgeConfig, online: bytes) -> None:
        """Create the client, connect (blocking until CONNACK) and publish `online`."""
        self.online = online
        self.client = make_client(cfg.url_for(self.node_id), f"splitleak-edge-{self.node_id}",
                                  ca_file=cfg.ca_file, protocol=cfg.protocol, persistent=True)
        self.client.will_set(topics.status(self.node_id), wire.encode_status("offline"), qos=1,
                             retain=True)
        c = self.client
        c.on_connect, c.on_disconnect = self.on_connect, self.on_disconnect
        c.on_publish, c.on_message = self.on_publish, self.on_message
        connect(self.client, thread=False)
        self.loop = CallerLoop(self.client)

    def close(self) -> None:
        """Say offline (waiting up to 2 s for the broker to take it) and disconnect."""
        if self.loop is None:
            return
        self.client.on_publish = None  # the counts are final; this status is not a frame
        info = self.client.publish(topics.status(self.node_id), wire.encode_status("offline"),
                                   qos=1, retain=True)
        if self.client.is_connected():
            self.loop.run_until(lambda: acknowledged(info), timeout=2)
        self.client.disconnect()

    def summary(self) -> dict:
        return {"sent": self.sent, "acknowledged": self.acked, "refused": self.refused,
                "predictions": len(self.predictions), "bad_predictions": self.bad_predictions,
                "foreign_messages": self.foreign}


def stream(cfg: EdgeConfig, images, stop=None) -> dict:
    """Publish the activations of `images` from every node; summary.

    `images`: an array, cycled up to cfg.count (default: once), or an iterable (a camera or a
    video: up to cfg.count, or until it ends or `stop`, a threading.Event, is set), where None
    stands for a frame the source skipped.
    """
    links = [NodeLink(n, acked_at={} if cfg.ack_log else None) for n in cfg.node_ids()]
    device = Device.from_model(cfg.model, cfg.defense, cfg.seed)
    frames, total = _frames(images, cfg.count)
    online = wire.encode_status("online", device.stage.sha256, time.time(), device.spec)
    try:
        for link in links:
            link.open(cfg, online)
        cpu = time.process_time()
        seconds = _publish_all(cfg, device, frames, total, links, stop)
        _wait(links, lambda x: x.acked + x.refused >= x.sent, cfg.ack_timeout)
        _wait(links, lambda x: len(x.predictions) >= x.acked, cfg.prediction_timeout)
        cpu = time.process_time() - cpu
        if cfg.ack_log:
            write_ack_log(cfg.ack_log, links)
    finally:
        for link in links:
            link.close()
    return _summary(links, seconds, device.stage.sha256, cpu) | {"defense": device.spec}


def _frames(images, count: int | None):
    """(an iterator of the images to publish, how many: None when a live source decides)."""
    if count is not None and count < 0:
        raise ValueError(f"--count must be zero or positive, got {count}")
    if not isinstance(images, np.ndarray):
        return iter(images), count
    if len(images) == 0:
        raise ValueError("nothing to send: the source holds no images")
    count = len(images) if count is None else count
    return (images[i % len(images)] for i in range(count)), count


def _publish_all(cfg: EdgeConfig, device: Device, frames, total, links, stop) -> float:
    """Run the stage on each image once and publish it from every node, paced at cfg.rate.

    `cfg.rate` caps the frame rate: each frame has its slot, 1/rate after the last one's. The
    capture time in each frame is taken before the image is read. Returns the seconds spent.
    """
    start, seq = time.monotonic(), 0
    slot, period = start, 1.0 / cfg.rate if cfg.rate else 0.0
    progress = tqdm(total=total, desc="edge frames", unit="frame", disable=not cfg.progress)
    while (total is None or seq < total) and not (stop is not None and stop.is_set()):
        captured = time.time()
        image = next(frames, END)
        if image is END:
            break
        if image is None:  # a frame the source skipped: keep the connections alive
            _pump(links, 0.0)
            continue
        activation, scale, zero = device.publish_raw(image)
        if cfg.preview:
            write_preview(cfg.preview, seq, image)
        for link in links:
            frame = wire.Frame(link.node_id, seq, captured, activation, scale, zero)
            info = link.client.publish(link.topic, wire.encode(frame), qos=1)
            if link.acked_at is not None:
                link.pending[info.mid] = seq
            link.sent += 1
        seq += 1
        progress.update()
        # the next frame's slot; a source that fell behind (skipped frames) starts afresh
        slot = max(slot, time.monotonic() - period) + period
        _pump(links, slot - time.monotonic())
        if any(x.refused for x in links):
            log.warning("the broker refuses frames: stopping")
            break
    progress.close()
    return time.monotonic() - start


def write_preview(folder, seq: int, image: np.ndarray) -> None:
    """folder/<seq>.png: the input the stage ran on, black ink on white, for a person to see."""
    path = Path(folder) / f"{seq:06d}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(to_png(image))


def write_ack_log(path: str, links: list[NodeLink]) -> None:
    """node,seq,acked_at (unix s) of each link's acknowledged frames, by node and seq."""
    with open(path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["node", "seq", "acked_at"])
        for link in links:
            out.writerows((link.node_id, seq, f"{t:.6f}")
                          for seq, t in sorted(link.acked_at.items()))


def read_ack_log(path) -> dict[str, dict[int, float]]:
    """An ack log as node -> {seq: acked_at}."""
    acks: dict[str, dict[int, float]] = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            acks.setdefault(row["node"], {})[int(row["seq"])] = float(row["acked_at"])
    return acks


def _pump(links: list[NodeLink], seconds: float) -> None:
    """Do the links' network work for `seconds` (at least one pass over them)."""
    deadline = time.monotonic() + seconds
    while True:
        left = max(0.0, deadline - time.monotonic())
        if len(links) == 1:  # one link waits on its own socket
            links[0].loop.step(left)
        else:  # a fleet: a pass without waiting, then one wait on every socket at once
            for link in links:
                link.loop.step(0.0)
            sockets = [s for link in links if (s := link.client.socket()) is not None]
            if sockets:
                select.select(sockets, [], [], min(left, 0.01))
            else:  # all of them away, waiting to reconnect
                time.sleep(min(left, 0.01))
        if time.monotonic() >= deadline:
            return


def _wait(links: list[NodeLink], done, timeout: float) -> None:
    """Pump the links until done(link) holds for each, or `timeout` s pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not all(done(x) for x in links):
        _pump(links, 0.01)


def _summary(links: list[NodeLink], seconds: float, model_sha256: str, cpu_seconds: float) -> dict:
    """Totals over the nodes (frames/s over the streaming time), and each node's counts."""
    total = {key: sum(x.summary()[key] for x in links) for key in links[0].summary()}
    trips = np.array([t for x in links for t in x.round_trips]) * 1e3
    return {"nodes": len(links), **total,
            "unacknowledged": total["sent"] - total["acknowledged"] - total["refused"],
            "predictions_missing": total["acknowledged"] - total["predictions"],
            "seconds": round(seconds, 3),
            "frames_per_second": round(total["sent"] / seconds, 1) if seconds else None,
            "round_trip_ms": percentiles(trips), "model_sha256": model_sha256,
            "cpu_seconds": round(cpu_seconds, 2),  # streaming and waiting for the answers
            "refusals": {x.topic: [x.refused, x.refusal] for x in links if x.refused},
            "per_node": {x.node_id: x.summary() for x in links}}

