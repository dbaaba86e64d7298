"""`splitleak bench attack`: the decoder alone and the live eavesdropper behind a real broker."""

import json

import pytest

from splitleak.cloud import rundir
from tests.conftest import splitleak


@pytest.mark.e2e
@pytest.mark.parametrize("engine", ["amqtt", "mosquitto"])
def test_bench_attack_reconstructs_every_frame(attack_dir, engine):
    result = splitleak("bench", "attack", "--decoder", attack_dir, "--engine", engine,
                       "--frames", 300, "--json", timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    live = report["live"]
    assert (report["bench"], live["engine"], live["frames"]) == ("attack", engine, 300)
    assert live["seen"] == live["reconstructed"] == 300 and live["rejected"] == 0
    assert live["frames_per_second"] > 0 and report["decoder_frames_per_second"] > 0


def test_bench_attack_needs_a_decoder(tmp_path):
    result = splitleak("bench", "attack", "--decoder", tmp_path / "nope")
    assert result.returncode == 2
    assert "nope" in result.stderr and "Traceback" not in result.stderr


class BrokenDecoder:
    input_shape = (None, 1, 1, 32)

    def predict_on_batch(self, batch):
        raise RuntimeError("decoder exploded")


@pytest.mark.e2e
def test_live_bench_reports_a_failing_eavesdropper_at_once(tmp_path):
    from splitleak.tools.bench.timing import live_attack

    with pytest.raises(RuntimeError, match="decoder exploded"):
        live_attack(BrokenDecoder(), "amqtt", 5, tmp_path / "broker", timeout=60)


@pytest.mark.e2e
@pytest.mark.slow
def test_bench_all_quick_writes_one_report(attack_dir, tiny_run, tmp_path):
    out = tmp_path / "all.json"
    # faults runs at full length even with --quick (the broker saves every 30 s):
    # tests/pipeline/test_pipeline_faultsim.py runs its short form instead
    result = splitleak("bench", "all", "--quick", "--skip", "demo", "dp", "faults", "--run", tiny_run,
                       "--decoder", attack_dir, "--json", out, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["machine"]["cores"] >= 1 and report["packages"]["numpy"]
    assert "demo" not in report and "dp" not in report and "faults" not in report
    (k, tflite), = report["tflite"].items()
    assert tflite["runtime"] and set(tflite["results"]) == {
        "keras", *(f"{m} x{t}" for t in (1, 2) for m in (
            rundir.MOBILE_TFLITE, rundir.MOBILE_INT8, "int8 built-in kernels"))}
    pipelines = {(p["engine"], p["fleet"]): p for p in report["pipeline"]}
    assert set(pipelines) == {(e, n) for e in ("mosquitto", "amqtt") for n in (1, 10)}
    for p in pipelines.values():
        assert p["sent"] == p["predictions_received"] > 0 and p["cloud_sequence_gaps"] == 0
    assert report["attack"]["live"]["reconstructed"] == report["attack"]["live"]["frames"]
    summary = report["summary"]
    assert summary[f"tflite_k{k}"]["int8_over_float32"] == tflite["int8_over_float32"]
    assert f"split after block {k}" in result.stdout and "| pipeline, amqtt, 10 node(s)" in \
        result.stdout
