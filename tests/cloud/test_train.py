import json
from importlib import metadata

import numpy as np
import pytest

from splitleak.cloud import rundir
from splitleak.edge.runtime import MobileStage, sha256_file
from tests.conftest import splitleak

ARTIFACTS = {rundir.MOBILE_KERAS, rundir.HEAD_KERAS, rundir.MOBILE_TFLITE, rundir.MOBILE_INT8,
             rundir.METRICS, rundir.MANIFEST}


ACTIVATIONS = {1: (33, 33, 32), 2: (13, 13, 32), 3: (4, 4, 32), 4: (1, 1, 32)}  # the table


@pytest.mark.parametrize("norm", ["batch", "group", "none"])
@pytest.mark.parametrize("split_after", sorted(ACTIVATIONS))
def test_model_shapes(norm, split_after):
    from splitleak.cloud import model

    mobile, head = model.stages(3, norm, split_after)
    assert mobile.output_shape == (None, *ACTIVATIONS[split_after])
    assert head.input_shape == mobile.output_shape
    whole = model.split_model(mobile, head)
    assert whole.output_shape == (None, 3)
    every = {w.name for w in whole.weights}  # the same network whatever the cut
    assert {w.name for w in mobile.weights} | {w.name for w in head.weights} == every
    assert whole.count_params() == model.split_model(*model.stages(3, norm)).count_params()
    import tensorflow as tf

    kinds = {type(layer) for layer in mobile.layers}
    assert (tf.keras.layers.BatchNormalization in kinds) == (norm == "batch")
    assert (tf.keras.layers.GroupNormalization in kinds) == (norm == "group")


def test_tiny_run_writes_every_artifact_with_hashes(tiny_run):
    assert {p.name for p in tiny_run.iterdir()} == ARTIFACTS
    manifest = json.loads((tiny_run / rundir.MANIFEST).read_text())
    assert set(manifest["artifacts"]) == ARTIFACTS - {rundir.MANIFEST}
    for name, digest in manifest["artifacts"].items():
        assert sha256_file(tiny_run / name) == digest, name
    assert manifest["protocol"] == "lite" and manifest["config"]["seed"] == 1
    assert manifest["activation"] == {"shape": [1, 1, 32], "dtype": "float32"}
    assert manifest["split_after"] == 4
    assert manifest["tflite"][rundir.MOBILE_INT8]["output"]["dtype"] == "int8"
    assert manifest["versions"]["tensorflow"] == metadata.version("tensorflow")
    metrics = json.loads((tiny_run / rundir.METRICS).read_text())
    assert len(metrics["epochs"]) == 1 and 0 <= metrics["val_accuracy"] <= 1


def test_tflite_parity(tiny_run, lite):
    import tensorflow as tf

    parity = json.loads((tiny_run / rundir.METRICS).read_text())["parity"]
    assert parity["images"] >= 100 and parity["float32_max_abs_diff"] <= 1e-4
    assert parity["int8_relative_error"] <= 0.05 and parity["int8_top1_agreement"] >= 0.99
    images = lite.val.images[:8]
    keras_out = tf.keras.models.load_model(tiny_run / rundir.MOBILE_KERAS).predict(images, verbose=0)
    assert np.abs(MobileStage(rundir.mobile(tiny_run)).run(images) - keras_out).max() <= 1e-4
    as_int8 = MobileStage(rundir.mobile(tiny_run, int8=True)).run(images)
    assert as_int8.shape == keras_out.shape and np.isfinite(as_int8).all()


def test_existing_run_dir_refused_then_forced(tiny_run, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    result = splitleak("train", "--epochs", 1, "--limit", 32, "--out", out)
    assert result.returncode == 2 and "already exists; pass --force" in result.stderr
    assert (out / "keep.txt").read_text() == "mine"
    result = splitleak("train", "--epochs", 1, "--limit", 32, "--out", out, "--force")
    assert result.returncode == 0, result.stderr[-2000:]
    assert {p.name for p in out.iterdir()} == ARTIFACTS


def test_unwritable_or_bad_arguments_leave_nothing(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = splitleak("train", "--epochs", 1, "--limit", 32, "--out", blocker / "run")
    assert result.returncode == 2 and "cannot write to" in result.stderr
    assert "Traceback" not in result.stderr
    result = splitleak("train", "--epochs", 0, "--out", tmp_path / "run")
    assert result.returncode == 2 and "must be positive" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_same_seed_same_run(tiny_run, tmp_path):
    result = splitleak("train", "--protocol", "lite", "--epochs", 1, "--limit", 96,
                       "--out", tmp_path / "again")
    assert result.returncode == 0, result.stderr[-2000:]
    first, again = (json.loads((d / rundir.METRICS).read_text()) for d in (tiny_run, tmp_path / "again"))
    assert first["epochs"] == again["epochs"]


def test_bad_split_depth_is_one_line(tmp_path):
    result = splitleak("train", "--split-after", 5, "--out", tmp_path / "run")
    assert result.returncode == 2 and "--split-after" in result.stderr and "5" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "run").exists()


@pytest.mark.slow
def test_saved_models_reproduce_the_reported_validation_epoch(tmp_path, lite):
    """The weights on disk are the best epoch's, not the last's (Keras 2.15's EarlyStopping
    restores only when it stops early); Keras and TFLite reproduce metrics.json."""
    import tensorflow as tf

    out, limit = tmp_path / "run", 128
    result = splitleak("train", "--epochs", 4, "--limit", limit, "--lr", "1e-2", "--split-after", 2,
                       "--out", out)
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = json.loads((out / rundir.METRICS).read_text())
    best = metrics["epochs"][metrics["best_epoch"] - 1]
    last = metrics["epochs"][-1]
    assert best["val_loss"] != pytest.approx(last["val_loss"], abs=1e-3)  # the case that broke
    val = lite.val.select(slice(0, limit))
    labels = lite.labels(val)
    mobile = tf.keras.models.load_model(out / rundir.MOBILE_KERAS)
    head = tf.keras.models.load_model(out / rundir.HEAD_KERAS)
    head.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    for name, activations in (("keras", mobile.predict(val.images, verbose=0)),
                              ("tflite", MobileStage(rundir.mobile(out)).run(val.images))):
        loss, accuracy = head.evaluate(activations, labels, verbose=0)
        assert accuracy == pytest.approx(metrics["val_accuracy"], abs=1e-6), name
        assert loss == pytest.approx(best["val_loss"], abs=1e-3), name
