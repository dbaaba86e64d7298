"""The live eavesdropper: an ordinary MQTT client that reconstructs what the devices see.

It subscribes to the activation topic like any other client (on the `open` or `auth` profile,
any account will do), decodes frames with the shared wire module, reconstructs them in batches
with a trained decoder, and can save PNGs per node and sequence number, record the raw
payloads as a capture file, and serve a live page. Without a decoder it only decodes, counts
and records the frames (what anyone who can subscribe gets before training anything).
"""

import base64
import logging
import threading
import time
from pathlib import Path

import numpy as np

from splitleak.attack.blackbox import reconstruct
from splitleak.broker import capture, topics
from splitleak.broker.inbox import MAX_NODES, FrameInbox, NodeTable
from splitleak.broker.urls import DEFAULT_MQTT, connect, make_client, refusal_text
from splitleak.edge.omniglot import to_png

log = logging.getLogger("splitleak.attack")


def save_png(root: Path, frame, png: bytes) -> None:
    """Write root/<node>/<seq>.png (the folder is made on a node's first frame)."""
    path = root / frame.node_id / f"{frame.seq:06d}.png"
    try:
        path.write_bytes(png)
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png)


class Eavesdropper:
    def __init__(self, decoder, broker: str, topic: str = topics.ALL_ACTIVATIONS, ca_file=None,
                 protocol: str = DEFAULT_MQTT, save_dir=None, record=None, batch: int = 64,
                 max_nodes: int = MAX_NODES):
        self.decoder, self.topic, self.batch = decoder, topic, batch
        self.inbox = FrameInbox(decoder.input_shape[1:] if decoder else None, log)
        self.frames = self.reconstructed = 0
        self.nodes = NodeTable(int, log, max_nodes)  # frames per node, for a bounded set
        self.save_dir = Path(save_dir) if save_dir else None
        self.record = open(record, "a") if record else None  # noqa: SIM115 (closed in stop)
        self.page = None
        self.client = make_client(broker, f"splitleak-attacker-{time.time_ns()}", ca_file=ca_file,
                                  protocol=protocol)
        self.subscribed = threading.Event()
        self.refusal: str | None = None  # why the broker refused the subscription (SUBACK)
        self.client.on_connect = lambda c, *a: c.subscribe(topic, qos=1)
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self.inbox.on_message

    def stats(self) -> dict:
        return {"seen": self.inbox.seen, "frames": self.frames, "reconstructed": self.reconstructed,
                "rejected": dict(self.inbox.rejected),
                "rejected_total": sum(self.inbox.rejected.values()), "nodes": dict(self.nodes),
                "nodes_evicted": self.nodes.evicted}

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties):
        if reason_codes and reason_codes[0].is_failure:
            self.refusal = refusal_text(reason_codes[0])
        self.subscribed.set()

    def start(self, timeout: float = 10.0) -> None:
        """Connect and subscribe; OSError when the broker does not answer or refuses."""
        connect(self.client)
        if not self.subscribed.wait(timeout):
            raise TimeoutError(f"the broker did not answer the subscription to {self.topic} "
                               f"within {timeout:g} s")
        if self.refusal:
            raise PermissionError(f"the broker refused the subscription to {self.topic} "
                                  f"({self.refusal}): this user may not read it")

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
        if self.record:
            self.record.close()

    def serve(self, stop: threading.Event, max_frames: int | None = None) -> None:
        """Reconstruct until `stop` is set (or `max_frames` valid frames were handled)."""
        while not stop.is_set() and (max_frames is None or self.frames < max_frames):
            self.handle(self.inbox.next_batch(self.batch))

    def handle(self, messages: list[tuple[str, bytes]]) -> None:
        if self.record:
            self.record.writelines(capture.format_line(t, p) for t, p in messages)
            self.record.flush()
        frames = [f for f in (self.inbox.decode(t, p) for t, p in messages) if f is not None]
        self.frames += len(frames)
        for frame in frames:
            self.nodes[frame.node_id] += 1
        if not frames or self.decoder is None:
            return
        images = reconstruct(self.decoder, np.stack([f.as_float32() for f in frames]))
        for frame, image in zip(frames, images, strict=True):
            png = to_png(image) if self.save_dir or self.page else b""
            if self.save_dir:
                save_png(self.save_dir, frame, png)
            if self.page:
                self.page.publish("frame", {"node": frame.node_id, "seq": frame.seq,
                                            "png": base64.b64encode(png).decode()})
        self.reconstructed += len(frames)
