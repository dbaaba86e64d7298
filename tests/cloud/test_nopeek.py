"""NoPeek: the distance correlation it adds, and a training run that reports it."""

import numpy as np
import pytest
import tensorflow as tf

from splitleak.cloud import train
from splitleak.cloud.config import TrainConfig
from splitleak.cloud.nopeek import distance_correlation
from tests.conftest import splitleak


def test_distance_correlation_is_one_for_similar_and_lower_for_unrelated_batches():
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(128, 20)), tf.float32)
    unrelated = tf.constant(rng.normal(size=(128, 7)), tf.float32)
    assert float(distance_correlation(x, x)) == pytest.approx(1.0, abs=1e-5)
    assert float(distance_correlation(x, -3 * x + 1)) == pytest.approx(1.0, abs=1e-5)
    related = float(distance_correlation(x, tf.tanh(x[:, :5])))
    assert float(distance_correlation(x, unrelated)) < 0.5 < related < 1.0


def test_a_nopeek_run_reports_the_distance_correlation(lite):
    cfg = TrainConfig(epochs=1, batch=16, limit=32, norm="group", nopeek=0.5, augment=False)
    _, _, epochs, _ = train.fit(lite, cfg)
    assert 0 < epochs[0]["dcor"] <= 1 and "val_dcor" in epochs[0]


@pytest.mark.parametrize("args, message", [
    (("--nopeek", "-1"), "--nopeek must be >= 0"),
    (("--nopeek", "1", "--dp"), "cannot be combined with --dp"),
])
def test_bad_nopeek_settings_are_refused(args, message, tmp_path):
    result = splitleak("train", "--epochs", 1, "--out", tmp_path / "run", *args)
    assert result.returncode == 2 and message in result.stderr
