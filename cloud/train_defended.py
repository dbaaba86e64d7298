"""Train a target with defences in training (cloud/defended.py) and write its run folder.

The recipe, the input pipeline and the run folder are cloud/train.py's (the same files, plus
metrics.json's "defence": the settings, the activation's std on the training images and the edge
defence that publishes what the head trained on). The weights of the best validation epoch are
kept, validation running through the same noise as training.

The run folder's writing mirrors train.run's: folding the two into one function changes
cloud/train.py, whose hash the committed sweep rows record (tools/experiments/provenance.py
CODE); it is folded when that file next changes for a reason of its own.
"""

import sys
from dataclasses import asdict

import numpy as np
import tensorflow as tf

from splitleak.cloud import artifacts, export, rundir
from splitleak.cloud.config import TrainConfig
from splitleak.cloud.data import Protocol
from splitleak.cloud.defended import Defence, DefendedModel, KeepBestResisting, Resist, edge_spec, stages
from splitleak.cloud.train import PARITY_IMAGES, dataset

STD_IMAGES = 512  # training images whose clean activations give the std the edge noise scales


def fit(proto: Protocol, cfg: TrainConfig, defence: Defence, extra_callbacks=()):
    """Build and train the defended stages; (mobile, head, per-epoch history, validation set)."""
    cfg.validate()
    defence.validate(cfg.dp)
    first = defence.first_epoch(cfg.epochs)
    tf.keras.utils.set_random_seed(cfg.seed)
    tf.config.experimental.enable_op_determinism()
    train, val = proto.train, proto.val
    if cfg.limit:
        train, val = train.select(slice(0, cfg.limit)), val.select(slice(0, cfg.limit))
    mobile, head = stages(len(proto.classes), cfg, defence)
    whole = DefendedModel(mobile, head, defence, cfg.nopeek, cfg.seed)
    whole.compile(tf.keras.optimizers.Adam(cfg.learning_rate), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    callbacks = [tf.keras.callbacks.ReduceLROnPlateau("val_loss", factor=0.5, patience=2,
                                                      min_lr=1e-5),
                 KeepBestResisting(first, monitor="val_accuracy", higher_is_better=True,
                                   patience=cfg.patience)]
    if defence.adversarial:
        callbacks.append(Resist(first))
    hist = whole.fit(dataset(train.images, proto.labels(train), cfg, True),
                     validation_data=dataset(val.images, proto.labels(val), cfg, False),
                     epochs=cfg.epochs, callbacks=callbacks + list(extra_callbacks),
                     verbose=1 if sys.stdout.isatty() else 2)
    epochs = [{"epoch": i + 1} | {k: float(v[i]) for k, v in hist.history.items()}
              for i in range(len(hist.epoch))]
    return mobile, head, epochs, val


def run(proto: Protocol, cfg: TrainConfig, defence: Defence, out, force: bool = False) -> dict:
    """Train, export and write RUN_DIR atomically; return metrics.json's content."""
    with artifacts.atomic_dir(out, force) as tmp:
        mobile, head, epochs, val = fit(proto, cfg, defence)
        best = max(epochs[defence.first_epoch(cfg.epochs):], key=lambda e: e["val_accuracy"])
        mobile.save(tmp / rundir.MOBILE_KERAS)
        head.save(tmp / rundir.HEAD_KERAS)
        tensors = export.export(mobile, proto.train.images, tmp)
        check = np.concatenate([val.images, proto.train.images])[:PARITY_IMAGES]
        std = float(mobile.predict(proto.train.images[:STD_IMAGES], verbose=0).std())
        metrics = {
            "split_after": cfg.split_after, "activation_shape": list(mobile.output_shape[1:]),
            "epochs": epochs, "best_epoch": best["epoch"], "train_accuracy": best["accuracy"],
            "val_accuracy": best["val_accuracy"],
            "parity": export.parity(mobile, head, check, tmp),
            "defence": asdict(defence) | {"activation_std": std,
                                          "edge_defense": edge_spec(defence, std)},
        }
        artifacts.write_json(tmp / rundir.METRICS, metrics)
        artifacts.write_json(tmp / rundir.MANIFEST, {
            "protocol": proto.name, "data_source": proto.source, "classes": proto.classes,
            "sizes": proto.sizes() | ({"train_used": cfg.limit} if cfg.limit else {}),
            "config": asdict(cfg), "defence": asdict(defence),
            "polarity": "ink 1.0 on paper 0.0", "split_after": cfg.split_after,
            "input": {"shape": list(mobile.input_shape[1:]), "dtype": "float32"},
            "activation": {"shape": list(mobile.output_shape[1:]), "dtype": "float32"},
            "tflite": tensors, "versions": artifacts.versions(),
            "artifacts": artifacts.hash_artifacts(tmp),
        })
    return metrics
