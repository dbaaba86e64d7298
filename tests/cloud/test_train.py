import json
from importlib import metadata

import numpy as np
import pytest

from splitleak.edge.runtime import MobileStage, sha256_file
from tests.conftest import splitleak

ARTIFACTS = {"mobile.keras", "head.keras", "mobile.tflite", "mobile_int8.tflite",
             "metrics.json", "manifest.json"}


@pytest.mark.parametrize("norm", ["batch", "group", "none"])
def test_model_shapes(norm):
    from splitleak.cloud import model

    mobile, head = model.mobile_stage(norm), model.head(3)
    assert mobile.output_shape == (None, 1, 1, 32)
    assert model.split_model(mobile, head).output_shape == (None, 3)
    import tensorflow as tf

    kinds = {type(layer) for layer in mobile.layers}
    assert (tf.keras.layers.BatchNormalization in kinds) == (norm == "batch")
    assert (tf.keras.layers.GroupNormalization in kinds) == (norm == "group")


def test_tiny_run_writes_every_artifact_with_hashes(tiny_run):
    assert {p.name for p in tiny_run.iterdir()} == ARTIFACTS
    manifest = json.loads((tiny_run / "manifest.json").read_text())
    assert set(manifest["artifacts"]) == ARTIFACTS - {"manifest.json"}
    for name, digest in manifest["artifacts"].items():
        assert sha256_file(tiny_run / name) == digest, name
    assert manifest["protocol"] == "lite" and manifest["config"]["seed"] == 1
    assert manifest["activation"] == {"shape": [1, 1, 32], "dtype": "float32"}
    assert manifest["tflite"]["mobile_int8.tflite"]["output"]["dtype"] == "int8"
    assert manifest["versions"]["tensorflow"] == metadata.version("tensorflow")
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    assert len(metrics["epochs"]) == 1 and 0 <= metrics["val_accuracy"] <= 1


def test_tflite_parity(tiny_run, lite):
    import tensorflow as tf

    parity = json.loads((tiny_run / "metrics.json").read_text())["parity"]
    assert parity["images"] >= 100 and parity["float32_max_abs_diff"] <= 1e-4
    images = lite.val.images[:8]
    keras_out = tf.keras.models.load_model(tiny_run / "mobile.keras").predict(images, verbose=0)
    assert np.abs(MobileStage(tiny_run / "mobile.tflite").run(images) - keras_out).max() <= 1e-4
    as_int8 = MobileStage(tiny_run / "mobile_int8.tflite").run(images)
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
    first, again = (json.loads((d / "metrics.json").read_text()) for d in (tiny_run, tmp_path / "again"))
    assert first["epochs"] == again["epochs"]
