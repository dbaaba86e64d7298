"""The exported mobile stage: BatchNorm folding keeps the function and fixes int8."""

import numpy as np
import pytest
import tensorflow as tf

from splitleak.cloud import export, model, rundir
from splitleak.edge.runtime import MobileStage


def with_statistics(mobile, seed: int = 0, sign: float = 1.0):
    """Give every BatchNorm scales and shifts as spread as a trained one's (0.3 to 26)."""
    rng = np.random.default_rng(seed)
    for layer in mobile.layers:
        if isinstance(layer, tf.keras.layers.BatchNormalization):
            n = layer.gamma.shape[0]
            layer.set_weights([sign * rng.uniform(0.3, 26, n), rng.normal(0, 0.5, n),
                               rng.uniform(0, 0.5, n), rng.uniform(0.01, 1, n) ** 2])
    return mobile


def relative_error(stage, reference, images):
    diff = (stage.run(images) - reference).reshape(len(images), -1)
    return float(np.mean(np.linalg.norm(diff, axis=1)
                         / np.linalg.norm(reference.reshape(len(images), -1), axis=1)))


@pytest.mark.parametrize("split_after", [1, 2, 3, 4])
def test_folding_keeps_the_function(split_after):
    mobile = with_statistics(model.mobile_stage("batch", split_after))
    folded = export.folded(mobile)
    kinds = [type(layer).__name__ for layer in folded.layers]
    assert "BatchNormalization" not in kinds and kinds.count("Conv2D") == split_after
    images = np.random.default_rng(1).random((4, *model.INPUT_SHAPE), np.float32)
    reference = mobile(images, training=False).numpy()
    np.testing.assert_allclose(folded(images).numpy(), reference,
                               atol=1e-5 * np.abs(reference).max())


@pytest.mark.parametrize("norm,split_after", [("batch", 1), ("batch", 4), ("group", 2)])
def test_blocking_the_first_convolution_keeps_the_function(norm, split_after):
    mobile = model.mobile_stage(norm, split_after)
    deployed = export.folded(with_statistics(mobile)) if norm == "batch" else mobile
    grouped = export.blocked(deployed)
    first = grouped.get_layer("conv1_blocked")
    assert first.kernel.shape == (7, 2, 7, 7 * 32)  # 7 columns a group, 7 column phases out
    assert grouped.output_shape == deployed.output_shape
    images = np.random.default_rng(2).random((4, *model.INPUT_SHAPE), np.float32)
    reference = deployed(images, training=False).numpy()
    np.testing.assert_allclose(grouped(images, training=False).numpy(), reference,
                               atol=1e-5 * np.abs(reference).max())


def test_blocking_leaves_what_it_does_not_fit_alone():
    for shape, kwargs in [((105, 105, 3), {}), ((105, 105, 1), {"strides": 2}),
                          ((103, 103, 1), {})]:  # colour, strided, a width with no divisor 6..13
        inputs = tf.keras.Input(shape)
        mobile = tf.keras.Model(inputs, tf.keras.layers.Conv2D(4, 7, **kwargs)(inputs))
        assert export.blocked(mobile) is mobile


def test_the_int8_file_is_blocked_and_quantises_its_own_input(tmp_path):
    tensors = export.export(with_statistics(model.mobile_stage("batch", 1)),
                            np.random.default_rng(3).random((8, *model.INPUT_SHAPE), np.float32),
                            tmp_path)
    assert tensors[rundir.MOBILE_INT8]["input"]["dtype"] == "float32"
    assert tensors[rundir.MOBILE_INT8]["output"]["dtype"] == "int8"
    interpreter = MobileStage(rundir.mobile(tmp_path, int8=True))._interp
    kinds = [op["op_name"] for op in interpreter._get_ops_details()]
    assert kinds[:3] == ["QUANTIZE", "RESHAPE", "CONV_2D"] and "PAD" not in kinds, kinds


@pytest.mark.parametrize("norm", ["group", "none"])
def test_nothing_to_fold_leaves_the_model_alone(norm):
    mobile = model.mobile_stage(norm, 2)
    assert export.folded(mobile) is mobile


def test_a_negative_scale_cannot_pass_the_relu():
    mobile = with_statistics(model.mobile_stage("batch", 2), sign=-1.0)
    assert export.folded(mobile) is mobile


def test_int8_is_accurate_only_folded(lite, tmp_path):
    tf.keras.utils.set_random_seed(0)
    mobile = with_statistics(model.mobile_stage("batch", 2))
    images = lite.val.images[:32]
    reference = mobile.predict(images, verbose=0)
    errors = {}
    for name, stage in (("seed", mobile), ("folded", export.folded(mobile))):
        path = tmp_path / f"{name}.tflite"
        path.write_bytes(export.to_tflite(stage, lite.train.images[:100]))
        errors[name] = relative_error(MobileStage(path), reference, images)
    assert errors["folded"] < 0.05 and errors["seed"] > 3 * errors["folded"], errors
