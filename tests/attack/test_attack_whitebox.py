"""White-box inversion (rMLE + TV) lowers the activation loss and writes its results."""

import json

import numpy as np
import pytest
import tensorflow as tf

from splitleak.attack import whitebox
from splitleak.cloud import rundir


def test_total_variation():
    flat = tf.fill((2, 8, 8, 1), 0.3)
    assert np.allclose(whitebox.total_variation(flat), 0.0)
    stripes = np.zeros((1, 8, 8, 1), np.float32)
    stripes[:, :, ::2] = 1.0
    assert float(whitebox.total_variation(stripes)[0]) == pytest.approx(1.0)


@pytest.mark.parametrize("bad", [{"ink": 1.0}, {"steps": 0}, {"prior_weight": -1.0},
                                 {"learning_rate": 0.0}])
def test_config_validation(bad):
    with pytest.raises(ValueError):
        whitebox.WhiteboxConfig(**bad).validate()


def _tiny_stage():
    inputs = tf.keras.Input((12, 12, 1))
    x = tf.keras.layers.Conv2D(4, 3, strides=2, activation="relu",
                               kernel_initializer=tf.keras.initializers.GlorotUniform(0))(inputs)
    return tf.keras.Model(inputs, x)


def test_start_images_and_prior():
    """A start image is where the search begins; a strong prior keeps it there."""
    mobile = _tiny_stage()
    rng = np.random.default_rng(0)
    truth = (rng.random((3, 12, 12, 1)) > 0.7).astype(np.float32)
    acts = mobile(truth).numpy()
    starts = np.full_like(truth, 0.5)
    cfg = whitebox.WhiteboxConfig(steps=60, tv_weight=0.0, learning_rate=0.05, prior_weight=0.0)
    free, trace = whitebox.invert(mobile, acts, cfg, progress=False, starts=starts)
    assert trace["initial"]["prior"] == pytest.approx(0.0)
    assert trace["final"]["activation"] < 0.5 * trace["initial"]["activation"]
    cfg.prior_weight = 1e4
    held, _ = whitebox.invert(mobile, acts, cfg, progress=False, starts=starts)
    assert np.abs(held - 0.5).mean() < 0.2 * np.abs(free - 0.5).mean()
    _, blank = whitebox.invert(mobile, acts, cfg, progress=False)  # no pull toward a blank page
    assert blank["final"]["activation"] < 0.5 * blank["initial"]["activation"]
    with pytest.raises(ValueError, match="start images of shape"):
        whitebox.invert(mobile, acts, cfg, progress=False, starts=starts[:2])


@pytest.mark.slow
def test_inversion_reduces_activation_loss(run_dir, lite):
    mobile = tf.keras.models.load_model(run_dir / rundir.MOBILE_KERAS, compile=False)
    images = lite.test.images[:4]
    activations = whitebox.intercepted(run_dir, mobile, images)
    cfg = whitebox.WhiteboxConfig(steps=25, batch=2, tv_weight=0.1)
    recons, trace = whitebox.invert(mobile, activations, cfg, progress=False)
    assert recons.shape == images.shape
    assert recons.min() >= 0.0 and recons.max() <= 1.0
    assert trace["final"]["activation"] < 0.8 * trace["initial"]["activation"]


@pytest.mark.slow
def test_whitebox_command(run_dir, attack_dir, omniglot_dir, cli_run):
    args = ("attack", "whitebox", "--run", run_dir, "--limit", 3, "--steps", 3,
            "--omniglot-dir", omniglot_dir)
    assert cli_run(*args) == 0
    result = json.loads((run_dir / "whitebox" / rundir.EVAL).read_text())["whitebox"]["test"]
    assert result["n"] == 3 and set(result["baselines"]) == {"blank_page", "attacker_mean_image"}
    assert (run_dir / "whitebox" / "whitebox-test-first16.png").is_file()
    assert result["config"]["start"] == "blank"
    assert cli_run(*args, "--attack-dir", attack_dir, "--start-from", attack_dir) == 0
    result = json.loads((attack_dir / rundir.EVAL).read_text())["whitebox"]["test"]
    assert result["config"]["start"] == str(attack_dir.resolve())
    assert cli_run(*args, "--attack-dir", attack_dir, "--defense", "noise:gauss:0.2") == 0
    defended = json.loads((attack_dir / rundir.EVAL).read_text())["whitebox"]["test-defended"]
    assert defended["config"]["defense"] == "noise:gauss:0.2" and defended["n"] == 3


@pytest.mark.slow
def test_whitebox_scoring_writes_nothing(run_dir, attack_dir, omniglot_dir):
    from splitleak.attack import evaluate

    before = {p: p.stat().st_mtime_ns for p in run_dir.rglob("*")}
    e = evaluate.score_whitebox(run_dir, limit=2, cfg=whitebox.WhiteboxConfig(steps=2),
                                start_from=attack_dir, defense="noise:gauss:0.2")
    assert {p: p.stat().st_mtime_ns for p in run_dir.rglob("*")} == before
    assert (e.attack, e.split, e.result["n"]) == ("whitebox", "test-defended", 2)
    assert e.recons.shape == e.originals.shape == (2, 105, 105, 1) and len(e.activations) == 2
    assert e.result["config"]["start"] == str(attack_dir.resolve())
    with pytest.raises(FileNotFoundError, match="attack directory not found"):
        evaluate.whitebox_dir(run_dir, run_dir / "missing")
    assert evaluate.whitebox_dir(run_dir) == run_dir / "whitebox"
