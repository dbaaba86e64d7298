"""Train a black-box decoder against a deployed target and save it as an attack folder.

The attacker queries the device (its TFLite stage, through its defences when it knows them: an
adaptive attacker) on its own surrogate images and learns the inverse (He, Zhang & Lee, "Model
inversion attacks against collaborative inference", ACSAC 2019).
"""

from pathlib import Path

from splitleak.attack import blackbox, store
from splitleak.attack.config import TrainConfig
from splitleak.cloud import rundir
from splitleak.edge.defences import Device


def train_decoder(target: dict, proto, cfg: TrainConfig, out: Path, force: bool,
                  limit: int | None = None, defense: str | None = None) -> dict:
    """Train a decoder against `target` (store.target_info) on proto's attacker split, through
    the device's defences if given; save it to `out` and return its manifest."""
    images = proto.attacker.images[:limit]
    device = Device.from_model(target["path"], defense, cfg.seed)
    decoder, history = blackbox.train(device, images, cfg)
    manifest = {
        "attack": "black-box inverse network (He, Zhang & Lee, ACSAC 2019)",
        "target": target,
        "defense": device.spec,  # what the queries went through ("" for none)
        "data": {"protocol": proto.name, "source": proto.source, "split": "attacker",
                 "images": int(len(images)), "limit": limit},
        "config": cfg.__dict__ | {"loss": cfg.resolved_loss()},
        "result": {k: history[k] for k in ("kept_epoch", "val_mse", "train_images",
                                           "val_images")} | {"epochs_run": len(history["epochs"])},
    }
    store.save(out, decoder, history, manifest, force)
    print(f"kept epoch {history['kept_epoch']} of {len(history['epochs'])}: held-out MSE "
          f"{history['val_mse']:.4f} on {history['val_images']} images")
    print(f"wrote {out}")
    return manifest


def train_against(target_path, cfg: TrainConfig, out=None, protocol: str | None = None,
                  force: bool = False, limit: int | None = None, defense: str | None = None,
                  omniglot_dir=None) -> Path:
    """`splitleak attack train`: a decoder against the TFLite stage at `target_path`, trained on
    the attacker split of `protocol` (default: the target run's, else lite) into `out` (default
    runs/attack-<protocol>-<arch>). An existing `out` is refused before training unless `force`."""
    from splitleak.cloud.data import load_protocol

    target = store.target_info(target_path)
    protocol = protocol or target["run_protocol"] or rundir.DEFAULT_PROTOCOL
    out = Path(out or rundir.RUNS / f"attack-{protocol}-{cfg.arch}")
    if out.exists() and not force:
        raise FileExistsError(f"{out} already exists; pass --force to replace it")
    train_decoder(target, load_protocol(protocol, omniglot_dir), cfg.validate(), out, force, limit,
                  defense)
    return out


def ensure_decoder(attack_dir: Path, run_dir: Path, epochs: int, proto) -> None:
    """Reuse a decoder trained against this run's mobile stage, or train one (black box)."""
    target = store.target_info(rundir.mobile(run_dir))
    if rundir.finished(attack_dir):
        if store.load_manifest(attack_dir)["target"]["sha256"] == target["sha256"]:
            print(f"reusing the decoder in {attack_dir}")
            return
        print(f"{attack_dir} was trained against another target: retraining it")
    print(f"training a black-box decoder into {attack_dir} (up to {epochs} epochs)")
    train_decoder(target, proto, TrainConfig(epochs=epochs), attack_dir, force=True)
