"""A throwaway target run (untrained mobile stage + TFLite) and a tiny attack; `omniglot_dir`
and `lite` come from tests/conftest.py."""

import json
from pathlib import Path

import numpy as np
import pytest

from splitleak.cloud import rundir
from splitleak.tools import cli


def make_run(folder: Path, seed: int) -> Path:
    """A run directory with an untrained mobile stage: mobile.keras, mobile.tflite, manifest."""
    import tensorflow as tf

    from splitleak.cloud.model import mobile_stage
    from splitleak.edge.runtime import sha256_file

    tf.keras.utils.set_random_seed(seed)
    folder.mkdir(parents=True)
    mobile = mobile_stage()
    mobile.save(folder / rundir.MOBILE_KERAS)
    tflite = tf.lite.TFLiteConverter.from_keras_model(mobile).convert()
    (rundir.mobile(folder)).write_bytes(tflite)
    hashes = {name: sha256_file(folder / name) for name in (rundir.MOBILE_KERAS, rundir.MOBILE_TFLITE)}
    (folder / rundir.MANIFEST).write_text(json.dumps({"protocol": "lite", "artifacts": hashes}))
    return folder


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory) -> Path:
    return make_run(tmp_path_factory.mktemp("target") / "run", seed=0)


@pytest.fixture(scope="session")
def other_run(tmp_path_factory) -> Path:
    return make_run(tmp_path_factory.mktemp("other") / "run", seed=1)


def splitleak(*argv) -> int:
    """Run `splitleak ...` in this process; returns the exit code."""
    return cli.main([str(a) for a in argv])


@pytest.fixture(scope="session")
def cli_run():
    """The `splitleak` entry point as a function: cli_run("attack", "eval", ...) -> exit code."""
    return splitleak


@pytest.fixture(scope="session")
def attack_dir(tmp_path_factory, run_dir, omniglot_dir) -> Path:
    """A decoder trained for one epoch on 48 attacker images."""
    out = tmp_path_factory.mktemp("attack") / "attack"
    code = splitleak("attack", "train", "--target", rundir.mobile(run_dir), "--epochs", 1,
                     "--limit", 48, "--out", out, "--omniglot-dir", omniglot_dir)
    assert code == 0
    return out


@pytest.fixture
def rng():
    return np.random.default_rng(0)
