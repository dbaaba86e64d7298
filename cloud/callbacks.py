"""Keras callbacks and the input pipeline's last step, shared by every training loop (target and
decoders)."""

import sys

import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm


class KeepBest(tf.keras.callbacks.Callback):
    """Stop after `patience` epochs without a better `monitor` (0: never stop early), and always
    end on the best epoch's weights.

    Keras 2.15's EarlyStopping(restore_best_weights=True) restores them only when it stops early,
    so a run whose best epoch is not the last would save the last epoch's weights."""

    def __init__(self, monitor: str = "val_loss", higher_is_better: bool = False, patience: int = 0):
        super().__init__()
        self.monitor, self.sign, self.patience = monitor, -1.0 if higher_is_better else 1.0, patience
        self.best, self.best_epoch, self.weights = np.inf, -1, None

    def on_epoch_end(self, epoch, logs=None):
        value = self.sign * logs[self.monitor]
        if value < self.best:
            self.best, self.best_epoch = value, epoch
            self.weights = self.model.get_weights()
        elif self.patience and epoch - self.best_epoch >= self.patience:
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.weights is not None:
            self.model.set_weights(self.weights)


class EpochBar(tf.keras.callbacks.Callback):
    """One tqdm bar over epochs, showing the latest losses and accuracies."""

    def __init__(self, epochs: int, desc: str):
        super().__init__()
        self.bar = tqdm(total=epochs, desc=desc, unit="epoch", file=sys.stderr)

    def on_epoch_end(self, epoch, logs=None):
        shown = {k: f"{v:.4f}" for k, v in (logs or {}).items() if "loss" in k or "acc" in k}
        self.bar.set_postfix(shown)
        self.bar.update()

    def on_train_end(self, logs=None):
        self.bar.close()


def steady(ds: tf.data.Dataset) -> tf.data.Dataset:
    """Prefetch with tf.data's autotuner off: on 2 cores its teardown stalled fit for seconds at
    many epoch ends; without it the batches, and so the run, are the same."""
    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.prefetch(tf.data.AUTOTUNE).with_options(options)
