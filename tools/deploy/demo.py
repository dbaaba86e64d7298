"""The demo deployment on one machine: broker, cloud head and edge node, then the check.

Everything runs as it would on separate machines — the broker in this process (amqtt) or as
a subprocess (Mosquitto), the cloud head and the edge nodes as child processes talking MQTT
over loopback — and the accuracy computed from the predictions that came back over MQTT is
compared with the same images classified offline. `Deployment` is the reusable part (the
pipeline benchmark and the tests start their processes with it).
"""

import logging
import tempfile
import time
from collections import Counter
from contextlib import ExitStack
from pathlib import Path

import numpy as np

from splitleak.broker import profiles, topics, wire
from splitleak.broker.server import free_port, start_broker
from splitleak.broker.urls import connect, make_client
from splitleak.cloud import rundir
from splitleak.cloud.service import describe
from splitleak.tools.deploy.processes import Node

log = logging.getLogger("splitleak.demo")
DEFENSE_SEED = 0  # the demo node's noise seed: the offline check draws the same noise


class Deployment:
    """A broker, plus cloud heads and edge nodes as child processes; a context manager.

    On exit (errors included) every child gets SIGTERM (SIGKILL if it hangs) and the broker
    stops. `restart_broker` stops the broker and starts it again on the same port and folder.
    With the auth and tls profiles every node logs in through the broker's credentials.json.
    """

    def __init__(self, run_dir, engine: str = "amqtt", profile: str = "open", directory=None,
                 nodes=profiles.DEFAULT_NODES, bridge: str | None = None, host: str = "127.0.0.1",
                 edge_prefix=()):
        """host: the address the broker listens on; edge_prefix: argv the edge nodes run under
        (on the lab network: this process in the broker's namespace, the edge in the device's)."""
        self.run_dir, self.host, self.edge_prefix = Path(run_dir), host, tuple(edge_prefix)
        self.engine, self.profile, self.nodes = engine, profile, tuple(nodes)
        self.bridge = bridge  # a broker URL this one bridges the splitleak topics to
        self.children: list[Node] = []
        self.broker = None
        self._stack = ExitStack()
        try:
            if directory is None:  # removed after everything stopped (the stack is LIFO)
                directory = self._stack.enter_context(
                    tempfile.TemporaryDirectory(prefix="splitleak-broker-"))
            self._stack.callback(self._stop_all)
            self.directory = Path(directory)
            self.port = free_port(host)
            self.start_broker()
        except BaseException:
            self._stack.close()
            raise

    def __enter__(self) -> "Deployment":
        return self

    def __exit__(self, *exc) -> None:
        self._stack.close()

    def callback(self, fn, *args) -> None:
        """Call fn(*args) on exit, before the children and the broker stop."""
        self._stack.callback(fn, *args)

    def start_broker(self):
        self.broker = start_broker(self.engine, self.profile, self.port, self.directory,
                                   host=self.host, nodes=self.nodes, bridge=self.bridge)
        return self.broker

    def restart_broker(self, kill: bool = False, pause: float = 0.0):
        """Stop the broker (SIGKILL with kill=True, as a crash), wait `pause` s, start it again."""
        if kill:
            self.broker.kill()
        else:
            self.broker.stop()
        time.sleep(pause)
        return self.start_broker()

    def _stop_all(self) -> None:
        try:
            for node in reversed(self.children):
                node.stop()
        finally:
            if self.broker is not None:
                self.broker.stop()

    def login(self) -> list:
        """Broker options for a node: the URL, the credentials file and the CA if needed."""
        args = ["--broker", self.broker.url]
        if self.profile != "open":
            args += ["--credentials", self.directory / profiles.CREDENTIALS_FILE]
        if self.broker.ca_file:
            args += ["--ca", self.broker.ca_file]
        return args

    def start(self, name: str, *args, ready: str | None = None, wait: bool = True,
              prefix=()) -> Node:
        """`splitleak *args` as a child; waits for a line containing `ready` if given, unless
        `wait` is False (then `node.wait_for(node.ready)` later: children start side by side)."""
        node = Node(name, *args, prefix=prefix)
        node.ready = ready
        self.children.append(node)
        if ready and wait:
            node.wait_for(ready)
        return node

    def start_cloud(self, *args, run_dir=None, wait: bool = True) -> Node:
        """A cloud head for `run_dir` (default: the deployment's), once it has subscribed."""
        return self.start("cloud", "cloud", "--run", run_dir or self.run_dir, *self.login(),
                          *args, ready="cloud: ready", wait=wait)

    def start_eavesdropper(self, *args, wait: bool = True) -> Node:
        """`splitleak attack live` on the broker (pass --decoder, --json, …), once subscribed."""
        return self.start("eavesdropper", "attack", "live", "--broker", self.broker.url, *args,
                          ready="attacker: listening", wait=wait)

    def start_edge(self, *args, int8: bool = False) -> Node:
        """An edge node running the run's mobile stage; pass --node-id, --source, --count, …"""
        return self.start("edge", "edge", "--model", rundir.mobile(self.run_dir, int8),
                          *self.login(), *args, prefix=self.edge_prefix)


class PredictionLog:
    """Subscribes to every node's predictions (or one `node`'s) and keeps the label per
    sequence number, and per (node, sequence number) how many predictions came.

    With a `client_id` the session is persistent: predictions published while the log is
    away (a broker restart) wait for it."""

    def __init__(self, url: str, node: str | None = None, client_id: str | None = None):
        self.labels: dict[int, int] = {}
        self.answers: Counter = Counter()  # (node, seq) -> predictions received
        self.bad = 0
        topic = topics.predictions(node) if node else topics.ALL_PREDICTIONS
        self.client = make_client(url, client_id or f"splitleak-demo-{time.time_ns()}",
                                  persistent=client_id is not None)
        self.client.on_connect = lambda c, *a: c.subscribe(topic, qos=1)
        self.client.on_message = self._on_message
        connect(self.client)

    def _on_message(self, client, userdata, msg):
        try:
            p = wire.decode_prediction(msg.payload)
        except wire.WireError as exc:  # never raise in paho's thread: it would stop
            self.bad += 1
            log.warning("dropped a bad prediction: %s", exc)
            return
        self.labels[p["seq"]] = p["label"]
        self.answers[p["node_id"], p["seq"]] += 1

    def wait_for(self, n: int, timeout: float) -> bool:
        """Wait until predictions for `n` sequence numbers have arrived; False on timeout."""
        deadline = time.monotonic() + timeout
        while len(self.labels) < n and time.monotonic() < deadline:
            time.sleep(0.02)
        return len(self.labels) >= n

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


def frame_bytes(run_dir: Path, node: str) -> int:
    """Bytes on the wire per activation frame from `node` running the run's float32 stage."""
    shape = rundir.activation_shape(run_dir)
    return len(wire.encode(wire.Frame(node, 0, 0.0, np.zeros(shape, np.float32))))


def offline_labels(run_dir: Path, images: np.ndarray, defense: str | None = None,
                   seed: int | None = None) -> np.ndarray:
    """What the deployed pipeline should answer: what the device publishes (TFLite mobile
    stage and defences; with the node's noise seed, the same noise), then the Keras head."""
    import tensorflow as tf

    head = tf.keras.models.load_model(Path(run_dir) / rundir.HEAD_KERAS, compile=False)
    activations = rundir.device(run_dir, defense, seed).run(images)
    return head.predict(activations, verbose=0).argmax(axis=1)


def start_attacker(dep: Deployment, attack_dir, web: str, save: Path, count: int | None) -> Node:
    """The eavesdropper: an ordinary subscriber of the activation topic, with its live page
    (started, not yet waited for); it stops after `count` reconstructions, or when stopped."""
    until = ("--count", count) if count is not None else ()
    return dep.start_eavesdropper("--decoder", attack_dir, "--web", web, "--save", save, *until,
                                  "--json", wait=False)


def start_listeners(dep: Deployment, attacker: tuple | None):
    """The cloud head, the eavesdropper (with `attacker`: start_attacker's arguments after `dep`)
    and a prediction log, all subscribed: (cloud, spy or None, predictions)."""
    print(f"broker: {dep.engine} at {dep.broker.url}")
    cloud = dep.start_cloud("--json", wait=False)  # both load TensorFlow: side by side
    spy = start_attacker(dep, *attacker) if attacker else None
    cloud.wait_for(cloud.ready)
    print(f"cloud head: pid {cloud.proc.pid}, subscribed")
    if spy is not None:
        spy.wait_for(spy.ready)
        page = next((line.split()[-1] for line in spy.output if "live page at" in line), None)
        print(f"attacker: pid {spy.proc.pid}, live page at {page}", flush=True)
    predictions = PredictionLog(dep.broker.url)
    dep.callback(predictions.close)
    return cloud, spy, predictions


def saved_reconstructions(folder: Path, node: str, count: int) -> np.ndarray:
    """The PNGs the eavesdropper saved for `node`, by sequence number, as images (ink = 1)."""
    from splitleak.edge.omniglot import ink_from_png

    return np.stack([ink_from_png((folder / node / f"{seq:06d}.png").read_bytes())
                     for seq in range(count)])


def run_pipeline(run_dir: Path, proto, count: int | None = None, engine: str = "amqtt",
                 timeout: float = 300.0, rate: float = 0.0, attack_dir=None,
                 web: str = "127.0.0.1:0", out: Path | None = None, defense: str | None = None,
                 defense_seed: int = DEFENSE_SEED) -> dict:
    """Stream the target's validation images through MQTT; return accuracies and summaries.

    With `attack_dir`, an eavesdropper reconstructs the stream into out/reconstructions. With
    `defense`, the node applies it (noise seeded, so the offline check draws the same noise).
    """
    images, labels = proto.val.images, proto.labels(proto.val)
    count = min(count or len(images), len(images))
    node = "demo-node"
    with Deployment(run_dir, engine) as dep:
        cloud, spy, predictions = start_listeners(dep, attack_dir and (
            attack_dir, web, out / "reconstructions", count))
        guard = ("--defense", defense, "--defense-seed", defense_seed) if defense else ()
        edge = dep.start_edge("--node-id", node, "--source", "lite-val", "--count", count,
                              "--rate", rate, "--json", *guard)
        print(f"edge node: pid {edge.proc.pid}, streaming {count} validation images"
              + (f" at {rate:g} Hz" if rate else ""), flush=True)
        # while it streams: the same images classified offline, and the report's imports
        expected = offline_labels(run_dir, images[:count], defense, defense_seed)
        if spy is not None:
            from splitleak.tools.deploy import report
        if edge.wait(timeout) != 0:
            raise RuntimeError(f"the edge node failed:\n{edge.tail()}")
        complete = predictions.wait_for(count, timeout=60)
        cloud.stop()
        cloud_summary, edge_summary = cloud.json(), edge.json()
        print(describe(cloud_summary))
        if spy is not None and spy.wait(60) != 0:
            raise RuntimeError(f"the eavesdropper failed:\n{spy.tail()}")
    got = np.array([predictions.labels.get(i, -1) for i in range(count)])
    result = {
        "frames": count,
        "predictions_received": len(predictions.labels),
        "complete": complete,
        "mqtt_accuracy": float(np.mean(got == labels[:count])),
        "offline_accuracy": float(np.mean(expected == labels[:count])),
        "agreement": float(np.mean(got == expected)),
        "defense": edge_summary.get("defense", ""),
        "cloud": cloud_summary,
        "edge": edge_summary,
    }
    if spy is not None:
        result["attacker"] = spy.json()
        recons = saved_reconstructions(out / "reconstructions", node, count)
        shape = list(rundir.activation_shape(run_dir))
        result["report"] = str(report.write(out, images[:count], recons, result, result["attacker"],
                                            activation_shape=shape))
    return result
