"""Scale-out through Mosquitto: cloud heads sharing one stream (MQTT 5 shared subscription), a
head killed mid-stream, an edge-side broker bridged to a cloud-side one, a 50-node fleet."""

import time
from collections import Counter

import pytest

from splitleak.broker.server import free_port, start_broker
from splitleak.cloud import rundir
from splitleak.tools.deploy.demo import PredictionLog

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def heads(dep, n: int, group: str = "heads") -> list:
    return [dep.start_cloud("--share", group, "--client-id", f"head-{i}", "--json")
            for i in range(n)]


def answers_of(dep) -> PredictionLog:
    log = PredictionLog(dep.broker.url)
    dep.callback(log.close)
    return log


def counts(log: PredictionLog, node: str, frames: int) -> tuple[int, int, int]:
    """(frames answered, frames never answered, extra answers) for one node's 0..frames-1."""
    per_seq = [log.answers[node, seq] for seq in range(frames)]
    return (sum(c > 0 for c in per_seq), sum(c == 0 for c in per_seq),
            sum(max(0, c - 1) for c in per_seq))


def test_two_heads_answer_every_frame_exactly_once(deploy, png_source):
    dep = deploy("mosquitto")
    clouds = heads(dep, 2)
    log = answers_of(dep)
    edge = dep.start_edge("--node-id", "n", "--source", png_source, "--count", 300, "--rate",
                          300, "--json")
    assert edge.wait(120) == 0, edge.tail()
    assert log.wait_for(300, timeout=30)
    time.sleep(0.5)  # a duplicate would come now
    for cloud in clouds:
        cloud.stop()
    accepted = [cloud.json()["accepted"] for cloud in clouds]
    assert counts(log, "n", 300) == (300, 0, 0)
    assert sum(accepted) == 300 and min(accepted) > 50, accepted  # the broker split the stream
    assert edge.json()["predictions"] == 300


def test_a_head_killed_mid_stream_is_survived_and_its_frames_come_back_with_it(
        deploy, png_source):
    """SIGKILL one of two heads mid-stream: the other keeps answering; the frames the broker
    had handed the dead head wait in its session and are answered when a head with its client
    id comes back (nothing is lost then)."""
    dep = deploy("mosquitto")
    first, second = heads(dep, 2)
    log = answers_of(dep)
    frames = 600
    edge = dep.start_edge("--node-id", "n", "--source", png_source, "--count", frames,
                          "--rate", 150, "--json", "--wait", 60)
    assert log.wait_for(150, timeout=60)
    first.proc.kill()
    first.proc.wait()
    killed_at = len(log.labels)
    time.sleep(1.5)
    assert len(log.labels) > killed_at + 50, "the surviving head stopped answering"
    assert edge.proc.poll() is None, "the stream ended before the head came back"
    before = counts(log, "n", frames)  # not final: the stream is still running
    restarted = dep.start_cloud("--share", "heads", "--client-id", "head-0", "--json")
    assert edge.wait(120) == 0, edge.tail()
    assert log.wait_for(frames, timeout=30), f"{len(log.labels)} of {frames} answered"
    time.sleep(0.5)
    answered, lost, extra = counts(log, "n", frames)
    restarted.stop()
    second.stop()
    back = restarted.json()["accepted"]
    print(f"head killed after {killed_at} predictions: {before[1]} frames unanswered while it "
          f"was down (some not yet sent); after it came back {lost} lost, {extra} answered "
          f"twice; the restarted head answered {back}")
    assert (answered, lost) == (frames, 0)
    assert extra <= 100  # at most the dead head's in-flight window (max_inflight) twice


def test_a_bridge_carries_the_stream_from_an_edge_broker_to_a_cloud_broker(
        deploy, tiny_run, png_source, tmp_path):
    cloud_side = deploy("mosquitto")
    cloud = cloud_side.start_cloud("--json")
    log = answers_of(cloud_side)
    edge_broker = start_broker("mosquitto", "open", free_port(), tmp_path / "edge-broker",
                               bridge=cloud_side.broker.url)
    cloud_side.callback(edge_broker.stop)
    assert "connection splitleak-bridge" in (tmp_path / "edge-broker/mosquitto.conf").read_text()
    time.sleep(1.0)  # the bridge connects
    edge = cloud_side.start("edge", "edge", "--model", rundir.mobile(tiny_run), "--broker",
                            edge_broker.url, "--node-id", "far", "--source", png_source,
                            "--count", 200, "--rate", 200, "--json")
    assert edge.wait(120) == 0, edge.tail()
    assert log.wait_for(200, timeout=30)
    cloud.stop()
    assert counts(log, "far", 200) == (200, 0, 0)
    summary = cloud.json()
    assert summary["accepted"] == 200 and summary["nodes"]["far"]["gaps"] == 0
    assert summary["nodes"]["far"]["state"] == "offline"  # its statuses crossed too (the last
    # one, at the edge's clean close, says offline)
    assert edge.json()["predictions"] == 200  # and the predictions came back over the bridge


def test_a_50_node_fleet_streams_without_loss(deploy, png_source, tmp_path):
    dep = deploy("mosquitto")
    cloud = dep.start_cloud("--json")
    spy = dep.start_eavesdropper("--json")
    edge = dep.start_edge("--node-id", "f", "--fleet", 50, "--source", png_source, "--count", 20,
                          "--json")
    assert edge.wait(180) == 0, edge.tail()
    summary = edge.json()
    assert (summary["nodes"], summary["sent"], summary["acknowledged"]) == (50, 1000, 1000)
    assert summary["predictions"] == 1000
    time.sleep(0.5)
    cloud.stop()
    spy.stop()
    nodes = cloud.json()["nodes"]
    assert len(nodes) == 50 and all((n["frames"], n["gaps"]) == (20, 0) for n in nodes.values())
    assert Counter(spy.json()["nodes"].values()) == Counter({20: 50})
