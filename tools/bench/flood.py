"""A flood of fake node ids: one valid frame from each of many node ids, then a real node.

The cloud head and the live eavesdropper keep state per node; an attacker who may publish can
invent node ids without end. Both keep at most --max-nodes nodes (broker/inbox.py NodeTable).
The flood is paced by the predictions coming back (never more than AHEAD frames unanswered),
so every fake node reaches the cloud head. Resident memory of both subscribers is sampled once
the first WARMUP share of the flood is answered ("start") and when it ends ("end"); then a real
edge node streams. Passed: neither grew more than FLAT, and every real frame was answered.
"""

import threading
import time

import numpy as np

from splitleak.tools.bench.soak import memory_change, memory_lines, rss_mib
from splitleak.tools.bench.target import ENGINE, data_args, finished_run

NODES = 1_000_000  # fake node ids, one frame each
FLAT = 0.10  # resident memory may move this much (relative) from start to end
WARMUP = 0.2  # share of the flood before "start": every node table is full well before
AHEAD = 2_000  # frames published but not yet answered, at most
REAL_FRAMES = 20


class _Answers:
    """Counts the predictions the cloud head publishes (any node)."""

    def __init__(self, url: str):
        from splitleak.broker import topics
        from splitleak.broker.urls import connect, make_client

        self.count = 0
        self.client = make_client(url, f"splitleak-flood-{time.time_ns()}")
        self.client.on_connect = lambda c, *a: c.subscribe(topics.ALL_PREDICTIONS, qos=0)
        self.client.on_message = self._on_message
        self.subscribed = threading.Event()
        self.client.on_subscribe = lambda *a: self.subscribed.set()
        connect(self.client)
        self.subscribed.wait(10)

    def _on_message(self, client, userdata, msg):
        self.count += 1

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


def run(run_dir=None, *, split_after: int | None = None, engine: str = ENGINE,
        nodes: int = NODES, max_nodes: int | None = None, omniglot_dir=None,
        progress: bool = True) -> dict:
    """Flood `nodes` fake node ids at a fresh broker's cloud head and eavesdropper (each keeping
    at most `max_nodes`), then stream a real node; memory, counts and `passed`."""
    from tqdm import tqdm

    from splitleak.broker import topics, wire
    from splitleak.broker.inbox import MAX_NODES
    from splitleak.broker.urls import connect, make_client
    from splitleak.cloud import rundir
    from splitleak.tools.deploy.demo import Deployment

    max_nodes = max_nodes or MAX_NODES
    if nodes < 1 or max_nodes < 1:
        raise ValueError("--nodes and --max-nodes must be positive")
    run_dir, _ = finished_run(run_dir, split_after)
    zeros = np.zeros(rundir.activation_shape(run_dir), np.float32)
    with Deployment(run_dir, engine) as dep:
        cloud = dep.start_cloud("--json", "--max-nodes", max_nodes)
        spy = dep.start_eavesdropper("--json", "--max-nodes", max_nodes)
        pids = {"cloud": cloud.proc.pid, "eavesdropper": spy.proc.pid}
        answers = _Answers(dep.broker.url)
        dep.callback(answers.close)
        flood = make_client(dep.broker.url, "splitleak-flood-publisher")
        connect(flood)
        dep.callback(flood.loop_stop)
        start = end = None
        began = time.monotonic()
        for i in tqdm(range(nodes), desc="fake nodes", unit="node", disable=not progress,
                      mininterval=1.0):
            node = f"fake-{i:07d}"
            flood.publish(topics.activations(node),
                          wire.encode(wire.Frame(node, 0, time.time(), zeros)), qos=0)
            while i - answers.count >= AHEAD:
                time.sleep(0.001)
            if start is None and answers.count >= WARMUP * nodes:
                start = {name: rss_mib(pid) for name, pid in pids.items()}
        deadline = time.monotonic() + 120
        while answers.count < nodes and time.monotonic() < deadline:
            time.sleep(0.05)
        flood_seconds, answered = time.monotonic() - began, answers.count
        end = {name: rss_mib(pid) for name, pid in pids.items()}
        start = start or end
        edge = dep.start_edge("--node-id", "real", "--count", REAL_FRAMES, "--source",
                              "lite-val", "--wait", 30, "--json", *data_args(omniglot_dir))
        if edge.wait(300) != 0:
            raise OSError(f"the real edge node failed: {edge.tail(1).strip()}")
        cloud.stop()
        spy.stop()
        real, cloud_summary, spy_summary = edge.json(), cloud.json(), spy.json()
    memory = memory_change(start, end)
    return {"bench": "flood", "engine": engine, "nodes": nodes, "max_nodes": max_nodes,
            "answered": answered, "flood_seconds": round(flood_seconds, 1),
            "nodes_per_second": round(nodes / flood_seconds, 1),
            "cloud_nodes_kept": len(cloud_summary["nodes"]),
            "cloud_nodes_evicted": cloud_summary["nodes_evicted"],
            "eavesdropper_nodes_kept": len(spy_summary["nodes"]),
            "eavesdropper_nodes_evicted": spy_summary["nodes_evicted"],
            "real_sent": real["sent"], "real_answered": real["predictions"], "memory": memory,
            "passed": real["predictions"] == real["sent"] == REAL_FRAMES
            and all(m["change"] <= FLAT for m in memory.values())}


def describe(r: dict) -> str:
    lines = [f"flood ({r['engine']}): {r['nodes']} fake node ids in {r['flood_seconds']} s "
             f"({r['nodes_per_second']}/s), {r['answered']} answered; each subscriber keeps "
             f"at most {r['max_nodes']} nodes (cloud kept {r['cloud_nodes_kept']}, evicted "
             f"{r['cloud_nodes_evicted']}; eavesdropper kept {r['eavesdropper_nodes_kept']}, "
             f"evicted {r['eavesdropper_nodes_evicted']}); a real node after it: "
             f"{r['real_answered']} of {r['real_sent']} frames answered"]
    return "\n".join(lines + memory_lines(r))
