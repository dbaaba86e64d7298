"""`bench faults`, short form: an edge node dropped, the broker killed twice, the cloud head
killed, all mid-stream through Mosquitto (autosave every second); and the classification."""

import pytest

import splitleak.broker.mosquitto as mosquitto
from splitleak.tools.bench import faults
from tests.conftest import splitleak

FRAMES, RATE = 600, 40  # 15 s of stream: the cloud head is killed after about 5 s


def test_a_missing_frame_is_lost_by_design_only_inside_a_crash_window():
    crashes = [faults.Crash(saved_at=10.0, killed_at=10.5, restarted_at=10.9)]
    acked = {0: 9.0, 1: 9.9, 2: 10.2, 3: 10.6, 4: 11.5}
    got = faults.classify(6, acked, answered={0}, crashes=crashes)
    assert (got["missing"], got["lost_per_crash"], got["unacknowledged"]) == (5, [2], 1)
    assert got["unexplained_seqs"] == [1, 4]  # saved before the kill; acked by the new broker


def test_amqtt_is_refused_in_one_line():
    result = splitleak("bench", "faults", "--engine", "amqtt", timeout=60)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith("splitleak bench: error: bench faults needs --engine mosquitto")


@pytest.mark.e2e
def test_faults_short_form(tiny_run, png_source, monkeypatch):
    monkeypatch.setattr(mosquitto, "AUTOSAVE_SECONDS", 1)
    r = faults.run(tiny_run, frames=FRAMES, rate=RATE, source=png_source)
    print(f"faults: {r['events']}; lost by design {r['lost_by_design']}")
    assert r["problems"] == [] and r["passed"]
    assert [e["event"] for e in r["events"]] == ["edge node killed", "broker killed",
                                                 "broker killed", "cloud head killed"]
    assert all(e.get("recovered_s", 0) is not None for e in r["events"])
    for n in r["nodes"].values():
        assert n["sent"] == n["acknowledged"] == FRAMES and n["unexplained"] == 0
        assert n["answered"] + n["lost_by_design"] == FRAMES
        assert n["duplicate_answers"] <= 100  # at most the killed head's frames in flight
    dropped = r["dropped"]
    assert dropped["answered"] > 0 and dropped["gaps"] == 0
    assert dropped["status_after_kill"] == dropped["status_at_end"] == "offline"
    assert dropped["restarted_head_says"] == "offline"  # the retained will, survived two crashes
    head, before = r["restarted_head"], r["events"][-1]["answered_before"]
    assert head["rejected"] == {} and head["accepted"] > 0
    for node, counts in head["nodes"].items():  # its backlog and the rest of the stream
        assert counts["frames"] >= r["nodes"][node]["answered"] - before[node] > 0
    assert r["exit_codes"] == {"edge": 0, "cloud": 0, "eavesdropper": 0}
    assert faults.describe(r).splitlines()[-1] == "passed"
