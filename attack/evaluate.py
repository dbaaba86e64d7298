"""Evaluate an attack: reconstruct a split (or a capture), score it, and save what was scored.

`score_blackbox`, `score_whitebox` and `score_capture` query, reconstruct and score, and return an
`Evaluation` (attack/scoring.py); they time nothing and write nothing. Their callers time the
decoder (`speed`) if they want, and `save` writes the PNG grids and eval.json as
{"blackbox" | "whitebox": {split | split-defended | "capture": result}}. Every result has the
keys of `scoring.score` (n, reconstruction, baselines, per_group) and, once saved, `grids`, plus
its own: black box `target`, `defense`, `decoder_defense`, `attacker` (naive, adaptive or
undefended), `training_images` (and `frames_per_s` where the caller timed it); white box `run`,
`config`, `trace`; a capture `capture`, `frames`, `rejected`, `nodes` (unscored captures have
None for the scores).
"""

import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from splitleak.attack import blackbox, grids, metrics, replay, store
from splitleak.attack.config import WHITEBOX_IMAGES, WhiteboxConfig
from splitleak.attack.scoring import Evaluation, score, split_key
from splitleak.cloud import rundir

SPLITS = ("test", "attacker")
SEED_TRAINING_LOSS = 0.0413  # the seed's final decoder training loss (MSE), for comparison
THROUGHPUT_BATCH = 256
EVAL_NOISE_SEED = 2  # defence noise on evaluated splits (decoders train with their own seed)


def select(images, limit: int | None):
    """The first `limit` images of an ImageSet (all when None)."""
    if limit is not None and limit < 1:
        raise ValueError(f"--limit must be a positive integer, got {limit}")
    return images if limit is None else images.select(slice(0, limit))


def attacker_images(proto, manifest: dict) -> np.ndarray:
    """The surrogate images the decoder was trained with (its hold-out included)."""
    return select(proto.attacker, manifest["data"].get("limit")).images


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"unknown split '{split}'; expected one of {', '.join(SPLITS)}")


def _protocol(name: str, proto, omniglot_dir):
    """`proto` if given (it must be the protocol named), else the protocol loaded."""
    from splitleak.cloud.data import load_protocol

    if proto is None:
        return load_protocol(name, omniglot_dir)
    if proto.name != name:
        raise ValueError(f"expected the {name} protocol, got {proto.name}")
    return proto


def score_blackbox(attack_dir, split: str = "test", target=None, force: bool = False,
                   omniglot_dir=None, limit: int | None = None, defense: str | None = None,
                   proto=None) -> Evaluation:
    """Query the target (through `defense`, as the device publishes) on a split, reconstruct with
    ATTACK_DIR's decoder, score. The attacker is "adaptive" when its decoder was trained through
    the same defence, else "naive". `proto`: the decoder's protocol if already loaded."""
    from splitleak.edge.defences import Device

    _check_split(split)
    decoder, manifest = store.load_decoder(attack_dir)
    device = Device.from_model(target or manifest["target"]["path"], defense, EVAL_NOISE_SEED)
    stage = device.stage
    store.check_target(manifest, stage.sha256, force)
    proto = _protocol(manifest["data"]["protocol"], proto, omniglot_dir)
    images = select(getattr(proto, split), limit)
    activations = blackbox.query(device, images.images, f"query {split}")
    recons = blackbox.reconstruct(decoder, activations)
    attacker = attacker_images(proto, manifest)
    trained_through = manifest.get("defense", "")
    result = {"target": {"path": str(stage.path), "sha256": stage.sha256,
                         "matches_manifest": stage.sha256 == manifest["target"]["sha256"]},
              "defense": device.spec, "decoder_defense": trained_through,
              "attacker": ("adaptive" if trained_through == device.spec else "naive")
              if device.spec else "undefended"}
    result |= score(images.images, recons, images.alphabets, attacker.mean(axis=0))
    own = attacker[~blackbox.holdout_mask(attacker, manifest["config"]["val_percent"])]
    own_recons = blackbox.reconstruct(decoder, blackbox.query(device, own, "query training images"))
    result["training_images"] = {"mse": float(np.mean((own - own_recons) ** 2)), "n": len(own),
                                 "seed_final_training_loss": SEED_TRAINING_LOSS}
    return Evaluation("blackbox", split_key(split, device.spec), result, recons, images.images,
                      activations)


def score_whitebox(run_dir, split: str = "test", limit: int | None = WHITEBOX_IMAGES,
                   cfg: WhiteboxConfig | None = None, omniglot_dir=None, capture_file=None,
                   start_from=None, defense: str | None = None, proto=None) -> Evaluation:
    """Invert the run's mobile stage by optimisation: on a split's first `limit` images as the
    device publishes them (through `defense`), or on a capture file's first `limit` frames.

    `start_from`: an ATTACK_DIR whose decoder's reconstructions are the starts (a learned prior).
    `proto`: the run's protocol if already loaded."""
    import tensorflow as tf

    from splitleak.attack import whitebox

    _check_split(split)
    run_dir = Path(run_dir)
    run = rundir.read_manifest(run_dir)
    mobile_path = run_dir / rundir.MOBILE_KERAS
    if not mobile_path.is_file():
        raise FileNotFoundError(f"{mobile_path} not found; is {run_dir} a splitleak run directory?")
    cfg = (cfg or WhiteboxConfig()).validate()
    decoder = store.load_decoder(start_from)[0] if start_from else None
    mobile = tf.keras.models.load_model(mobile_path, compile=False)
    config = asdict(cfg) | {"start": str(Path(start_from).resolve()) if start_from else "blank",
                            "defense": defense or ""}
    head = {"run": str(run_dir.resolve()), "config": config}
    if capture_file:  # the activations an eavesdropper recorded, not a split of ours
        frames, rejected = replay.read_frames(capture_file, mobile.output_shape[1:], limit)
        activations = np.stack([f.as_float32() for f in frames])
        recons, trace = whitebox.invert(mobile, activations, cfg,
                                        starts=_starts(decoder, activations))
        result = head | {"trace": trace} | replay.score(frames, rejected, recons, capture_file)
        return Evaluation("whitebox", "capture", result, recons, None, activations, frames)
    proto = _protocol(run["protocol"], proto, omniglot_dir)
    images = select(getattr(proto, split), limit)
    activations = whitebox.intercepted(run_dir, mobile, images.images, defense, EVAL_NOISE_SEED)
    recons, trace = whitebox.invert(mobile, activations, cfg, starts=_starts(decoder, activations))
    result = head | {"trace": trace}
    result |= score(images.images, recons, images.alphabets, proto.attacker.images.mean(axis=0))
    return Evaluation("whitebox", split_key(split, defense), result, recons, images.images,
                      activations)


def _starts(decoder, activations: np.ndarray):
    """The decoder's reconstructions, or None (a blank start) without a decoder."""
    return None if decoder is None else blackbox.reconstruct(decoder, activations)


def score_capture(attack_dir, capture_file, truth=None, omniglot_dir=None,
                  limit: int | None = None) -> Evaluation:
    """Reconstruct a capture file's frames with ATTACK_DIR's decoder; score them per node against
    `truth` (the images the edge streamed, indexed by sequence number) if given."""
    from splitleak.cloud.data import load_protocol

    decoder, manifest = store.load_decoder(attack_dir)
    frames, rejected = replay.read_frames(capture_file, decoder.input_shape[1:], limit)
    activations = np.stack([f.as_float32() for f in frames])
    recons = blackbox.reconstruct(decoder, activations)
    mean = None
    if truth is not None:
        proto = load_protocol(manifest["data"]["protocol"], omniglot_dir)
        mean = attacker_images(proto, manifest).mean(axis=0)
    result = replay.score(frames, rejected, recons, capture_file, truth, mean)
    return Evaluation("blackbox", "capture", result, recons, replay.originals(frames, truth),
                      activations, frames)


def whitebox_dir(run_dir, attack_dir=None) -> Path:
    """Where a white-box evaluation is saved: ATTACK_DIR (which must exist), else RUN_DIR/whitebox."""
    if attack_dir is None:
        return Path(run_dir) / "whitebox"
    if not Path(attack_dir).is_dir():
        raise FileNotFoundError(f"attack directory not found: {attack_dir}")
    return Path(attack_dir)


def write_grids(folder, prefix: str, recons, originals=None) -> list[str]:
    """Write <prefix>-first16.png (under the originals if given) and, with originals,
    <prefix>-best-worst.png by MSE; return their names."""
    if originals is None:
        return [grids.save_grid(Path(folder) / f"{prefix}-first16.png",
                                [("reconstructed", recons[:16])]).name]
    return grids.first_and_extremes(folder, prefix, originals, recons,
                                    metrics.mse(originals, recons))


def save(folder, evaluation: Evaluation) -> Path:
    """Write an evaluation into `folder`: its grids (named in the result's `grids`), a capture's
    PNG per frame (folder/<name>/<node>/<seq>.png), and eval.json[attack][split]; return
    eval.json's path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    e = evaluation
    if e.frames is not None:
        replay.save_pngs(folder, e.name, e.frames, e.recons)
    result = e.result | {"grids": write_grids(folder, e.name, e.recons, e.originals)}
    return store.update_eval(folder, e.attack, e.split, result)


def throughput(decoder, activations: np.ndarray, frames: int = 2048, repeats: int = 3) -> float:
    """Frames reconstructed per second in batches of THROUGHPUT_BATCH: best of a few passes."""
    reps = int(np.ceil(frames / len(activations)))
    batch = np.tile(activations, (reps, 1, 1, 1))[:frames]
    blackbox.reconstruct(decoder, batch[:THROUGHPUT_BATCH], THROUGHPUT_BATCH)  # warm-up
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        blackbox.reconstruct(decoder, batch, THROUGHPUT_BATCH)
        best = min(best, time.perf_counter() - start)
    return float(len(batch) / best)


def speed(attack_dir, activations: np.ndarray) -> dict:
    """How fast ATTACK_DIR's decoder reconstructs `activations`: eval.json's `frames_per_s`."""
    decoder, _ = store.load_decoder(attack_dir)
    return {"batch": THROUGHPUT_BATCH, "value": throughput(decoder, activations)}
