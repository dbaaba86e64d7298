"""The split depth end to end: train at K, export, a black-box decoder, eval with
identification, bad-shape refusals, and the demo deployment at K = 2."""

import json

import pytest

from splitleak.cloud import rundir
from tests.conftest import splitleak

ACTIVATIONS = {2: [13, 13, 32], 4: [1, 1, 32]}


@pytest.fixture(scope="module", params=sorted(ACTIVATIONS))
def run_at(request, tmp_path_factory, omniglot_dir):
    k = request.param
    out = tmp_path_factory.mktemp(f"k{k}") / "run"
    result = splitleak("train", "--epochs", 1, "--limit", 96, "--split-after", k, "--out", out)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"split after block {k}: activation {'x'.join(map(str, ACTIVATIONS[k]))}" in result.stdout
    return k, out


@pytest.mark.slow
def test_train_decoder_eval_at_each_depth(run_at, tmp_path):
    k, run = run_at
    manifest = json.loads((run / rundir.MANIFEST).read_text())
    assert manifest["split_after"] == k and manifest["activation"]["shape"] == ACTIVATIONS[k]
    for name in (rundir.MOBILE_TFLITE, rundir.MOBILE_INT8):
        assert manifest["tflite"][name]["output"]["shape"] == ACTIVATIONS[k]
    attack = tmp_path / "attack"
    result = splitleak("attack", "train", "--target", rundir.mobile(run), "--epochs", 1,
                       "--limit", 48, "--out", attack)
    assert result.returncode == 0, result.stderr[-2000:]
    result = splitleak("attack", "eval", attack, "--limit", 40)
    assert result.returncode == 0, result.stderr[-2000:]
    scores = json.loads((attack / rundir.EVAL).read_text())["blackbox"]["test"]
    ident = scores["reconstruction"]["identification"]
    assert ident["n"] == 40 and ident["chance_top1"] == pytest.approx(1 / 40)
    assert 0 <= ident["top1"] <= ident["top5"] <= 1 and 1 <= ident["median_rank"] <= 40
    assert scores["baselines"]["blank_page"]["identification"]["top1"] == pytest.approx(1 / 40)
    assert "top-1" in result.stdout


@pytest.mark.slow
def test_seed_decoder_and_mismatched_shapes_are_refused(run_at, tmp_path, tiny_run):
    k, run = run_at
    result = splitleak("attack", "train", "--target", rundir.mobile(run), "--arch", "seed",
                       "--epochs", 1, "--limit", 16, "--out", tmp_path / "seed")
    if k == 4:
        assert result.returncode == 0, result.stderr[-2000:]
        return
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "13x13x32" in result.stderr and "1x1x32" in result.stderr
    # a K = 2 decoder pointed at a K = 4 target: one line naming both shapes
    attack = tmp_path / "attack"
    assert splitleak("attack", "train", "--target", rundir.mobile(run), "--epochs", 1,
                     "--limit", 16, "--out", attack).returncode == 0
    result = splitleak("attack", "eval", attack, "--target", rundir.mobile(tiny_run), "--force",
                       "--limit", 8)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "13, 13, 32" in result.stderr and "1, 1, 32" in result.stderr.replace("(8, ", "(")


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.parametrize("run_at", [2], indirect=True)  # K = 4: tests/tools/test_demo.py
def test_demo_at_split_depth_2(run_at, tmp_path):
    _, run = run_at
    result = splitleak("demo", "--run", run, "--split-after", 2, "--attack-dir", tmp_path / "attack",
                       "--attack-epochs", 1, "--web", "127.0.0.1:0", "--rate", 0, "--count", 16,
                       "--out", tmp_path / "demo")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "activation 13x13x32" in result.stdout
    assert "over MQTT: 16/16 predictions" in result.stdout and "agreement 1.0000" in result.stdout
    assert "eavesdropper: 16 of 16 frames reconstructed" in result.stdout
    assert "13x13x32" in (tmp_path / "demo" / "report.html").read_text()
    wrong = splitleak("demo", "--run", run, "--split-after", 4, "--no-attack", "--count", 4)
    assert wrong.returncode == 2 and "trained with --split-after 2" in wrong.stderr


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.parametrize("run_at", [2], indirect=True)
def test_bench_fuzz_takes_the_shape_from_the_run(run_at):
    """Valid frames are generated at the run's own activation shape: at K = 2 the head
    accepts them (at a fixed 1x1x32 shape every generated frame would be refused, and the
    counts would still match)."""
    _, run = run_at
    result = splitleak("bench", "fuzz", "--run", run, "--engine", "mosquitto", "--messages", 200,
                       "--seed", 1, "--json", timeout=300)
    report = json.loads(result.stdout)
    assert result.returncode == 0 and report["passed"], result.stdout[-3000:]
    assert report["cloud"]["frames"] > 10 and report["eavesdropper"]["frames"] > 10
