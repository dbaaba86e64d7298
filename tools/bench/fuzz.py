"""Fuzzing the running subscribers: generated malformed messages through a real broker.

`messages(n, shape, seed)` makes n (topic, payload) pairs from a seeded generator: valid frames (odd
values, NaN and infinity, int8, huge sequence numbers), a valid frame with bytes overwritten
and cut, random bytes, junk statuses, and topics that are malformed or not subscribed to.
`Expected` says, with the shared wire decoder, what a subscriber must count for each message;
`run` publishes them at the cloud head and the eavesdropper and compares what they counted
(`splitleak bench fuzz`; `describe` turns its report into text).
"""

import subprocess
from collections import Counter
from pathlib import Path

import numpy as np

from splitleak.broker import topics, wire
from splitleak.tools.bench.target import ENGINE, finished_run

MESSAGES, SEED = 10_000, 0  # how many messages `run` generates, and the generator's seed
NODE, STATUS_NODE = "fuzz", "fuzz-status"
BAD_TOPICS = ["splitleak/bad node/activations", "splitleak/a/b/activations",
              "splitleak/fuzz/predictions", "junk/topic"]
SPECIAL = np.array([0.0, 1.0, -2.5, 3e38, -3e38, np.nan, np.inf], np.float32)


def frame(seq: int, values: np.ndarray, node: str = NODE) -> bytes:
    """A well-formed frame carrying `values` as they are, NaN and infinity included."""
    quant = {"scale": 0.5, "zero_point": -3} if values.dtype == np.int8 else {}
    header = wire.encode(wire.Frame(node, seq, 5.0, np.zeros_like(values), **quant))
    return header[:-values.nbytes] + values.tobytes()


def messages(n: int, shape: tuple, seed: int = 0) -> list[tuple[str, bytes]]:
    """n generated (topic, payload) pairs for activations of `shape`, the same for the same seed."""
    rng = np.random.default_rng(seed)
    good = frame(3, np.linspace(-1, 1, int(np.prod(shape)), dtype=np.float32).reshape(shape))
    activations = topics.activations(NODE)
    out = []
    for _ in range(n):
        kind = rng.integers(6)
        seq = int(rng.integers(0, 50)) if rng.random() < 0.8 else int(rng.integers(0, 2**63))
        if kind == 0:  # a valid frame, often with values a head must survive
            values = (rng.choice(SPECIAL, shape) if rng.random() < 0.3
                      else rng.integers(-128, 128, shape).astype(np.int8) if rng.random() < 0.3
                      else rng.standard_normal(shape).astype(np.float32))
            out.append((activations, frame(seq, values)))
        elif kind in (1, 2):  # a valid frame with 1-3 bytes overwritten, maybe cut short
            payload = bytearray(good)
            for _ in range(rng.integers(1, 4)):
                at = int(rng.integers(0, 49) if rng.random() < 0.7 else rng.integers(len(good)))
                payload[at] = int(rng.integers(256))
            cut = len(good) if rng.random() < 0.5 else int(rng.integers(len(good)))
            out.append((activations, bytes(payload[:cut])))
        elif kind == 3:  # random bytes
            out.append((activations, rng.bytes(int(rng.integers(0, 200)))))
        elif kind == 4:  # a status that is not one
            out.append((topics.status(STATUS_NODE), rng.bytes(int(rng.integers(0, 100)))))
        else:  # a good frame on a malformed topic, or one nobody subscribed to
            out.append((BAD_TOPICS[rng.integers(len(BAD_TOPICS))], good))
    return out


class Expected:
    """What a subscriber must count, by the shared decoder's verdicts.

    shape: the activation shape the subscriber checks (None: any); statuses: whether it
    subscribes to statuses (the cloud head) or only to activations (the eavesdropper).
    valid: frames that decode; seqs: their distinct sequence numbers; duplicates: the rest."""

    def __init__(self, shape: tuple | None, statuses: bool = True):
        self.shape, self.statuses = shape, statuses
        self.reasons: Counter = Counter()
        self.seqs: set[int] = set()
        self.valid = self.duplicates = 0

    def add(self, topic: str, payload: bytes) -> None:
        if topic == topics.status(STATUS_NODE):
            if self.statuses:
                self._verdict(wire.decode_status, payload)
        elif topic == "splitleak/bad node/activations":
            self.reasons["topic"] += 1
        elif topic == topics.activations(NODE):
            got = self._verdict(lambda p: wire.decode(p, expect_shape=self.shape), payload)
            if got is not None and got.node_id != NODE:
                self.reasons["node_id"] += 1
            elif got is not None:
                self.valid += 1
                self.duplicates += got.seq in self.seqs
                self.seqs.add(got.seq)
        # anything else is on a topic neither subscribes to

    def _verdict(self, decode, payload):
        try:
            return decode(payload)
        except wire.WireError as exc:
            self.reasons[exc.reason] += 1
            return None


def run(run_dir: Path | None = None, *, split_after: int | None = None, engine: str = ENGINE,
        n: int = MESSAGES, seed: int = SEED, timeout: float = 600.0) -> dict:
    """Publish `n` generated messages, then a probe frame, at a cloud head and an eavesdropper
    (no decoder) behind a fresh broker, deploying `run_dir` (target.finished_run); what each
    counted against what it should have, and `passed`: both stayed up, the probe was answered
    and every count matches."""
    from tqdm import tqdm

    from splitleak.broker.urls import connect, make_client
    from splitleak.cloud import rundir
    from splitleak.tools.deploy.demo import Deployment, PredictionLog

    if n < 1:
        raise ValueError(f"--messages must be positive, got {n}")
    run_dir, _ = finished_run(run_dir, split_after)
    shape = rundir.activation_shape(run_dir)
    generated = messages(n, shape, seed)
    cloud_expects, spy_expects = Expected(shape), Expected(None, statuses=False)
    for topic, payload in generated:
        cloud_expects.add(topic, payload)
        spy_expects.add(topic, payload)
    probe = frame(0, np.zeros(shape, np.float32), node="probe")
    with Deployment(run_dir, engine) as dep:
        cloud = dep.start_cloud("--json")
        spy = dep.start_eavesdropper("--json", "--count", spy_expects.valid + 1)
        answers = PredictionLog(dep.broker.url, "probe")
        dep.callback(answers.close)
        client = make_client(dep.broker.url, "splitleak-fuzzer")
        connect(client)
        dep.callback(lambda: (client.disconnect(), client.loop_stop()))
        sent = [client.publish(t, p, qos=1) for t, p in tqdm(generated, desc="fuzz", unit="msg")]
        sent.append(client.publish(topics.activations("probe"), probe, qos=1))
        for info in sent:
            info.wait_for_publish(timeout)
        answered = answers.wait_for(1, timeout)  # after every fuzz message: one publisher, in order
        try:
            spy_code = spy.wait(timeout)
        except subprocess.TimeoutExpired:  # it never counted every valid frame
            spy_code = spy.stop()
        cloud_code = cloud.stop()
        cloud_summary, spy_summary = cloud.json(), spy.json()
    fuzz_node = cloud_summary["nodes"].get(NODE, {"frames": 0, "duplicates": 0})
    report = {"bench": "fuzz", "engine": engine, "messages": n, "seed": seed,
              "probe_answered": answered,
              "exit_codes": {"cloud": cloud_code, "eavesdropper": spy_code},
              "cloud": _compare(cloud_expects, cloud_summary["rejected"], fuzz_node["frames"],
                                fuzz_node["duplicates"]),
              "eavesdropper": _compare(spy_expects, spy_summary["rejected"],
                                       spy_summary["nodes"].get(NODE, 0))}
    report["passed"] = (report["probe_answered"] and set(report["exit_codes"].values()) == {0}
                        and report["cloud"]["match"] and report["eavesdropper"]["match"])
    return report


def _compare(expected: Expected, rejected: dict, frames: int, duplicates=None) -> dict:
    """Counted against expected: rejections by reason, and frames: distinct ones with the
    duplicates apart (the cloud head), or every valid one (the eavesdropper: duplicates None).
    head_output (the head's non-finite answer to huge finite activations) is not predictable
    here: reported, not compared."""
    counted = {k: v for k, v in sorted(rejected.items()) if k != "head_output"}
    want = {k: v for k, v in sorted(expected.reasons.items()) if v}
    want_frames = expected.valid if duplicates is None else len(expected.seqs)
    result = {"rejected": counted, "expected_rejected": want, "frames": frames,
              "expected_frames": want_frames, "head_output": rejected.get("head_output", 0)}
    match = counted == want and frames == want_frames
    if duplicates is not None:
        result |= {"duplicates": duplicates, "expected_duplicates": expected.duplicates}
        match = match and duplicates == expected.duplicates
    return result | {"match": match}


def describe(r: dict) -> str:
    lines = [f"fuzz ({r['engine']}, {r['messages']:,} messages, seed {r['seed']}): probe answered "
             f"{r['probe_answered']}, exit codes {r['exit_codes']}"]
    for who in ("cloud", "eavesdropper"):
        c = r[who]
        lines.append(f"  {who}: {c['frames']} frames (expected {c['expected_frames']}), rejected "
                     f"{c['rejected']} (expected {c['expected_rejected']})"
                     + (f", duplicates {c['duplicates']} (expected {c['expected_duplicates']})"
                        if "duplicates" in c else "") + f": {'match' if c['match'] else 'MISMATCH'}")
    lines.append("passed" if r["passed"] else "FAILED")
    return "\n".join(lines)
