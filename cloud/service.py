"""The cloud head as a service: activations in over MQTT, predictions out.

Subscribes to `splitleak/+/activations` (QoS 1, persistent session), decodes each message with
the shared wire module, runs the head in batches and publishes one prediction per frame,
carrying the frame's sequence number. A bad message never stops the service: it is counted
by reason and logged once per (reason, node).
"""

import logging
import queue
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from splitleak.broker import topics, wire
from splitleak.broker.urls import connect, make_client
from splitleak.cloud import artifacts

log = logging.getLogger("splitleak.cloud")


class NodeStats:
    """What one node has sent: sequence numbers seen, duplicates (QoS 1 is at-least-once)."""

    def __init__(self):
        self.seen: set[int] = set()
        self.duplicates = 0

    def add(self, seq: int) -> bool:
        if seq in self.seen:
            self.duplicates += 1
            return False
        self.seen.add(seq)
        return True

    def gaps(self) -> int:
        return (max(self.seen) - min(self.seen) + 1 - len(self.seen)) if self.seen else 0


class CloudHead:
    def __init__(self, run_dir, broker: str, ca_file=None, batch: int = 64,
                 client_id: str = "splitleak-cloud"):
        import tensorflow as tf

        run_dir = Path(run_dir)
        manifest = artifacts.read_json(run_dir / "manifest.json")
        self.shape = tuple(manifest["activation"]["shape"])
        self.classes = manifest["classes"]
        self.model = tf.keras.models.load_model(run_dir / "head.keras", compile=False)
        self.batch = batch
        self.inbox: queue.Queue = queue.Queue()
        self.nodes: dict[str, NodeStats] = defaultdict(NodeStats)
        self.rejected: Counter = Counter()
        self.accepted = 0
        self.latencies: list[float] = []
        self.first_at = self.last_at = None
        self._logged: set = set()
        self.client = make_client(broker, client_id, ca_file=ca_file, persistent=True)
        self.client.on_connect = self._on_connect
        self.client.on_message = lambda c, u, msg: self.inbox.put((msg.topic, msg.payload))

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if not reason_code.is_failure:
            client.subscribe(topics.ALL_ACTIVATIONS, qos=1)

    def start(self) -> None:
        connect(self.client)

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def serve(self, stop: threading.Event, max_frames: int | None = None) -> None:
        """Handle messages until `stop` is set (or `max_frames` frames were accepted)."""
        while not stop.is_set() and (max_frames is None or self.accepted < max_frames):
            try:
                first = self.inbox.get(timeout=0.1)
            except queue.Empty:
                continue
            batch = [first]
            while len(batch) < self.batch:
                try:
                    batch.append(self.inbox.get_nowait())
                except queue.Empty:
                    break
            self.handle(batch)

    def handle(self, messages: list[tuple[str, bytes]]) -> None:
        """Decode, classify and answer a batch of (topic, payload) messages."""
        frames = [f for f in (self._decode(t, p) for t, p in messages) if f is not None]
        if not frames:
            return
        probs = self.model(np.stack([f.as_float32() for f in frames]), training=False).numpy()
        for frame, p in zip(frames, probs, strict=True):
            published = time.time()
            payload = wire.encode_prediction(frame.node_id, frame.seq, int(p.argmax()), p.tolist(),
                                             frame.captured_at, published)
            self.client.publish(topics.predictions(frame.node_id), payload, qos=1)
            self.latencies.append(published - frame.captured_at)
        self.last_at = time.monotonic()
        self.first_at = self.first_at or self.last_at

    def _decode(self, topic: str, payload: bytes):
        node = "?"
        try:
            node = topics.node_from_topic(topic)
            frame = wire.decode(payload, expect_shape=self.shape)
            if frame.node_id != node:
                raise wire.BadNodeId(f"frame says node {frame.node_id!r} but came on {topic}")
        except wire.WireError as exc:
            self._reject(exc.reason, node, str(exc))
            return None
        except ValueError as exc:  # a topic outside splitleak/<node>/activations
            self._reject("topic", node, str(exc))
            return None
        if not self.nodes[node].add(frame.seq):
            return None  # a QoS 1 redelivery: already answered
        self.accepted += 1
        return frame

    def _reject(self, reason: str, node: str, message: str) -> None:
        self.rejected[reason] += 1
        if (reason, node) not in self._logged:
            self._logged.add((reason, node))
            log.warning("rejected a message from node %s (%s): %s; further ones are only counted",
                        node, reason, message)

    def summary(self) -> dict:
        seconds = (self.last_at - self.first_at) if self.first_at else 0.0
        lat = np.array(self.latencies) * 1e3
        return {
            "accepted": self.accepted,
            "rejected": dict(self.rejected),
            "nodes": {n: {"frames": len(s.seen), "gaps": s.gaps(), "duplicates": s.duplicates}
                      for n, s in sorted(self.nodes.items())},
            "frames_per_second": round(self.accepted / seconds, 1) if seconds > 0 else None,
            "latency_ms": {q: round(float(np.percentile(lat, int(q[1:]))), 2)
                           for q in ("p50", "p90", "p99")} if len(lat) else None,
        }
