"""The edge node: run the TFLite mobile stage on each image and publish the activation.

One paho client per node id (a `--fleet` of K nodes shares the interpreter), QoS 1, a
persistent session and paho's unbounded local queue: a frame published while the broker is
away waits on the device and is sent after the reconnect (1 s to 30 s backoff). The node
exits only when every frame is acknowledged, or says how many were not.
"""

import logging
import time
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from splitleak.broker import topics, wire
from splitleak.broker.urls import BrokerConnectError, connect, make_client
from splitleak.edge.runtime import MobileStage

log = logging.getLogger("splitleak.edge")


@dataclass
class EdgeConfig:
    model: str
    broker: str
    node_id: str = "edge"
    rate: float = 0.0  # frames per second per node; 0 = as fast as the stage runs
    count: int | None = None  # frames per node; None = the whole source once
    fleet: int = 1
    ca_file: str | None = None
    ack_timeout: float = 120.0  # seconds to wait for the last acknowledgements
    progress: bool = True

    def node_ids(self) -> list[str]:
        if self.fleet < 1:
            raise ValueError(f"--fleet must be at least 1, got {self.fleet}")
        if self.rate < 0:
            raise ValueError(f"--rate must be zero (unpaced) or positive, got {self.rate}")
        if self.fleet == 1:
            return [topics.check_node_id(self.node_id)]
        return [topics.check_node_id(f"{self.node_id}-{k}") for k in range(self.fleet)]


@dataclass
class NodeLink:
    """One node's MQTT client and its counters (updated from paho's thread)."""

    node_id: str
    client: object
    sent: int = 0
    acked: int = 0
    predictions: int = 0
    status_mids: set = field(default_factory=set)  # acks of status messages are not frames


def _open_link(cfg: EdgeConfig, node_id: str) -> NodeLink:
    client = make_client(cfg.broker, f"splitleak-edge-{node_id}", ca_file=cfg.ca_file,
                         persistent=True)
    client.will_set(topics.status(node_id), topics.OFFLINE, qos=1, retain=True)
    link = NodeLink(node_id, client)

    def on_connect(c, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            log.warning("%s: broker refused the connection (%s)", node_id, reason_code)
            return
        # No PUBACK is handled before this callback returns, so recording the mid here is safe.
        link.status_mids.add(c.publish(topics.status(node_id), topics.ONLINE, qos=1, retain=True).mid)
        c.subscribe(topics.predictions(node_id), qos=1)

    def on_disconnect(c, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            log.warning("%s: lost the broker (%s); queueing frames and reconnecting", node_id,
                        reason_code)

    def on_publish(c, userdata, mid, reason_code, properties):
        # paho calls this holding its own lock: take no lock of ours here (deadlock).
        if mid in link.status_mids:
            link.status_mids.discard(mid)
        else:
            link.acked += 1

    def on_message(c, userdata, msg):
        link.predictions += 1

    client.on_connect, client.on_disconnect = on_connect, on_disconnect
    client.on_publish, client.on_message = on_publish, on_message
    connect(client)
    return link


def stream(cfg: EdgeConfig, images: np.ndarray) -> dict:
    """Publish the activations of `images` (cycled up to `count`) from every node; summary."""
    node_ids = cfg.node_ids()
    stage = MobileStage(cfg.model)
    scale, zero = stage.output_quant
    count = cfg.count if cfg.count is not None else len(images)
    if count < 0 or len(images) == 0:
        raise ValueError("nothing to send: the source holds no images or --count is negative")
    links = [_open_link(cfg, n) for n in node_ids]
    start = time.monotonic()
    try:
        for seq in tqdm(range(count), desc="edge frames", unit="frame", disable=not cfg.progress):
            activation = stage.run_raw(images[seq % len(images)])
            for link in links:
                frame = wire.Frame(link.node_id, seq, time.time(), activation, scale, zero)
                link.client.publish(topics.activations(link.node_id), wire.encode(frame), qos=1)
                link.sent += 1
            if cfg.rate:
                time.sleep(max(0.0, start + (seq + 1) / cfg.rate - time.monotonic()))
        _wait_for_acks(links, cfg.ack_timeout)
    finally:
        _close(links)
    elapsed = time.monotonic() - start
    sent, acked = sum(x.sent for x in links), sum(x.acked for x in links)
    return {"nodes": len(links), "sent": sent, "acknowledged": acked, "unacknowledged": sent - acked,
            "predictions_received": sum(x.predictions for x in links), "seconds": round(elapsed, 3),
            "frames_per_second": round(sent / elapsed, 1) if elapsed else None,
            "model_sha256": stage.sha256}


def _wait_for_acks(links: list[NodeLink], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(x.acked < x.sent for x in links):
        time.sleep(0.02)


def _close(links: list[NodeLink]) -> None:
    for link in links:
        link.client.publish(topics.status(link.node_id), topics.OFFLINE, qos=1, retain=True)
        link.client.disconnect()
        link.client.loop_stop()


__all__ = ["EdgeConfig", "stream", "BrokerConnectError"]
