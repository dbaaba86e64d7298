"""Fuzzing a running cloud head (and, through `splitleak bench fuzz`, the eavesdropper).

Hypothesis publishes random and mutated payloads on splitleak/fuzz/activations, junk status
messages, frames on malformed and foreign topics, then one valid frame from node "probe".
The head must stay up, answer the probe, and at the end its summary must count every
rejection by the same reason the wire decoder gives here.
"""

import json
import queue

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from splitleak.broker import topics, urls, wire
from splitleak.cloud import rundir
from splitleak.tools.bench.fuzz import SPECIAL, Expected, frame
from tests.conftest import ENGINES, splitleak

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SHAPE = (1, 1, 32)  # tiny_run's activation (the default split); checked below

GOOD = wire.encode(wire.Frame("fuzz", 3, 1_700_000_000.0,
                              np.linspace(-1, 1, 32, dtype=np.float32).reshape(SHAPE)))


def mutated(edits, cut) -> bytes:
    payload = bytearray(GOOD)
    for offset, value in edits:
        payload[offset] = value
    return bytes(payload[:cut])


FRAMES = st.builds(frame, st.integers(0, 5) | st.integers(0, 2**64 - 1),
                   arrays(np.float32, SHAPE, elements=st.floats(width=32))
                   | arrays(np.float32, SHAPE, elements=st.sampled_from([float(x) for x in SPECIAL]))
                   | arrays(np.int8, SHAPE))

MESSAGES = st.lists(st.one_of(
    st.tuples(st.just(topics.activations("fuzz")), FRAMES),
    st.tuples(st.just(topics.activations("fuzz")), st.binary(max_size=200)),
    st.tuples(st.just(topics.activations("fuzz")), st.builds(
        mutated,
        st.lists(st.tuples(st.integers(0, 48) | st.integers(0, len(GOOD) - 1),  # header first
                           st.integers(0, 255)), max_size=3),
        st.just(len(GOOD)) | st.integers(0, len(GOOD)))),
    st.tuples(st.just(topics.status("fuzz-status")), st.binary(max_size=100)),
    st.tuples(st.sampled_from(["splitleak/bad node/activations", "junk/topic",
                               "splitleak/fuzz/predictions", "splitleak/a/b/activations"]),
              st.just(GOOD)),
), max_size=8)


@pytest.fixture
def probe_client():
    """probe_client(url) -> (paho client, queue of the probe's answered sequence numbers)."""
    made = []

    def connect(url):
        client = urls.make_client(url, "fuzzer")
        answers = queue.Queue()
        client.on_message = lambda c, u, msg: answers.put(wire.decode_prediction(msg.payload)["seq"])
        made.append(client)
        urls.connect(client)
        client.subscribe(topics.predictions("probe"), qos=1)
        return client, answers

    yield connect
    for client in made:
        client.disconnect()
        client.loop_stop()


@pytest.mark.parametrize("engine", ENGINES)
def test_running_cloud_head_survives_fuzzing(engine, deploy, probe_client, tiny_run):
    assert rundir.activation_shape(tiny_run) == SHAPE
    dep = deploy(engine)
    cloud = dep.start_cloud("--json")
    fuzzer, answers = probe_client(dep.broker.url)
    expected, probes = Expected(SHAPE), [0]

    def publish(topic, payload):
        fuzzer.publish(topic, payload, qos=1).wait_for_publish(timeout=10)

    @settings(max_examples=50, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow])
    @given(MESSAGES)
    def fuzz(messages):
        for topic, payload in messages:
            publish(topic, payload)
            expected.add(topic, payload)
        seq = probes[0]
        probes[0] += 1
        publish(topics.activations("probe"),
                wire.encode(wire.Frame("probe", seq, 1.0, np.zeros(SHAPE, np.float32))))
        assert answers.get(timeout=20) == seq, "the head did not answer the probe"
        assert cloud.proc.poll() is None, cloud.tail()

    fuzz()
    assert cloud.stop() == 0
    summary = cloud.json()
    print(engine, "rejected:", summary["rejected"], "valid:", len(expected.seqs))
    head_output = summary["rejected"].pop("head_output", 0)  # finite but huge activations
    assert summary["rejected"] == {k: n for k, n in expected.reasons.items() if n}
    assert summary["nodes"]["probe"]["frames"] == probes[0]
    fuzz_node = summary["nodes"].get("fuzz", {"frames": 0, "duplicates": 0})
    assert (fuzz_node["frames"], fuzz_node["duplicates"]) == (len(expected.seqs),
                                                              expected.duplicates)
    assert summary["accepted"] == probes[0] + len(expected.seqs) - head_output


@pytest.mark.parametrize("engine", ENGINES)
def test_bench_fuzz_counts_match_at_the_cloud_head_and_the_eavesdropper(engine, tiny_run):
    """The short form of `splitleak bench fuzz` (the long form sends 10,000 messages)."""
    result = splitleak("bench", "fuzz", "--run", tiny_run, "--engine", engine, "--messages", 600,
                       "--seed", 1, "--json", timeout=300)
    report = json.loads(result.stdout)
    assert result.returncode == 0 and report["passed"], result.stdout[-3000:]
    for who in ("cloud", "eavesdropper"):
        assert report[who]["match"] and sum(report[who]["rejected"].values()) > 100
    assert report["cloud"]["duplicates"] > 0 and report["eavesdropper"]["frames"] > 0
