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


def test_bench_pipeline_needs_a_run(tmp_path):
    result = splitleak("bench", "pipeline", "--run", tmp_path / "nope")
    assert result.returncode == 2
    assert "is not a finished run" in result.stderr and "Traceback" not in result.stderr
