"""`splitleak demo` end to end: target, decoder, broker, cloud, eavesdropper, edge, report."""

import pytest

from tests.conftest import splitleak


@pytest.mark.e2e
@pytest.mark.slow
def test_demo_runs_end_to_end_and_writes_a_report(tiny_run, tmp_path):
    out = tmp_path / "demo"
    result = splitleak("demo", "--run", tiny_run, "--attack-dir", tmp_path / "attack",
                       "--attack-epochs", 1, "--web", "127.0.0.1:0", "--rate", 0, "--count", 24,
                       "--out", out)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "reusing" in result.stdout and "training a black-box decoder" in result.stdout
    assert "over MQTT: 24/24 predictions" in result.stdout and "agreement 1.0000" in result.stdout
    assert "live page at http://127.0.0.1:" in result.stdout
    assert "eavesdropper: 24 of 24 frames reconstructed" in result.stdout
    report = (out / "report.html").read_text()
    assert "data:image/png;base64," in report and "cloud accuracy over MQTT" in report
    assert len(list((out / "reconstructions" / "demo-node").glob("*.png"))) == 24
    again = splitleak("demo", "--run", tiny_run, "--attack-dir", tmp_path / "attack", "--no-attack",
                      "--rate", 0, "--count", 8, "--out", out)
    assert again.returncode == 0 and "reusing the decoder" not in again.stdout
