"""The demo deployment on one machine: broker, cloud head and edge node, then the check.

Everything runs as it would on separate machines — the embedded amqtt broker in this process,
the cloud head and the edge node as child processes talking MQTT over loopback — and the
accuracy computed from the predictions that came back over MQTT is compared with the same
images classified offline.
"""

import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path

import numpy as np

from splitleak.broker import topics, wire
from splitleak.broker.server import free_port, start_broker
from splitleak.broker.urls import connect, make_client
from splitleak.tools.processes import Node


class PredictionLog:
    """Subscribes to every node's predictions and keeps the label per sequence number."""

    def __init__(self, url: str):
        self.labels: dict[int, int] = {}
        self.done = threading.Event()
        self.expected = None
        self.client = make_client(url, f"splitleak-demo-{time.time_ns()}")
        self.client.on_connect = lambda c, *a: c.subscribe(topics.ALL_PREDICTIONS, qos=1)
        self.client.on_message = self._on_message
        connect(self.client)

    def _on_message(self, client, userdata, msg):
        p = wire.decode_prediction(msg.payload)
        self.labels[p["seq"]] = p["label"]
        if self.expected is not None and len(self.labels) >= self.expected:
            self.done.set()

    def wait_for(self, n: int, timeout: float) -> bool:
        self.expected = n
        if len(self.labels) >= n:
            self.done.set()
        return self.done.wait(timeout)

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


def offline_labels(run_dir: Path, images: np.ndarray) -> np.ndarray:
    """What the deployed pipeline should answer: TFLite mobile stage, then the Keras head."""
    import tensorflow as tf

    from splitleak.edge.runtime import MobileStage

    head = tf.keras.models.load_model(run_dir / "head.keras", compile=False)
    activations = MobileStage(run_dir / "mobile.tflite").run(images)
    return head.predict(activations, verbose=0).argmax(axis=1)


def run_pipeline(run_dir: Path, proto, count: int | None = None, engine: str = "amqtt",
                 timeout: float = 300.0) -> dict:
    """Stream the target's validation images through MQTT; return accuracies and node summaries."""
    images, labels = proto.val.images, proto.labels(proto.val)
    count = min(count or len(images), len(images))
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="splitleak-broker-") as tmp:
        broker = stack.enter_context(start_broker(engine, "open", free_port(), tmp))
        print(f"broker: {engine} at {broker.url}")
        cloud = Node("cloud", "cloud", "--run", run_dir, "--broker", broker.url)
        stack.callback(cloud.stop)
        cloud.wait_for("cloud: ready")
        print(f"cloud head: pid {cloud.proc.pid}, subscribed")
        log = PredictionLog(broker.url)
        stack.callback(log.close)
        edge = Node("edge", "edge", "--model", run_dir / "mobile.tflite", "--broker", broker.url,
                    "--node-id", "demo-node", "--source", "lite-val", "--count", count, "--json")
        stack.callback(edge.stop)
        print(f"edge node: pid {edge.proc.pid}, streaming {count} validation images")
        if edge.wait(timeout) != 0:
            raise RuntimeError(f"the edge node failed:\n{edge.tail()}")
        complete = log.wait_for(count, timeout=60)
        cloud.stop()
        print("".join(line for line in cloud.output if line.startswith("cloud:")).strip())
    got = np.array([log.labels.get(i, -1) for i in range(count)])
    expected = offline_labels(run_dir, images[:count])
    return {
        "frames": count,
        "predictions_received": len(log.labels),
        "complete": complete,
        "mqtt_accuracy": float(np.mean(got == labels[:count])),
        "offline_accuracy": float(np.mean(expected == labels[:count])),
        "agreement": float(np.mean(got == expected)),
    }
