"""One job of the privacy experiment: a setting and a seed, from training to the figures of one
row. This module and the ones it calls compute every figure a results folder holds
(tools/experiments/provenance.py CODE); the presets, the loop, the estimate and the tables are
elsewhere, so changing them leaves committed results current.

A setting's key is a hash of its fields (those left at None out, so keys written before a field
existed still hold). Targets and decoders are stored in a models folder under the hash of what
they depend on, so settings (and presets sharing the folder) share them.

Per job: train (or reuse) the target and a black-box decoder on clean queries (the naive
attacker) and, with an edge defence, one on defended queries (the adaptive attacker); score both
on the defended test activations. The white box inverts the first test images from the stronger
attacker's reconstruction (a learned prior; optionally also from a blank start), and the stronger
black box is scored again on those images, ranked among them as the white box is. Also: the
deployment's accuracy, the activation's shape, bytes per frame, scale and distance correlation
with the images.
"""

import hashlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from splitleak.attack.config import WHITEBOX_IMAGES
from splitleak.attack.config import TrainConfig as DecoderConfig
from splitleak.cloud import rundir
from splitleak.cloud.config import DEFAULT_SPLIT, TrainConfig

TARGETS = "targets"  # the models folder's trained targets, one folder per target_key
ATTACKS = "attacks"  # its decoders, one folder per target and decoder key
GRID_IMAGES = 8  # test images in a row's grid


@dataclass(frozen=True)
class Setting:
    """Everything a row depends on."""

    name: str
    split_after: int = DEFAULT_SPLIT
    norm: str = "group"  # the same network with and without DP: GroupNorm, no dropout
    dropout: float = 0.0
    dp: bool = False
    noise_multiplier: float = 0.0
    nopeek: float = 0.0
    defense: str = ""
    epochs: int = TrainConfig.epochs
    attack_epochs: int = DecoderConfig.epochs
    whitebox_limit: int = WHITEBOX_IMAGES
    limit: int | None = None  # the target and the attacker train on the first N images (labs)
    seed: int | None = None  # the target's and the attacker's seed (default: their configs')
    attack_arch: str | None = None  # the decoder's architecture (default: the decoder config's)
    attack_patience: int | None = None  # its early stopping (0: all epochs; default: config's)
    blank_whitebox: bool | None = None  # also the white box from a blank start

    def key(self) -> str:  # fields left at None stay out: keys from before they existed hold
        return key_hash({k: v for k, v in asdict(self).items() if v is not None})

    def train_config(self) -> TrainConfig:
        return TrainConfig(epochs=self.epochs, split_after=self.split_after, norm=self.norm,
                           dropout=self.dropout, dp=self.dp, nopeek=self.nopeek,
                           noise_multiplier=self.noise_multiplier or 1.0, limit=self.limit,
                           **({"seed": self.seed} if self.seed is not None else {}))

    def decoder_config(self) -> DecoderConfig:
        given = {"seed": self.seed, "arch": self.attack_arch, "patience": self.attack_patience}
        return DecoderConfig(epochs=self.attack_epochs,
                             **{k: v for k, v in given.items() if v is not None})

    def target_key(self) -> str:
        return key_hash(asdict(self.train_config()))


def key_hash(obj) -> str:
    """The first 12 hex digits of the sha256 of obj as sorted JSON."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:12]


def target_dir(models: Path, s: Setting) -> Path:
    return Path(models) / TARGETS / s.target_key()


def decoder_dir(models: Path, s: Setting, defense: str) -> Path:
    """A decoder trained on queries through `defense` ("" = clean) against s's target."""
    what = [defense, s.attack_epochs] + [v for v in (s.attack_arch, s.attack_patience)
                                         if v is not None]
    return Path(models) / ATTACKS / f"{s.target_key()}-{key_hash(what)}"


def run(s: Setting, proto, models: Path) -> tuple[dict, list]:
    """Train what the models folder lacks, attack, score: one row (without its provenance, with
    the seconds of each step it ran) and its grid's lines, (label, images) pairs."""
    from splitleak.attack import evaluate, scoring, store
    from splitleak.attack.train import train_decoder
    from splitleak.cloud import train
    from splitleak.tools.deploy.demo import frame_bytes

    seconds, clock = {}, time.monotonic()

    def lap(step: str) -> None:
        nonlocal clock
        seconds[step] = round(seconds.get(step, 0.0) + time.monotonic() - clock, 1)
        clock = time.monotonic()

    target = target_dir(models, s)
    if not rundir.finished(target):
        train.run(proto, s.train_config(), target, force=True)
        lap("target")
    info = store.target_info(rundir.mobile(target))
    decoders = {}
    for kind, defense in (("naive", ""), ("adaptive", s.defense)) if s.defense else (("naive", ""),):
        folder = decoder_dir(models, s, defense)
        clock = time.monotonic()
        if not rundir.finished(folder):
            train_decoder(info, proto, s.decoder_config(), folder, True, limit=s.limit,
                          defense=defense or None)
            lap("decoders")
        decoders[kind] = folder
    clock = time.monotonic()
    defense = s.defense or None
    black = {kind: evaluate.score_blackbox(folder, "test", defense=defense, proto=proto)
             for kind, folder in decoders.items()}
    lap("blackbox")
    attacker = decoders.get("adaptive", decoders["naive"])
    white = evaluate.score_whitebox(target, "test", s.whitebox_limit, start_from=attacker,
                                    defense=defense, proto=proto)
    lap("whitebox")
    if s.blank_whitebox:
        blank = evaluate.score_whitebox(target, "test", s.whitebox_limit, defense=defense,
                                        proto=proto)
        lap("whitebox_blank")
    strong, n = black.get("adaptive", black["naive"]), white.result["n"]
    subset = scoring.score(strong.originals[:n], strong.recons[:n],
                           attacker_mean=proto.attacker.images.mean(axis=0))
    metrics = rundir.read_metrics(target)
    row = {"key": s.key(), "setting": asdict(s), "target": str(target),
           "classes": len(proto.classes),
           "val_accuracy": metrics["val_accuracy"], **deployment(target, proto, s.defense),
           "epsilon": metrics["privacy"]["epsilon"] if s.dp else None,
           "activation": list(rundir.activation_shape(target)),
           "bytes_per_frame": frame_bytes(target, "edge")}
    row |= {kind: figures(e.result) for kind, e in black.items()}
    row |= {"blackbox_subset": figures(subset), "whitebox": figures(white.result)}
    lines = [("original", strong.originals[:GRID_IMAGES])]
    lines += [(f"{kind} attacker", e.recons[:GRID_IMAGES]) for kind, e in black.items()]
    lines.append(("white box", white.recons[:GRID_IMAGES]))
    if s.blank_whitebox:
        row["whitebox_blank"] = figures(blank.result)
        lines.append(("white box, blank start", blank.recons[:GRID_IMAGES]))
    lap("evaluate")
    return row | {"seconds": seconds}, lines


def figures(result: dict) -> dict:
    """The figures of one evaluation's result (attack/scoring.py) that a row keeps, with its two
    baselines: the attacker set's mean image and the blank page."""
    rec, ident = result["reconstruction"], result["reconstruction"]["identification"]
    out = {"n": result["n"], "mse": rec["mse"], "psnr": rec["psnr"], "ssim": rec["ssim"],
           "top1": ident["top1"],
           "top5": ident["top5"], "median_rank": ident["median_rank"],
           "chance_top1": ident["chance_top1"]}
    for name, key in (("mean_image", "attacker_mean_image"), ("blank_page", "blank_page")):
        base = result["baselines"][key]
        out |= {f"{name}_mse": base["mse"], f"{name}_ssim": base["ssim"],
                f"{name}_top1": base["identification"]["top1"]}
    return out


def deployment(target: Path, proto, defense: str) -> dict:
    """Validation accuracy of the deployment: what the device publishes (TFLite stage and the
    defence), classified by the cloud head; an edge defence's cost shows here, not in training.
    Also, of the undefended activations: their standard deviation (the scale a noise σ acts
    on) and their distance correlation with the images (what NoPeek lowers)."""
    import numpy as np
    import tensorflow as tf

    from splitleak.attack.evaluate import EVAL_NOISE_SEED

    head = tf.keras.models.load_model(target / rundir.HEAD_KERAS, compile=False)
    acts = rundir.device(target, defense, EVAL_NOISE_SEED).run(proto.val.images)
    accuracy = np.mean(head.predict(acts, verbose=0).argmax(1) == proto.labels(proto.val))
    clean = acts if not defense else rundir.device(target).run(proto.val.images)
    return {"accuracy": float(accuracy), "activation_std": float(clean.std()),
            "dcor": mean_dcor(proto.val.images, clean)}


def mean_dcor(images, acts, batch: int = 32) -> float:
    """Distance correlation of images and their activations, averaged over batches of `batch`
    (the estimate NoPeek trains against: it depends on the batch size)."""
    from splitleak.cloud.nopeek import distance_correlation

    values = [float(distance_correlation(images[i:i + batch], acts[i:i + batch]))
              for i in range(0, len(images) - batch + 1, batch)]
    return sum(values) / len(values)
