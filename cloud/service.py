"""The cloud head as a service: activations in over MQTT, predictions out.

Subscribes to `splitleak/+/activations` and `splitleak/+/status` (QoS 1, persistent session),
decodes each message with the shared wire module, runs the head in batches and publishes one
prediction per frame, carrying the frame's node id and sequence number.

Scale-out: with `share=GROUP` the activations come through the MQTT 5 shared subscription
`$share/GROUP/splitleak/+/activations`, so the broker hands each frame to one head of the group;
statuses stay an ordinary subscription (every head checks every node's model). A head then sees
only part of each node's frames, so it reports no sequence gaps (None): count them across the
group, by node and sequence number, from the predictions.

Model identity: a node's retained status names the sha256 of its mobile stage. A node whose
hash is neither the run's mobile.tflite nor its mobile_int8.tflite (manifest.json "artifacts")
is refused, logged once naming both hashes, and its frames are rejected as "model_mismatch".
A node that never sent a status is served. A new `started_at` in a node's status starts a new
sequence (the node restarted and counts from 0 again); the first status a head sees does not
(a restarted head gets its session's queued frames before the retained status).

Delivery: each activation is acknowledged to the broker (PUBACK) only after its prediction was
handed to the client, so a head killed mid-batch leaves its unanswered frames in its session,
and they are answered when a head with the same client id reconnects (end to end at least
once: at most the frames in flight are answered twice).

A bad message never stops the service: it is counted by reason and logged once per
(reason, node). A refused subscription (SUBACK 0x80) stops it with PermissionError.
"""

import gc
import logging
import threading
import time
from collections import deque
from pathlib import Path

import numpy as np

from splitleak.broker import topics, wire
from splitleak.broker.inbox import MAX_NODES, NodeTable, Rejections, decode_frame
from splitleak.broker.stats import percentiles
from splitleak.broker.urls import DEFAULT_MQTT, CallerLoop, acknowledged, connect, make_client, refusal_text
from splitleak.cloud import rundir

log = logging.getLogger("splitleak.cloud")

BATCH = 64  # frames per head call, at most
LATENCY_WINDOW = 100_000  # latency percentiles cover the last this many frames


class NodeStats:
    """One node's sequence numbers: distinct frames, duplicates (QoS 1 is at-least-once), gaps.

    Duplicates are recognised among the last WINDOW sequence numbers (redeliveries are
    recent), which keeps memory bounded. `restart` begins a new sequence and keeps the counts.
    """

    WINDOW = 1 << 16

    def __init__(self):
        self.frames = self.duplicates = self.closed_gaps = 0
        self.state = "unknown"
        self.refused = False  # its status announced a mobile stage this head does not accept
        self.started_at = None
        self._new_sequence()

    def _new_sequence(self) -> None:
        self.low = self.high = None
        self.count = 0
        self._recent: set[int] = set()
        self._order: deque[int] = deque()

    def restart(self) -> None:
        self.closed_gaps += self._open_gaps()
        self._new_sequence()

    def started(self, at: float) -> None:
        """The node's status says it started `at`: a new start begins a new sequence. The first
        one seen continues the current sequence (a restarted head gets the frames queued in its
        session before the retained status)."""
        if self.started_at is not None and at != self.started_at:
            self.restart()
        self.started_at = at

    def add(self, seq: int) -> bool:
        """Record `seq`; False if it is a duplicate."""
        if seq in self._recent:
            self.duplicates += 1
            return False
        self._recent.add(seq)
        self._order.append(seq)
        if len(self._order) > self.WINDOW:
            self._recent.discard(self._order.popleft())
        self.frames += 1
        self.count += 1
        self.low = seq if self.low is None else min(self.low, seq)
        self.high = seq if self.high is None else max(self.high, seq)
        return True

    def _open_gaps(self) -> int:
        return max(0, self.high - self.low + 1 - self.count) if self.count else 0

    def gaps(self) -> int:
        """Sequence numbers missing between the lowest and highest seen, over all sequences."""
        return self.closed_gaps + self._open_gaps()


def load_head(path: Path, shape: tuple):
    """The Keras head as a traced batch function: float32 (N, *shape) -> probabilities (N, C)."""
    import tensorflow as tf

    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; is {path.parent} a splitleak run directory?")
    model = tf.keras.models.load_model(path, compile=False)
    spec = tf.TensorSpec((None, *shape), tf.float32)
    traced = tf.function(lambda x: model(x, training=False), input_signature=[spec])
    traced(np.zeros((1, *shape), np.float32))  # trace now, not on the first frame
    gc.freeze()  # TensorFlow's many long-lived objects would make every full collection a stall
    return lambda x: traced(x).numpy()


def accepted_models(run_dir: Path) -> dict:
    """The mobile-stage hashes (file name -> sha256) a node of this run may announce."""
    hashes = rundir.read_manifest(run_dir).get("artifacts") or {}
    models = {name: hashes[name] for name in rundir.MOBILE_MODELS if name in hashes}
    if not models:
        log.warning("%s lists no mobile-stage hashes: node models are not checked", run_dir)
    return models


class CloudHead:
    """The service: `start()`, then `serve(stop)` until stopped, `stop()`, `summary()`.

    One thread does everything: paho's callbacks run inside `serve` (a `CallerLoop`), so the
    counters need no lock.
    """

    def __init__(self, run_dir, broker: str, ca_file=None, batch: int = BATCH,
                 client_id: str = "splitleak-cloud", protocol: str = DEFAULT_MQTT,
                 share: str | None = None, max_nodes: int = MAX_NODES):
        self.run_dir = Path(run_dir)
        activations = topics.shared(share, topics.ALL_ACTIVATIONS) if share else topics.ALL_ACTIVATIONS
        self.share = share
        self.subscriptions = [(activations, 1), (topics.ALL_STATUS, 1)]
        self.shape = rundir.activation_shape(self.run_dir)
        self.models = accepted_models(self.run_dir)
        self.classify = load_head(self.run_dir / rundir.HEAD_KERAS, self.shape)
        self.batch = batch
        self.inbox: list = []  # (topic, payload, mid, qos), filled by on_message in loop.step
        self.nodes = NodeTable(NodeStats, log, max_nodes)  # a flood of fake ids stays bounded
        self.rejected = Rejections(log)
        self.accepted = 0
        self.predictions_refused = 0
        self.latencies: deque = deque(maxlen=LATENCY_WINDOW)
        self.first_at = self.last_at = None
        self.cpu_seconds = 0.0  # this process's CPU time between the first and the last frame
        self.error: str | None = None
        self.subscribed = False
        self._last_publish = None
        self.client = make_client(broker, client_id, ca_file=ca_file, protocol=protocol,
                                  persistent=True)
        c = self.client
        c.on_connect, c.on_subscribe = self._on_connect, self._on_subscribe
        c.on_publish = self._on_publish
        c.on_message = lambda c, u, m: self.inbox.append((m.topic, m.payload, m.mid, m.qos))
        c.manual_ack_set(True)  # PUBACK after the answer (serve), not on arrival
        self.loop = CallerLoop(self.client)

    # --- paho callbacks: run in this thread from loop.step; they must not raise ---------------

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if not reason_code.is_failure:
            client.subscribe(self.subscriptions)

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties):
        refused = [(topic, rc) for (topic, _), rc in zip(self.subscriptions, reason_codes,
                                                          strict=False) if rc.is_failure]
        if refused:
            self.error = (f"the broker refused the subscription to "
                          f"{' and '.join(t for t, _ in refused)} ({refusal_text(refused[0][1])}):"
                          " this user may not read them")
        self.subscribed = True

    def _on_publish(self, client, userdata, mid, reason_code, properties):
        if reason_code.is_failure:
            self.predictions_refused += 1
            if self.predictions_refused == 1:
                log.warning("the broker refused a prediction: %s; further ones are only "
                            "counted", refusal_text(reason_code))

    # --- running --------------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> None:
        """Connect and subscribe; OSError if the broker is unreachable or refuses either."""
        connect(self.client, thread=False)
        if not self.loop.run_until(lambda: self.subscribed, timeout):
            raise TimeoutError(f"the broker did not answer the subscription within {timeout:g} s")
        self._check()

    def _check(self) -> None:
        if self.error:
            raise PermissionError(self.error)

    def stop(self, timeout: float = 5.0) -> None:
        """Wait (up to `timeout`) for the last prediction to be acknowledged, then disconnect."""
        last = self._last_publish
        if last is not None and self.client.is_connected():
            self.loop.run_until(lambda: acknowledged(last), timeout)
        self.client.disconnect()

    def serve(self, stop: threading.Event, max_frames: int | None = None, report=None,
              every: float = 5.0) -> None:
        """Handle messages until `stop` is set (or `max_frames` were answered).

        report(head), if given, is called every `every` seconds from this thread.
        """
        next_report = time.monotonic() + every
        while not stop.is_set() and (max_frames is None or self.accepted < max_frames):
            self._check()
            if report is not None and time.monotonic() >= next_report:
                report(self)
                next_report += every
            self.loop.step(0.0 if self.inbox else 0.1)
            batch, self.inbox[:] = self.inbox[:self.batch], self.inbox[self.batch:]
            if batch:
                self.handle([(topic, payload) for topic, payload, _, _ in batch])
                for _, _, mid, qos in batch:  # after the predictions, on the same connection
                    self.client.ack(mid, qos)

    def handle(self, messages: list[tuple[str, bytes]]) -> None:
        """Handle a batch of (topic, payload): statuses in order, frames classified together."""
        started = time.monotonic()
        frames = []
        for topic, payload in messages:
            try:
                node, kind = topics.parse_topic(topic)
            except ValueError as exc:  # amqtt 0.12 may send retained messages of any topic
                self.rejected("topic", "?", str(exc))
                continue
            if kind == "status":
                self._status(node, payload)
            elif kind != "activations":  # predictions: not subscribed to either (amqtt again)
                self.rejected("topic", "?", f"a message on {topic}, which was not subscribed to")
            elif (frame := self._decode(node, topic, payload)) is not None:
                frames.append(frame)
        if frames:
            if self.first_at is None:
                self.first_at, self._first_cpu = started, time.process_time()
            self._answer(frames)
            self.last_at = time.monotonic()
            self.cpu_seconds = time.process_time() - self._first_cpu

    def _answer(self, frames: list[wire.Frame]) -> None:
        probs = self.classify(np.stack([f.as_float32() for f in frames]))
        for frame, p in zip(frames, probs, strict=True):
            if not np.isfinite(p).all():
                self.rejected("head_output", frame.node_id, "the head returned non-finite "
                             "probabilities for this activation")
                continue
            published = time.time()
            payload = wire.encode_prediction(frame.node_id, frame.seq, int(p.argmax()),
                                             p.tolist(), frame.captured_at, published)
            self._last_publish = self.client.publish(topics.predictions(frame.node_id), payload,
                                                     qos=1)
            self.accepted += 1
            self.latencies.append(published - frame.captured_at)

    # --- checking messages ------------------------------------------------------------------

    def _decode(self, node: str, topic: str, payload: bytes) -> wire.Frame | None:
        if node in self.nodes and self.nodes[node].refused:
            return self.rejected("model_mismatch", node, "the node runs another mobile stage")
        try:
            frame = decode_frame(node, topic, payload, self.shape)
        except wire.WireError as exc:
            return self.rejected(exc.reason, node, str(exc))
        if not self.nodes[node].add(frame.seq):
            return None  # a QoS 1 redelivery: already answered
        return frame

    def _status(self, node: str, payload: bytes) -> None:
        try:
            status = wire.decode_status(payload)
        except wire.WireError as exc:
            self.rejected(exc.reason, node, f"bad status: {exc}")
            return
        stats = self.nodes[node]
        stats.state = status["state"]
        log.info("node %s is %s", node, status["state"])
        if status["state"] == "online":
            self._check_model(node, status)
            stats.started(status["started_at"])

    def _check_model(self, node: str, status: dict) -> None:
        """Refuse or accept `node` by the model and wire version its status announces."""
        if status["wire_version"] != wire.VERSION:
            log.warning("node %s speaks wire version %s, this cloud head reads version %s: its "
                        "frames will be rejected; update the older side", node,
                        status["wire_version"], wire.VERSION)
        sha = status["model_sha256"]
        stats = self.nodes[node]
        if not self.models or sha in self.models.values():
            if stats.refused:
                log.info("node %s now runs the expected mobile stage: accepted again", node)
            stats.refused = False
            return
        if not stats.refused:
            expected = " or ".join(f"{name} {h}" for name, h in self.models.items())
            log.warning("refusing node %s: its mobile stage has sha256 %s, but %s expects %s; "
                        "its frames are rejected (model_mismatch)", node, sha, self.run_dir,
                        expected)
        stats.refused = True

    def summary(self) -> dict:
        seconds = (self.last_at - self.first_at) if self.first_at else 0.0
        nodes = {n: {"frames": s.frames, "gaps": None if self.share else s.gaps(),
                     "duplicates": s.duplicates,
                     "state": s.state, "refused": s.refused}
                 for n, s in sorted(self.nodes.items())}
        return {
            "accepted": self.accepted,
            "rejected": dict(sorted(self.rejected.items())),
            "duplicates": sum(n["duplicates"] for n in nodes.values()),
            "gaps": None if self.share else sum(n["gaps"] for n in nodes.values()),
            "share": self.share,
            "predictions_refused": self.predictions_refused,
            "nodes": nodes,
            "nodes_evicted": self.nodes.evicted,  # forgotten to keep within max_nodes
            "seconds": round(seconds, 3),
            "frames_per_second": round(self.accepted / seconds, 1) if seconds > 0 else None,
            "latency_ms": percentiles(np.array(self.latencies) * 1e3),
            "cpu_seconds": round(self.cpu_seconds, 2),  # first frame to last
        }


def describe(s: dict) -> str:
    """One line from a cloud head's summary."""
    lat = s["latency_ms"] or {}
    return (f"cloud: {s['accepted']} frames from {len(s['nodes'])} node(s), rejected "
            f"{sum(s['rejected'].values())} {s['rejected'] or ''}, "
            + (f"sequence gaps {s['gaps']}, " if s["gaps"] is not None
               else f"a share of group {s['share']}, ") +
            f"duplicates {s['duplicates']}, {s['frames_per_second']} frames/s, latency p50 "
            f"{lat.get('p50')} ms p99 {lat.get('p99')} ms  [{time.strftime('%H:%M:%S')}]")
