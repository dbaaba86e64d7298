"""Property-based fuzzing of a running cloud head.

Hypothesis publishes random and mutated payloads on splitleak/fuzz/activations, junk status
messages, frames on malformed and foreign topics, then one valid frame from node "probe".
The head must stay up, answer the probe, and at the end its summary must count every
rejection by the same reason the wire decoder gives here.
"""

import queue
from collections import Counter

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from splitleak.broker import topics, urls, wire
from tests.conftest import ENGINES

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SHAPE = (1, 1, 32)
GOOD = wire.encode(wire.Frame("fuzz", 3, 1_700_000_000.0,
                              np.linspace(-1, 1, 32, dtype=np.float32).reshape(SHAPE)))


def mutated(edits, cut) -> bytes:
    payload = bytearray(GOOD)
    for offset, value in edits:
        payload[offset] = value
    return bytes(payload[:cut])


SPECIAL = [float(np.float32(x)) for x in (0.0, 1.0, -2.5, 3e38, -3e38, np.nan, np.inf)]


def frame(seq, values) -> bytes:
    """A well-formed frame carrying `values` as they are, NaN and infinity included."""
    quant = {"scale": 0.5, "zero_point": -3} if values.dtype == np.int8 else {}
    header = wire.encode(wire.Frame("fuzz", seq, 5.0, np.zeros_like(values), **quant))
    return header[:-values.nbytes] + values.tobytes()


FRAMES = st.builds(frame, st.integers(0, 5) | st.integers(0, 2**64 - 1),
                   arrays(np.float32, SHAPE, elements=st.floats(width=32))
                   | arrays(np.float32, SHAPE, elements=st.sampled_from(SPECIAL))
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


class Expected:
    """What the cloud head must count, by the shared decoder's verdicts."""

    def __init__(self):
        self.reasons: Counter = Counter()
        self.seqs: set[int] = set()
        self.duplicates = 0

    def add(self, topic: str, payload: bytes) -> None:
        if topic == topics.status("fuzz-status"):
            self._verdict(wire.decode_status, payload)
        elif topic == "splitleak/bad node/activations":
            self.reasons["topic"] += 1
        elif topic == topics.activations("fuzz"):
            frame = self._verdict(lambda p: wire.decode(p, expect_shape=SHAPE), payload)
            if frame is not None and frame.node_id != "fuzz":
                self.reasons["node_id"] += 1
            elif frame is not None and frame.seq in self.seqs:
                self.duplicates += 1
            elif frame is not None:
                self.seqs.add(frame.seq)
        # anything else is on a topic the head does not subscribe to

    def _verdict(self, decode, payload):
        try:
            return decode(payload)
        except wire.WireError as exc:
            self.reasons[exc.reason] += 1
            return None


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
def test_running_cloud_head_survives_fuzzing(engine, deploy, probe_client):
    dep = deploy(engine)
    cloud = dep.start_cloud("--json")
    fuzzer, answers = probe_client(dep.broker.url)
    expected, probes = Expected(), [0]

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
