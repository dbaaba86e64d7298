"""`splitleak demo` end to end: target, decoder, broker, cloud, eavesdropper, edge, report."""

import numpy as np
import pytest

from splitleak.edge.omniglot import ink_from_png
from tests.conftest import splitleak
from tests.edge.scenes import correlation, drawn, paper_frame, write_video


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


@pytest.mark.e2e
@pytest.mark.slow
def test_demo_with_a_video_streams_what_the_camera_saw(tiny_run, lite, tmp_path):
    rng = np.random.default_rng(7)
    glyphs = lite.test.images[::91][:6]
    frames = [paper_frame(g, rng) for g in glyphs[:3]] + [paper_frame(None, rng)] * 2 + [
        paper_frame(g, rng) for g in glyphs[3:]]
    write_video(tmp_path / "letters.avi", frames)
    out = tmp_path / "demo"
    result = splitleak("demo", "--run", tiny_run, "--attack-dir", tmp_path / "attack",
                       "--attack-epochs", 1, "--web", "127.0.0.1:0", "--rate", 0,
                       "--source", f"video:{tmp_path / 'letters.avi'}", "--out", out)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "edge: 6 frames with ink sent, 2 of 8 frames skipped (no ink)" in result.stdout
    assert "over MQTT: 6/6 predictions; equal to the head's offline on the same inputs: 1.0000" \
        in result.stdout
    assert "eavesdropper: 6 of 6 frames reconstructed" in result.stdout
    assert "offline, on what the device saw" in (out / "report.html").read_text()
    inputs = sorted((out / "inputs").glob("*.png"))
    assert len(inputs) == 6 and len(list((out / "reconstructions" / "demo-camera").glob("*.png"))) == 6
    assert correlation(ink_from_png(inputs[4].read_bytes()), drawn(glyphs[4])) >= 0.9


def test_demo_refuses_a_source_it_cannot_stream(tmp_path):
    result = splitleak("demo", "--run", tmp_path / "run", "--source", "zip:letters.zip")
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "the demo streams lite-val or, live, camera | camera:N | video:FILE" in result.stderr
