"""White-box inversion (rMLE + TV) lowers the activation loss and writes its results."""

import json

import numpy as np
import pytest
import tensorflow as tf

from splitleak.attack import whitebox


def test_total_variation():
    flat = tf.fill((2, 8, 8, 1), 0.3)
    assert np.allclose(whitebox.total_variation(flat), 0.0)
    stripes = np.zeros((1, 8, 8, 1), np.float32)
    stripes[:, :, ::2] = 1.0
    assert float(whitebox.total_variation(stripes)[0]) == pytest.approx(1.0)


def test_config_validation():
    with pytest.raises(ValueError):
        whitebox.WhiteboxConfig(init=1.0).validate()
    with pytest.raises(ValueError):
        whitebox.WhiteboxConfig(steps=0).validate()


@pytest.mark.slow
def test_inversion_reduces_activation_loss(run_dir, lite):
    mobile = tf.keras.models.load_model(run_dir / "mobile.keras", compile=False)
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
    result = json.loads((run_dir / "whitebox" / "eval.json").read_text())["whitebox"]["test"]
    assert result["n"] == 3 and set(result["baselines"]) == {"blank_page", "attacker_mean_image"}
    assert (run_dir / "whitebox" / "whitebox-test-first16.png").is_file()
    assert cli_run(*args, "--attack-dir", attack_dir) == 0
    assert "whitebox" in json.loads((attack_dir / "eval.json").read_text())
