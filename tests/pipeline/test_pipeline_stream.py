"""The deployment end to end: broker, cloud head and edge nodes as separate processes."""

import pytest

from splitleak.tools.deploy.demo import run_pipeline
from tests.conftest import ENGINES
from tests.pipeline.conftest import with_other_int8_hash

pytestmark = pytest.mark.e2e


@pytest.mark.slow
@pytest.mark.parametrize("engine", ENGINES)
def test_stream_answers_exactly_as_offline(engine, tiny_run, lite):
    result = run_pipeline(tiny_run, lite, count=100, engine=engine, timeout=120)
    assert result["complete"] and result["predictions_received"] == 100
    assert result["agreement"] == 1.0
    assert result["mqtt_accuracy"] == result["offline_accuracy"]
    cloud, edge = result["cloud"], result["edge"]
    assert (cloud["accepted"], cloud["gaps"], cloud["rejected"]) == (100, 0, {})
    assert (edge["sent"], edge["acknowledged"], edge["predictions"]) == (100, 100, 100)
    assert cloud["latency_ms"]["p50"] > 0 and cloud["frames_per_second"] > 0


@pytest.mark.slow
def test_a_random_defence_is_matched_offline_by_its_seed(tiny_run, lite):
    result = run_pipeline(tiny_run, lite, count=40, engine="amqtt", timeout=120,
                          defense="noise:gauss:0.3")
    assert result["defense"] == "noise:gauss:0.3" and result["predictions_received"] == 40
    assert result["agreement"] == 1.0  # the offline check drew the node's noise


@pytest.mark.slow
@pytest.mark.parametrize("engine", ENGINES)
def test_tls_fleet_gets_every_prediction_and_a_foreign_model_is_refused(
        engine, deploy, tiny_run, png_source, tmp_path):
    run = with_other_int8_hash(tiny_run, tmp_path / "run")  # the cloud accepts mobile.tflite only
    dep = deploy(engine, "tls", run_dir=run, nodes=("pi-0", "pi-1", "pi-2", "rogue"))
    cloud = dep.start_cloud("--json")
    fleet = dep.start_edge("--node-id", "pi", "--fleet", 3, "--count", 40, "--source",
                           png_source, "--json")
    rogue = dep.start_edge("--node-id", "rogue", "--count", 10, "--source", png_source,
                           "--json", "--wait", 1, int8=True)
    assert fleet.wait(120) == 0, fleet.tail()
    assert rogue.wait(120) == 0, rogue.tail()
    cloud.stop()
    summary, log = cloud.json(), "".join(cloud.output)
    per_node = fleet.json()["per_node"]
    assert sorted(per_node) == ["pi-0", "pi-1", "pi-2"]
    for n in per_node.values():  # no other node's retained status reaches a node (amqtt too:
        # broker/amqtt_engine.PolicyBroker)
        assert n.pop("foreign_messages") == 0
        assert n == {"sent": 40, "acknowledged": 40, "refused": 0, "predictions": 40,
                     "bad_predictions": 0}
    assert rogue.json()["predictions"] == 0
    assert summary["accepted"] == 120 and summary["rejected"] == {"model_mismatch": 10}
    assert summary["nodes"]["rogue"]["refused"] and summary["gaps"] == 0
    refusal = [line for line in log.splitlines() if "refusing node rogue" in line]
    assert len(refusal) == 1 and "0" * 64 in refusal[0]
    assert rogue.json()["model_sha256"] in refusal[0]
