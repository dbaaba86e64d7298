"""splitleak edge --check: the device self-test (runtime, model identity, latency per thread
count), and its refusals."""

import hashlib
import json

from splitleak.cloud import rundir
from splitleak.edge.runtime import MobileStage
from tests.conftest import splitleak


def test_the_self_check_reports_the_model_and_its_latency(tiny_run):
    model = rundir.mobile(tiny_run)
    result = splitleak("edge", "--check", "--model", model, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["sha256"] == hashlib.sha256(model.read_bytes()).hexdigest()
    assert report["activation_shape"] == list(MobileStage(model).output_shape)
    assert report["runtime"].split()[0] in ("tflite-runtime", "ai-edge-litert")
    assert set(report["threads"]) == {"1", "2", "4"} and report["ok"]
    for t in report["threads"].values():
        assert 0 < t["median_ms"] <= t["p95_ms"] and t["same_output"] and t["runs"] >= 10


def test_streaming_needs_a_broker_and_the_check_needs_a_model(tmp_path):
    result = splitleak("edge", "--model", tmp_path / "m.tflite")
    assert result.returncode == 2 and "--broker URL is required" in result.stderr
    result = splitleak("edge", "--check", "--model", tmp_path / "missing.tflite")
    assert result.returncode == 2 and "TFLite model not found" in result.stderr
    assert result.stderr.count("\n") == 1
