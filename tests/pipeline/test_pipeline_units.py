"""In-process checks of the pipeline's pieces: status messages, credentials, sequence
accounting and the cloud head's message handling (no broker: its client never connects)."""

import json
import logging
import time

import numpy as np
import pytest

from splitleak.broker import topics, urls, wire
from splitleak.cloud import rundir
from splitleak.cloud.service import CloudHead, NodeStats
from splitleak.edge.runtime import sha256_file
from tests.pipeline.conftest import with_other_int8_hash

SHA = "ab" * 32


def test_status_round_trip_and_offline_will():
    online = wire.decode_status(wire.encode_status("online", SHA, 12.5))
    assert online == {"state": "online", "model_sha256": SHA, "wire_version": wire.VERSION,
                      "started_at": 12.5, "defense": ""}
    assert wire.decode_status(wire.encode_status("offline")) == {"state": "offline"}
    assert json.loads(wire.encode_status("offline")) == {"state": "offline"}


@pytest.mark.parametrize("payload", [
    b"online", b"\xff", b"[]", b'{"state": "busy"}', b'{"state": "online"}',
    json.dumps({"state": "online", "model_sha256": "xyz", "wire_version": 1,
                "started_at": 1}).encode(),
    json.dumps({"state": "online", "model_sha256": SHA, "wire_version": "1",
                "started_at": 1}).encode(),
    b'{"state": "online", "model_sha256": "' + SHA.encode() + b'", "wire_version": 1, '
    b'"started_at": NaN}',
])
def test_status_decoder_is_strict(payload):
    with pytest.raises(wire.WireError):
        wire.decode_status(payload)


def test_status_keeps_a_foreign_wire_version_for_the_cloud_to_report():
    payload = json.dumps({"state": "online", "model_sha256": SHA, "wire_version": 2,
                          "started_at": 1.0}).encode()
    assert wire.decode_status(payload)["wire_version"] == 2


def test_credentials_file(tmp_path):
    path = tmp_path / "credentials.json"
    path.write_text(json.dumps({"pi-0": "s3cret/+", "cloud": "c"}))
    creds = urls.read_credentials(path)
    url = urls.url_for_user("mqtts://other:pw@127.0.0.1:8883", "pi-0", creds)
    assert (url.username, url.password, url.port) == ("pi-0", "s3cret/+", 8883)
    assert urls.parse_url(url.full()) == url
    with pytest.raises(ValueError, match="no password for user 'pi-1'.*--node pi-1"):
        urls.url_for_user("mqtt://h", "pi-1", creds)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        urls.read_credentials(tmp_path / "nope.json")
    path.write_text("[1]")
    with pytest.raises(ValueError, match="must map user names to passwords"):
        urls.read_credentials(path)


def test_refusal_text():
    assert urls.refusal_text(0x87) == "not authorised (reason code 0x87)"
    assert urls.refusal_text(0x80) == "failure (reason code 0x80)"


def test_node_stats_counts_gaps_duplicates_and_restarts():
    stats = NodeStats()
    for seq in [0, 1, 2, 5, 4, 4, 9]:
        stats.add(seq)
    assert (stats.frames, stats.duplicates, stats.gaps()) == (6, 1, 4)  # 3, 6, 7, 8 missing
    stats.restart()  # the node started again at 0: not duplicates
    assert stats.add(0) and stats.add(2)
    assert (stats.frames, stats.duplicates, stats.gaps()) == (8, 1, 5)


def test_node_stats_memory_is_bounded(monkeypatch):
    monkeypatch.setattr(NodeStats, "WINDOW", 10)
    stats = NodeStats()
    for seq in range(100):
        stats.add(seq)
    assert len(stats._recent) == 10 and stats.gaps() == 0
    assert not stats.add(95) and stats.duplicates == 1


@pytest.fixture(scope="module")
def head(tiny_run, tmp_path_factory):
    """A cloud head on a copy of tiny_run that accepts only mobile.tflite; never connected."""
    run = with_other_int8_hash(tiny_run, tmp_path_factory.mktemp("h") / "run")
    head = CloudHead(run, "mqtt://127.0.0.1:1")
    yield head
    head.client.loop_stop()


def frame(node: str, seq: int, values=None, version: int = wire.VERSION) -> tuple[str, bytes]:
    values = np.full((1, 1, 32), 0.5, np.float32) if values is None else values
    payload = bytearray(wire.encode(wire.Frame(node, seq, time.time(), values)))
    payload[4] = version
    return topics.activations(node), bytes(payload)


def status(node: str, sha: str, started: float = 1.0) -> tuple[str, bytes]:
    return topics.status(node), wire.encode_status("online", sha, started)


def counts(head: CloudHead, node: str) -> dict:
    return head.summary()["nodes"].get(node)


def test_cloud_refuses_a_mismatched_model_naming_both_hashes(head, tiny_run, caplog):
    good = sha256_file(rundir.mobile(tiny_run))
    int8 = sha256_file(rundir.mobile(tiny_run, int8=True))
    with caplog.at_level(logging.WARNING, "splitleak.cloud"):
        head.handle([status("rogue", int8), frame("rogue", 0), frame("rogue", 1)])
    refusals = [r.getMessage() for r in caplog.records if "refusing node rogue" in r.getMessage()]
    assert len(refusals) == 1
    assert int8 in refusals[0] and good in refusals[0] and "0" * 64 in refusals[0]
    assert head.rejected["model_mismatch"] == 2 and counts(head, "rogue")["refused"]
    head.handle([status("rogue", good, 2.0), frame("rogue", 2)])  # fixed: served again
    assert counts(head, "rogue") == {"frames": 1, "gaps": 0, "duplicates": 0,
                                     "state": "online", "refused": False}


def test_cloud_logs_a_wire_version_mismatch_naming_both_versions(head, caplog):
    with caplog.at_level(logging.WARNING, "splitleak.cloud"):
        head.handle([frame("old", 0, version=2)])
    assert head.rejected["version"] == 1
    assert any("wire version 2, this decoder reads version 1" in r.getMessage()
               for r in caplog.records)


def test_cloud_answers_duplicates_once_and_restarts_with_the_node(head):
    before = head.accepted
    head.handle([status("n1", sha256_file(rundir.mobile(head.run_dir)), 1.0)]
                + [frame("n1", s) for s in (0, 1, 1, 3)])
    assert head.accepted - before == 3
    assert counts(head, "n1") == {"frames": 3, "gaps": 1, "duplicates": 1, "state": "online",
                                  "refused": False}
    head.handle([status("n1", sha256_file(rundir.mobile(head.run_dir)), 2.0), frame("n1", 0)])
    assert head.accepted - before == 4 and counts(head, "n1")["duplicates"] == 1


def test_a_first_status_after_frames_does_not_start_a_new_sequence(head):
    """A restarted head gets its session's queued frames before the node's retained status
    (that comes only after it subscribes again): the status must not split the sequence, or a
    redelivery after it is answered twice and the frames before it count as gaps."""
    sha = sha256_file(rundir.mobile(head.run_dir))
    head.handle([frame("late", s) for s in (10, 11, 12)])
    head.handle([status("late", sha, 5.0), frame("late", 11), frame("late", 13)])
    assert counts(head, "late") == {"frames": 4, "gaps": 0, "duplicates": 1, "state": "online",
                                    "refused": False}


def test_cloud_survives_bad_messages(head, monkeypatch):
    bad = [("splitleak/a b/activations", frame("n2", 0)[1]), (topics.activations("n2"), b"junk"),
           (topics.status("n2"), b"{}"), (topics.activations("n2"), frame("other", 0)[1])]
    before = head.summary()["rejected"]
    head.handle(bad)
    monkeypatch.setattr(head, "classify", lambda x: np.full((len(x), 3), np.nan, np.float32))
    head.handle([frame("n2", 1)])
    after = head.summary()["rejected"]
    grown = {k: n - before.get(k, 0) for k, n in after.items() if n != before.get(k, 0)}
    assert grown == {"topic": 1, "magic": 1, "status": 1, "node_id": 1, "head_output": 1}
