"""Attack directories: the trained decoder, its manifest, and the evaluation results.

ATTACK_DIR after `splitleak attack train`:
  decoder.keras   the decoder (Keras; load with `load_decoder`)
  manifest.json   target (path, sha256, its run's protocol), data, config, versions, sha256s
  history.json    per-epoch losses, the epoch kept
and after `splitleak attack eval` / `whitebox`: eval.json and PNG grids.
"""

import json
import os
import tempfile
from pathlib import Path

from splitleak.cloud import artifacts
from splitleak.cloud.rundir import DECODER, EVAL, HISTORY, MANIFEST
from splitleak.edge.runtime import sha256_file


def target_info(path) -> dict:
    """Describe a TFLite target: absolute path, sha256, and its run directory's protocol."""
    path = Path(path).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"target TFLite model not found: {path}")
    info = {"path": str(path), "sha256": sha256_file(path), "run_protocol": None,
            "in_run_manifest": None}
    run_manifest = path.parent / MANIFEST
    if run_manifest.is_file():
        run = artifacts.read_json(run_manifest)
        info["run_protocol"] = run.get("protocol")
        info["in_run_manifest"] = run.get("artifacts", {}).get(path.name) == info["sha256"]
    return info


def check_target(manifest: dict, sha256: str, force: bool = False) -> None:
    """Refuse a target whose sha256 differs from the one the decoder was trained on."""
    trained = manifest["target"]["sha256"]
    if sha256 != trained and not force:
        raise ValueError(f"target sha256 {sha256} differs from the one this decoder was trained "
                         f"on ({trained}); pass --force to evaluate anyway")


def save(out, decoder, history: dict, manifest: dict, force: bool = False) -> Path:
    """Write ATTACK_DIR atomically: nothing is left behind if any step fails."""
    with artifacts.atomic_dir(out, force) as tmp:
        _uncompiled(decoder).save(tmp / DECODER)
        artifacts.write_json(tmp / HISTORY, history)
        manifest = manifest | {"versions": artifacts.versions(),
                               "artifacts": artifacts.hash_artifacts(tmp)}
        artifacts.write_json(tmp / MANIFEST, manifest)
    return Path(out)


def _uncompiled(model):
    """A copy without loss and optimizer state: smaller, and loadable without custom losses."""
    import tensorflow as tf

    copy = tf.keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


def load_manifest(attack_dir) -> dict:
    attack_dir = Path(attack_dir)
    if not attack_dir.is_dir():
        raise FileNotFoundError(f"attack directory not found: {attack_dir}")
    return artifacts.read_json(attack_dir / MANIFEST)


def load_decoder(attack_dir):
    """(decoder Keras model, manifest dict) from ATTACK_DIR, checking the decoder's sha256."""
    import tensorflow as tf

    manifest = load_manifest(attack_dir)
    path = Path(attack_dir) / DECODER
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; is {attack_dir} an attack directory?")
    expected = manifest.get("artifacts", {}).get(DECODER)
    if expected and sha256_file(path) != expected:
        raise ValueError(f"{path} does not match the sha256 in its manifest; retrain it")
    return tf.keras.models.load_model(path, compile=False), manifest


def update_eval(folder, section: str, split: str, result: dict) -> Path:
    """Set eval.json[section][split] = result, keeping the other entries; atomic replace."""
    path = Path(folder) / EVAL
    data = artifacts.read_json(path) if path.is_file() else {}
    data.setdefault(section, {})[split] = result
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{EVAL}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2)
            f.write("\n")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path
