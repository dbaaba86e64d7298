"""Score an attack's reconstructions against the originals, beside two trivial baselines.

Baselines on the same images: a blank page (all zeros: ink = 1, paper = 0) and the attacker set's
mean image — what an attacker gets from the activations without learning anything from them.
`score` measures and writes nothing; `save` writes the PNG grids and eval.json as
{"blackbox" | "whitebox": {split | split-defended | "capture": result}}. Every result has the
keys of `score` (n, reconstruction, baselines, per_group) and `grids`, plus its own: black box
`target`, `training_images`, `frames_per_s`, `defense`, `attacker` (naive, adaptive or
undefended); white box `run`, `config`, `trace`; a capture `capture`, `frames`, `rejected`,
`nodes` (unscored captures have None for the scores).
"""

import time
from pathlib import Path

import numpy as np

from splitleak.attack import blackbox, grids, metrics, store

SPLITS = ("test", "attacker")
SEED_TRAINING_LOSS = 0.0413  # the seed's final decoder training loss (MSE), for comparison
THROUGHPUT_BATCH = 256
EVAL_NOISE_SEED = 2  # defence noise on evaluated splits (decoders train with their own seed)


def score(originals, recons, groups=None, attacker_mean=None) -> dict:
    """Metrics overall and per group, beside the blank page and (if given) the mean image."""
    scores = metrics.per_image(originals, recons)
    baselines = {"blank_page": metrics.evaluate(originals, np.zeros_like(originals))}
    if attacker_mean is not None:
        mean = np.broadcast_to(attacker_mean, originals.shape).astype(np.float32)
        baselines["attacker_mean_image"] = metrics.evaluate(originals, mean)
    return {"n": int(len(originals)), "reconstruction": metrics.summarise(scores),
            "baselines": baselines,
            "per_group": {} if groups is None else metrics.per_group(scores, groups)}


def unscored(n: int) -> dict:
    """The keys of `score` for reconstructions without originals to compare with."""
    return {"n": int(n), "reconstruction": None, "baselines": None, "per_group": None}


def write_grids(folder, prefix: str, recons, originals=None) -> list[str]:
    """Write <prefix>-first16.png (under the originals if given) and, with originals,
    <prefix>-best-worst.png by MSE; return their names."""
    if originals is None:
        return [grids.save_grid(Path(folder) / f"{prefix}-first16.png",
                                [("reconstructed", recons[:16])]).name]
    return grids.first_and_extremes(folder, prefix, originals, recons,
                                    metrics.mse(originals, recons))


def save(folder, section: str, split: str, result: dict, recons, originals=None) -> Path:
    """Write the grids (named in result["grids"]) and eval.json[section][split] = result."""
    result["grids"] = write_grids(folder, f"{section}-{split}", recons, originals)
    return store.update_eval(folder, section, split, result)


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


def select(images, limit: int | None):
    """The first `limit` images of an ImageSet (all when None)."""
    if limit is not None and limit < 1:
        raise ValueError(f"--limit must be a positive integer, got {limit}")
    return images if limit is None else images.select(slice(0, limit))


def attacker_images(proto, manifest: dict) -> np.ndarray:
    """The surrogate images the decoder was trained with (its hold-out included)."""
    return select(proto.attacker, manifest["data"].get("limit")).images


def evaluate_blackbox(attack_dir, split: str = "test", target=None, force: bool = False,
                      omniglot_dir=None, limit: int | None = None, defense: str | None = None
                      ) -> dict:
    """Query the target (through `defense`, as the device publishes) on a split, reconstruct,
    score; write eval.json["blackbox"][split, or split-defended]. The attacker is "adaptive"
    when its decoder was trained through the same defence, else "naive"."""
    from splitleak.cloud.data import load_protocol
    from splitleak.edge.defences import Device
    from splitleak.edge.runtime import MobileStage

    if split not in SPLITS:
        raise ValueError(f"unknown split '{split}'; expected one of {', '.join(SPLITS)}")
    decoder, manifest = store.load_decoder(attack_dir)
    stage = MobileStage(target or manifest["target"]["path"])
    store.check_target(manifest, stage.sha256, force)
    device = Device(stage, defense, EVAL_NOISE_SEED)
    proto = load_protocol(manifest["data"]["protocol"], omniglot_dir)
    images = select(getattr(proto, split), limit)
    activations = blackbox.query(device, images.images, f"query {split}")
    recons = blackbox.reconstruct(decoder, activations)
    attacker = attacker_images(proto, manifest)
    result = {"target": {"path": str(stage.path), "sha256": stage.sha256,
                         "matches_manifest": stage.sha256 == manifest["target"]["sha256"]},
              "defense": device.spec, "decoder_defense": manifest.get("defense", ""),
              "attacker": ("adaptive" if manifest.get("defense", "") == device.spec else "naive")
              if device.spec else "undefended"}
    result |= score(images.images, recons, images.alphabets, attacker.mean(axis=0))
    own = attacker[~blackbox.holdout_mask(attacker, manifest["config"]["val_percent"])]
    own_recons = blackbox.reconstruct(decoder, blackbox.query(device, own, "query training images"))
    result["training_images"] = {"mse": float(np.mean((own - own_recons) ** 2)), "n": len(own),
                                 "seed_final_training_loss": SEED_TRAINING_LOSS}
    result["frames_per_s"] = {"batch": THROUGHPUT_BATCH, "value": throughput(decoder, activations)}
    save(attack_dir, "blackbox", f"{split}-defended" if device.spec else split, result, recons,
         images.images)
    return result


def evaluate_whitebox(run_dir, split: str = "test", limit: int | None = 64, cfg=None,
                      attack_dir=None, omniglot_dir=None, capture_file=None,
                      start_from=None, defense: str | None = None) -> tuple[dict, Path]:
    """Invert the run's mobile stage on a split by optimisation; write eval.json["whitebox"].

    `start_from`: an ATTACK_DIR whose decoder's reconstructions are the starts (a learned prior)."""
    from dataclasses import asdict

    import tensorflow as tf

    from splitleak.attack import whitebox
    from splitleak.cloud import artifacts
    from splitleak.cloud.data import load_protocol

    if split not in SPLITS:
        raise ValueError(f"unknown split '{split}'; expected one of {', '.join(SPLITS)}")
    run_dir = Path(run_dir)
    run = artifacts.read_json(run_dir / "manifest.json")
    mobile_path = run_dir / "mobile.keras"
    if not mobile_path.is_file():
        raise FileNotFoundError(f"{mobile_path} not found; is {run_dir} a splitleak run directory?")
    cfg = (cfg or whitebox.WhiteboxConfig()).validate()
    decoder = store.load_decoder(start_from)[0] if start_from else None
    folder = Path(attack_dir) if attack_dir else run_dir / "whitebox"
    if attack_dir and not folder.is_dir():
        raise FileNotFoundError(f"attack directory not found: {folder}")
    mobile = tf.keras.models.load_model(mobile_path, compile=False)
    config = asdict(cfg) | {"start": str(Path(start_from).resolve()) if start_from else "blank",
                            "defense": defense or ""}
    folder.mkdir(parents=True, exist_ok=True)
    if capture_file:  # the activations an eavesdropper recorded, not a split of ours
        from splitleak.attack import replay

        frames, rejected = replay.read_frames(capture_file, mobile.output_shape[1:], limit)
        activations = np.stack([f.as_float32() for f in frames])
        recons, trace = whitebox.invert(mobile, activations, cfg,
                                        starts=_starts(decoder, activations))
        result = {"run": str(run_dir.resolve()), "config": config, "trace": trace}
        result |= replay.score(frames, rejected, recons, capture_file)
        replay.save_pngs(folder, "whitebox-capture", frames, recons)
        return result, save(folder, "whitebox", "capture", result, recons)
    proto = load_protocol(run["protocol"], omniglot_dir)
    images = select(getattr(proto, split), limit)
    activations = whitebox.intercepted(run_dir, mobile, images.images, defense, EVAL_NOISE_SEED)
    recons, trace = whitebox.invert(mobile, activations, cfg, starts=_starts(decoder, activations))
    result = {"run": str(run_dir.resolve()), "config": config, "trace": trace}
    result |= score(images.images, recons, images.alphabets, proto.attacker.images.mean(axis=0))
    return result, save(folder, "whitebox", f"{split}-defended" if defense else split, result,
                        recons, images.images)


def _starts(decoder, activations: np.ndarray):
    """The decoder's reconstructions, or None (a blank start) without a decoder."""
    return None if decoder is None else blackbox.reconstruct(decoder, activations)


def evaluate_capture(attack_dir, capture_file, truth=None, omniglot_dir=None,
                     limit: int | None = None) -> dict:
    """Reconstruct a capture file's frames with the black-box decoder; eval.json["blackbox"]["capture"]."""
    from splitleak.attack import replay
    from splitleak.cloud.data import load_protocol

    decoder, manifest = store.load_decoder(attack_dir)
    frames, rejected = replay.read_frames(capture_file, decoder.input_shape[1:], limit)
    recons = blackbox.reconstruct(decoder, np.stack([f.as_float32() for f in frames]))
    mean = None
    if truth is not None:
        proto = load_protocol(manifest["data"]["protocol"], omniglot_dir)
        mean = attacker_images(proto, manifest).mean(axis=0)
    result = replay.score(frames, rejected, recons, capture_file, truth, mean)
    replay.save_pngs(attack_dir, "blackbox-capture", frames, recons)
    save(attack_dir, "blackbox", "capture", result, recons, replay.originals(frames, truth))
    return result
