"""`splitleak bench attack`: the decoder alone and the live eavesdropper behind a real broker."""

import json

import pytest

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
    from splitleak.tools.bench import live_attack

    with pytest.raises(RuntimeError, match="decoder exploded"):
        live_attack(BrokenDecoder(), "amqtt", 5, tmp_path / "broker", timeout=60)
