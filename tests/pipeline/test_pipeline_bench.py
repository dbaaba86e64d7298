"""`splitleak bench pipeline`: a short run gives sane JSON; a missing run is one clear line."""

import json

import pytest

from tests.conftest import splitleak


@pytest.mark.e2e
@pytest.mark.slow
def test_bench_pipeline_json(tiny_run):
    engine = "mosquitto"
    result = splitleak("bench", "pipeline", "--run", tiny_run, "--engine", engine,
                       "--frames", 50, "--fleet", 2, "--json", timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert (report["bench"], report["engine"], report["fleet"]) == ("pipeline", engine, 2)
    assert report["sent"] == report["predictions_received"] == 100
    assert report["lost"] == 0 and report["cloud_sequence_gaps"] == 0
    assert report["cloud_frames_per_second"] > 0 and report["edge_frames_per_second"] > 0
    latency = report["latency_ms"]
    assert 0 < latency["p50"] <= latency["p90"] <= latency["p99"] < 60_000
    assert report["cloud"]["accepted"] == 100 and report["edge"]["nodes"] == 2


@pytest.mark.e2e
@pytest.mark.slow
def test_bench_pipeline_with_two_heads_counts_each_head(tiny_run):
    result = splitleak("bench", "pipeline", "--run", tiny_run, "--engine", "mosquitto",
                       "--frames", 40, "--fleet", 3, "--heads", 2, "--json", timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert report["heads"] == 2 and report["sent"] == report["predictions_received"] == 120
    heads = report["per_head"]
    assert len(heads) == 2 and sum(h["accepted"] for h in heads) == 120
    assert report["cloud"]["gaps"] is None  # each head sees only part of every sequence
    cpu = report["cpu_seconds"]
    assert cpu["edge"] > 0 and len(cpu["heads"]) == 2 and cpu["broker"] is not None  # Mosquitto


def test_bench_pipeline_needs_a_run(tmp_path):
    result = splitleak("bench", "pipeline", "--run", tmp_path / "nope")
    assert result.returncode == 2
    assert "is not a finished run" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.e2e
@pytest.mark.slow
def test_bench_soak_short_form(tiny_run, omniglot_dir):
    """`splitleak bench soak` in seconds (the documented long form: 10 nodes x 100/s x 60 s)."""
    result = splitleak("bench", "soak", "--run", tiny_run, "--nodes", 3, "--rate", 25,
                       "--seconds", 4, "--json", timeout=300)
    report = json.loads(result.stdout)
    assert result.returncode == 0 and report["passed"], result.stdout[-3000:]
    assert report["sent"] == report["predictions"] == report["eavesdropper_frames"] == 300
    assert report["lost"] == 0 and report["cloud_gaps"] == 0 and report["samples"] >= 2
    assert set(report["memory"]) == {"edge", "cloud", "eavesdropper", "broker"}
    assert all(m["start_mib"] > 0 for m in report["memory"].values())


@pytest.mark.e2e
@pytest.mark.slow
def test_bench_flood_short_form_keeps_the_subscribers_bounded(tiny_run):
    """`splitleak bench flood` in seconds (the documented long form: 1,000,000 ids)."""
    result = splitleak("bench", "flood", "--run", tiny_run, "--nodes", 3000, "--max-nodes", 200,
                       "--json", timeout=300)
    report = json.loads(result.stdout)
    assert result.returncode == 0 and report["passed"], result.stdout[-3000:]
    assert report["answered"] == 3000 and report["real_answered"] == report["real_sent"] == 20
    for who in ("cloud", "eavesdropper"):  # 3,000 fake ids and the real one, 200 kept
        assert report[f"{who}_nodes_kept"] == 200 and report[f"{who}_nodes_evicted"] == 2801
