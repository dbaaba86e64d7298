"""DP-SGD: per-example gradients and clipping equal a slow reference; Poisson batches; a run."""

import json

import numpy as np
import pytest
import tensorflow as tf

from splitleak.cloud import dp, model, privacy, rundir
from splitleak.cloud.config import TrainConfig
from tests.conftest import splitleak

CLIP = 0.5


@pytest.fixture(scope="module", params=["group", "none"])
def dp_model(request):
    """In float64: float32 rounding in GroupNorm's backward pass alone moves gradients by ~1e-4
    (relative), in either computation; in float64 they agree to ~1e-12."""
    tf.keras.backend.set_floatx("float64")
    try:
        tf.keras.utils.set_random_seed(0)
        mobile, head = model.stages(3, request.param, 2, dropout=0.0)
        yield dp.wrap(mobile, head, TrainConfig(dp=True, norm=request.param, l2_clip=CLIP))
    finally:
        tf.keras.backend.set_floatx("float32")


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(0)
    images = (rng.random((5, *model.INPUT_SHAPE)) > 0.8).astype(np.float64)
    return images, np.array([0, 1, 2, 1, 0])


def _slow_grads(whole, images, labels):
    """One tape per example: the reference per-example gradients."""
    grads = []
    for x, y in zip(images, labels, strict=True):
        with tf.GradientTape() as tape:
            value = tf.keras.losses.sparse_categorical_crossentropy(y[None], whole(x[None]))
        grads.append(tape.gradient(value, whole.trainable_variables))
    return grads


def _norm(grads) -> float:
    return float(tf.linalg.global_norm(grads))


def test_per_example_gradients_equal_one_tape_per_example(dp_model, batch):
    images, labels = batch
    fast, _ = dp_model.per_example_gradients(tf.constant(images), tf.constant(labels))
    assert len(fast) == len(dp_model.trainable_variables)
    for i, slow in enumerate(_slow_grads(dp_model, images, labels)):
        assert _norm(slow) > 0
        for ours, ref in zip(fast, slow, strict=True):
            np.testing.assert_allclose(ours[i].numpy(), ref.numpy(), rtol=1e-5,
                                       atol=1e-5 * float(tf.reduce_max(tf.abs(ref))))


def test_clipped_sum_equals_reference_and_each_example_is_clipped(dp_model, batch):
    images, labels = batch
    fast, _ = dp_model.per_example_gradients(tf.constant(images), tf.constant(labels))
    summed = dp_model.clipped_sum(fast)
    reference = [tf.zeros_like(v) for v in dp_model.trainable_variables]
    for grads in _slow_grads(dp_model, images, labels):
        scale = min(1.0, CLIP / _norm(grads))
        assert _norm([g * scale for g in grads]) <= CLIP * (1 + 1e-5)
        reference = [r + g * scale for r, g in zip(reference, grads, strict=True)]
    assert _norm(fast) > CLIP  # clipping was needed
    for ours, ref in zip(summed, reference, strict=True):
        np.testing.assert_allclose(ours.numpy(), ref.numpy(), atol=1e-5 * CLIP)


def test_zero_weight_examples_add_nothing(dp_model, batch):
    images, labels = batch
    fast, _ = dp_model.per_example_gradients(tf.constant(images), tf.constant(labels),
                                             tf.constant([1.0, 0.0, 1.0, 0.0, 1.0], tf.float64))
    assert all(float(tf.reduce_max(tf.abs(g[1]))) == 0.0 for g in fast)
    assert _norm([g[0] for g in fast]) > 0


def test_tensorflow_privacy_takes_the_same_step(batch):
    """Noise 0, one SGD step with learning rate 1 over the same weights: our clipped mean and
    tensorflow-privacy's DPModel (tf.vectorized_map) move every weight alike."""
    images, labels = batch
    floatx = tf.keras.backend.floatx()  # the float64 fixture above may be active
    tf.keras.backend.set_floatx("float32")
    try:
        moved = _one_step_each(images.astype(np.float32), labels)
    finally:
        tf.keras.backend.set_floatx(floatx)
    assert _norm([tf.constant(m) for m in moved["ours"]]) > 0
    for ours, theirs in zip(moved["ours"], moved["tf-privacy"], strict=True):
        np.testing.assert_allclose(ours, theirs, atol=1e-5 * CLIP)


def _one_step_each(images, labels) -> dict:
    tf.keras.utils.set_random_seed(0)
    mobile, head = model.stages(3, "group", 3, dropout=0.0)
    start = None
    moved = {}
    for engine in ("ours", "tf-privacy"):
        cfg = TrainConfig(dp=True, norm="group", l2_clip=CLIP, noise_multiplier=0.0,
                          batch=len(images), sampling="shuffle", dp_engine=engine).validate()
        whole = dp.wrap(mobile, head, cfg)
        whole.compile(tf.keras.optimizers.SGD(1.0), "sparse_categorical_crossentropy")
        start = start or [w.copy() for w in whole.get_weights()]
        whole.set_weights(start)
        whole.train_on_batch(images, labels)
        moved[engine] = [w - s for w, s in zip(whole.get_weights(), start, strict=True)]
    return moved


def test_layers_without_per_example_gradients_are_refused():
    mobile, head = model.stages(3, "batch", 4, dropout=0.0)
    with pytest.raises(ValueError, match="no per-example gradient for layer norm1"):
        dp.wrap(mobile, head, TrainConfig(dp=True, norm="group"))


def test_poisson_batches_vary_around_the_batch_size():
    images, labels = np.zeros((400, 4, 4, 1), np.float32), np.arange(400) % 3
    batches = dp.PoissonBatches(images, labels, 20, seed=0)
    assert len(batches) == 20
    sizes = [len(batches[i % len(batches)][0]) for i in range(500)]
    assert len(set(sizes)) > 5 and abs(np.mean(sizes) - 20) < 1.0
    empty = dp.PoissonBatches(images, labels, 20, seed=0)
    empty.rate = 0.0
    x, y, w = empty[0]
    assert x.shape[0] == 1 and w.tolist() == [0.0] and empty.drawn == [0]


@pytest.mark.parametrize("args, message", [
    (("--dp", "--norm", "batch"), "BatchNorm mixes the examples"),
    (("--dp", "--noise-multiplier", "-1"), "--noise-multiplier >= 0"),
    (("--dp", "--l2-clip", "0"), "--l2-clip > 0"),
    (("--dp", "--delta", "0.01"), "delta must be in (0, 1/n]"),
    (("--dp", "--dp-engine", "tf-privacy"), "use it with --sampling shuffle"),
])
def test_bad_dp_settings_are_refused_in_one_line(args, message, omniglot_dir, tmp_path):
    result = splitleak("train", "--epochs", 1, "--out", tmp_path / "run", "--omniglot-dir",
                       omniglot_dir, *args)
    assert result.returncode == 2 and message in result.stderr
    assert result.stderr.count("\n") == 1 and not (tmp_path / "run").exists()


@pytest.mark.slow
def test_dp_run_records_its_guarantee(omniglot_dir, tmp_path):
    out = tmp_path / "run"
    result = splitleak("train", "--dp", "--epochs", 2, "--limit", 64, "--batch", 16,
                       "--noise-multiplier", 1.1, "--delta", 1e-3, "--out", out,
                       "--omniglot-dir", omniglot_dir)
    assert result.returncode == 0, result.stderr
    metrics = json.loads((out / rundir.METRICS).read_text())
    priv = metrics["privacy"]
    assert (priv["n"], priv["batch"], priv["steps"], priv["sampling"]) == (64, 16, 8, "poisson")
    assert priv["epsilon"]["rdp"] == pytest.approx(privacy.epsilon(64, 16, 1.1, 2, 1e-3))
    assert metrics["best_epoch"] == 2 and "ε =" in result.stdout
    manifest = json.loads((out / rundir.MANIFEST).read_text())
    assert manifest["config"]["norm"] == "group" and manifest["config"]["dp"] is True


@pytest.mark.slow
def test_a_tensorflow_privacy_run_on_shuffled_batches(omniglot_dir, tmp_path):
    out = tmp_path / "run"
    result = splitleak("train", "--dp", "--dp-engine", "tf-privacy", "--sampling", "shuffle",
                       "--epochs", 1, "--limit", 32, "--batch", 16, "--delta", 1e-3,
                       "--out", out, "--omniglot-dir", omniglot_dir)
    assert result.returncode == 0, result.stderr
    priv = json.loads((out / rundir.METRICS).read_text())["privacy"]
    assert (priv["engine"], priv["sampling"], priv["steps"]) == ("tf-privacy", "shuffle", 2)
    assert (rundir.mobile(out)).is_file()


@pytest.mark.slow
def test_bench_dp_reports_both_trainings_as_json(omniglot_dir):
    result = splitleak("bench", "dp", "--epochs", 2, "--limit", 48, "--batch", 16, "--json",
                       "--omniglot-dir", omniglot_dir)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    seconds = report["seconds_per_epoch"]
    assert report["images"] == 48 and len(seconds["dp_sgd"]["epochs"]) == 2
    assert report["ratio"] == pytest.approx(
        seconds["dp_sgd"]["median"] / seconds["non_private"]["median"], abs=0.01)
    assert set(report["ratios"]) == {"dp_sgd", "dp_sgd_shuffle", "tf_privacy_shuffle"}
    assert all(len(seconds[k]["epochs"]) == 2 for k in report["ratios"])
