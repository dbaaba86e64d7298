"""Train the split target on a protocol's target images, export TFLite, write a run directory.

Recipe (the seed's architecture, cut after block `split_after`; the rest is ours): Adam 1e-3,
light augmentation (shifts, rotations, zoom — applied to the input pipeline, not the model), the
learning rate halved when validation loss stalls, and the weights of the best validation epoch
kept (those are the weights saved: metrics.json reports the model on disk).

RUN_DIR after a run:
  mobile.keras, head.keras           the two stages (Keras)
  mobile.tflite, mobile_int8.tflite  the mobile stage for the edge
  metrics.json                       per-epoch accuracy and loss, TFLite parity
  manifest.json                      protocol, seeds, versions, shapes and dtypes, sha256 of all
"""

import sys
from dataclasses import asdict

import numpy as np
import tensorflow as tf

from splitleak.cloud import artifacts, export, model, rundir
from splitleak.cloud.callbacks import KeepBest, steady
from splitleak.cloud.config import TrainConfig
from splitleak.cloud.data import Protocol

PARITY_IMAGES = 128


def augmenter(seed: int) -> tf.keras.Sequential:
    """Small random shifts, rotations and zooms; paper (0) fills what moves in."""
    return tf.keras.Sequential([
        tf.keras.layers.RandomTranslation(0.08, 0.08, fill_mode="constant", seed=seed),
        tf.keras.layers.RandomRotation(0.04, fill_mode="constant", seed=seed + 1),
        tf.keras.layers.RandomZoom(0.1, fill_mode="constant", seed=seed + 2),
    ], name="augment")


def dataset(images, labels, cfg: TrainConfig, training: bool) -> tf.data.Dataset:
    ds = tf.data.Dataset.from_tensor_slices((images, labels))
    if training:
        ds = ds.shuffle(len(images), seed=cfg.seed, reshuffle_each_iteration=True)
    ds = ds.batch(cfg.batch)
    if training and cfg.augment:
        aug = augmenter(cfg.seed)
        ds = ds.map(lambda x, y: (aug(x, training=True), y), num_parallel_calls=tf.data.AUTOTUNE)
    return steady(ds)


def build(proto: Protocol, cfg: TrainConfig, train):
    """The compiled model over both stages, its training batches and callbacks, for `cfg`."""
    mobile, cloud_head = model.stages(len(proto.classes), cfg.norm, cfg.split_after,
                                      0.0 if cfg.dp else cfg.dropout)
    whole = model.split_model(mobile, cloud_head, cfg.nopeek)
    training = dataset(train.images, proto.labels(train), cfg, True)
    callbacks = [  # under DP nothing private picks the model: no plateau, no best epoch
        tf.keras.callbacks.ReduceLROnPlateau("val_loss", factor=0.5, patience=2, min_lr=1e-5),
        KeepBest("val_accuracy", higher_is_better=True, patience=cfg.patience),
    ] if not cfg.dp else []
    if cfg.dp:
        from splitleak.cloud import dp, privacy

        privacy.check(len(train), cfg.batch, cfg.noise_multiplier, cfg.epochs, cfg.delta)
        whole = dp.wrap(mobile, cloud_head, cfg)
        if cfg.sampling == "poisson":
            training = dp.PoissonBatches(train.images, proto.labels(train), cfg.batch, cfg.seed,
                                         augmenter(cfg.seed) if cfg.augment else None)
    whole.compile(tf.keras.optimizers.Adam(cfg.learning_rate), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return mobile, cloud_head, whole, training, callbacks


def fit(proto: Protocol, cfg: TrainConfig, extra_callbacks=()):
    """Build and train both stages; return (mobile, head, per-epoch history, validation set)."""
    cfg.validate()
    tf.keras.utils.set_random_seed(cfg.seed)
    tf.config.experimental.enable_op_determinism()  # same seed, same run (DP noise included)
    train, val = proto.train, proto.val
    if cfg.limit:
        train, val = train.select(slice(0, cfg.limit)), val.select(slice(0, cfg.limit))
    mobile, cloud_head, whole, training, callbacks = build(proto, cfg, train)
    hist = whole.fit(training, validation_data=dataset(val.images, proto.labels(val), cfg, False),
                     epochs=cfg.epochs, callbacks=callbacks + list(extra_callbacks),
                     verbose=1 if sys.stdout.isatty() else 2)
    epochs = [{"epoch": i + 1} | {k: float(v[i]) for k, v in hist.history.items()}
              for i in range(len(hist.epoch))]
    return mobile, cloud_head, epochs, val


def _privacy(cfg: TrainConfig, n: int) -> dict:
    """What the DP-SGD run guarantees, for the n examples it trained on."""
    from splitleak.cloud import privacy

    return privacy.statement(n, cfg.batch, cfg.noise_multiplier, cfg.epochs, cfg.delta,
                             cfg.sampling) | {
        "l2_clip": cfg.l2_clip, "engine": cfg.dp_engine,
        "adjacency": "add or remove one training example",
        "model_selection": "none: the last epoch is saved; the validation set is only reported"}


def run(proto: Protocol, cfg: TrainConfig, out, force: bool = False) -> dict:
    """Train, export and write RUN_DIR atomically; return metrics.json's content."""
    with artifacts.atomic_dir(out, force) as tmp:
        mobile, cloud_head, epochs, val = fit(proto, cfg)
        best = epochs[-1] if cfg.dp else max(epochs, key=lambda e: e["val_accuracy"])
        mobile.save(tmp / rundir.MOBILE_KERAS)
        cloud_head.save(tmp / rundir.HEAD_KERAS)
        tensors = export.export(mobile, proto.train.images, tmp)
        check = val.images[:PARITY_IMAGES]
        if len(check) < PARITY_IMAGES:  # tiny runs: top up from the training images
            check = np.concatenate([check, proto.train.images[:PARITY_IMAGES - len(check)]])
        metrics = {
            "split_after": cfg.split_after,
            "activation_shape": list(mobile.output_shape[1:]),
            "epochs": epochs,
            "best_epoch": best["epoch"],
            "train_accuracy": best["accuracy"],
            "val_accuracy": best["val_accuracy"],
            "parity": export.parity(mobile, cloud_head, check, tmp),
        }
        if cfg.dp:
            metrics["privacy"] = _privacy(cfg, cfg.trained_on(len(proto.train)))
        artifacts.write_json(tmp / rundir.METRICS, metrics)
        artifacts.write_json(tmp / rundir.MANIFEST, {
            "protocol": proto.name,
            "data_source": proto.source,
            "classes": proto.classes,
            "sizes": proto.sizes() | ({"train_used": cfg.limit} if cfg.limit else {}),
            "config": asdict(cfg),
            "polarity": "ink 1.0 on paper 0.0",
            "split_after": cfg.split_after,
            "input": {"shape": list(mobile.input_shape[1:]), "dtype": "float32"},
            "activation": {"shape": list(mobile.output_shape[1:]), "dtype": "float32"},
            "tflite": tensors,
            "versions": artifacts.versions(),
            "artifacts": artifacts.hash_artifacts(tmp),
        })
    return metrics


def ensure_run(run_dir, epochs: int, proto: Protocol, split_after: int) -> None:
    """Reuse a finished run, or train the default recipe cut after block `split_after`."""
    if rundir.finished(run_dir):
        print(f"reusing {run_dir} (delete it to retrain)")
        return
    print(f"training the {proto.name} target, split after block {split_after}, into {run_dir} "
          f"({epochs} epochs)")
    run(proto, TrainConfig(epochs=epochs, split_after=split_after), run_dir)
