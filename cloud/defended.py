"""Defences trained into the split model, on top of the target recipe of cloud/train.py.

- **Noise-aware training** (Titcombe et al. 2021, "Practical defences against model inversion
  attacks for split neural networks"): noise is added at the cut in the forward pass, so the
  head learns to classify the noisy activations the edge will publish. The noise scale is a
  multiple K of the activation's standard deviation over the batch (Gaussian σ, or Laplace b),
  so a network cannot outgrow it by scaling its activation up: K fixes the signal-to-noise
  ratio at 1/K. The exported stage has no noise; the edge adds it, with the scale K x the
  activation's std on the training images (`edge_spec`, recorded in metrics.json).
- **A bottleneck** (Li et al. 2022, "ResSFL: a resistance transfer framework for defending
  model inversion attack in split federated learning", CVPR): a 1x1 convolution to C channels
  at the end of the mobile stage, exported with it.
- **Attacker-aware training** (ResSFL): a simulated inversion decoder (`adversary`) trained in
  alternation with the model, one step each per batch: the decoder to reconstruct the batch
  from the published activation (binary cross-entropy, as the black-box attacker learns: MSE
  alone settles on a blank page), the two stages to keep the classification loss low and the
  decoder's reconstruction error high: loss = cross-entropy - α x MSE(image, decoder). The
  decoder's output is a sigmoid, so that MSE is bounded and the model cannot win by blowing it up.
  For its first `warmup` epochs (fewer in a run too short for them: the last epoch always
  resists) the decoder trains against a model that only classifies (α = 0), as ResSFL pretrains
  its attacker: the resistance starts against a decoder that already works.
NoPeek (cloud/nopeek.py) combines with each. Not with DP-SGD: its per-example gradients cover
the classification loss only.

Never score a defence with this decoder: it trained against the model. The sweep attacks a
defended target with fresh decoders trained after it is frozen (tools/experiments/frontier.py).
"""

from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from splitleak.cloud import model
from splitleak.cloud.callbacks import KeepBest

NOISE_KINDS = ("gauss", "laplace")


@dataclass(frozen=True)
class Defence:
    """What a defended target trains with. train_noise: "" or "gauss:K" / "laplace:K" (K x the
    activation's std); adversarial: α (0: none), after `warmup` epochs of the decoder alone;
    bottleneck: C channels at the cut (0: none)."""

    train_noise: str = ""
    adversarial: float = 0.0
    bottleneck: int = 0
    warmup: int = 2

    def noise(self) -> tuple[str, float] | None:
        """(kind, K) of train_noise, or None; ValueError naming what was wrong."""
        if not self.train_noise:
            return None
        kind, _, multiple = self.train_noise.partition(":")
        try:
            k = float(multiple)
        except ValueError:
            k = -1.0
        if kind not in NOISE_KINDS or not (np.isfinite(k) and k > 0):
            raise ValueError(f"--train-noise '{self.train_noise}': expected gauss:K or laplace:K "
                             f"with K > 0, a multiple of the activation's standard deviation")
        return kind, k

    def validate(self, dp: bool = False) -> "Defence":
        self.noise()
        whole = all(v >= 0 and int(v) == v for v in (self.bottleneck, self.warmup))
        if self.adversarial < 0 or not whole:
            raise ValueError(f"--adversarial must be >= 0, --bottleneck (channels) and the warm-up "
                             f"(epochs) whole numbers >= 0; got {self.adversarial}, "
                             f"{self.bottleneck} and {self.warmup}")
        if dp and self.any():
            raise ValueError("--train-noise, --adversarial and --bottleneck cannot be combined "
                             "with --dp (DP-SGD's per-example gradients cover the seed's network "
                             "and its classification loss only)")
        return self

    def first_epoch(self, epochs: int) -> int:
        """The first epoch (from 0) trained with the whole defence: after the warm-up, which
        leaves at least the last of `epochs` to the resistance."""
        return min(int(self.warmup), epochs - 1) if self.adversarial else 0

    def any(self) -> bool:
        return bool(self.train_noise or self.adversarial or self.bottleneck)


class CutNoise(tf.keras.layers.Layer):
    """Adds noise of scale K x the batch's activation std when called with a seed stream; the
    std is held constant for the gradient (the noise is not a path to the weights)."""

    def __init__(self, kind: str, multiple: float, seed: int, **kwargs):
        super().__init__(**kwargs)
        self.kind, self.multiple = kind, multiple
        self.rng = tf.random.Generator.from_seed(seed)

    def call(self, x):
        scale = self.multiple * tf.stop_gradient(tf.math.reduce_std(x))
        if self.kind == "gauss":
            return x + scale * self.rng.normal(tf.shape(x))
        u = self.rng.uniform(tf.shape(x), -0.5 + 1e-7, 0.5)  # Laplace by the inverse CDF
        return x - scale * tf.sign(u) * tf.math.log1p(-2.0 * tf.abs(u))


def with_bottleneck(mobile: tf.keras.Model, channels: int) -> tf.keras.Model:
    """The mobile stage followed by a 1x1 convolution to `channels` (its output is published)."""
    out = tf.keras.layers.Conv2D(channels, 1, name="bottleneck")(mobile.output)
    return tf.keras.Model(mobile.input, out, name="mobile")


def adversary(activation_shape: tuple, image_shape: tuple = model.INPUT_SHAPE) -> tf.keras.Model:
    """The simulated attacker: an inversion decoder, activation in, image out (sigmoid). Each
    position's channels are standardised first (the stage's scale moves while it trains), then
    convolutions at the cut's grid, a third of the image's and the image's."""
    layers = tf.keras.layers
    height, width, channels = image_shape
    x = inputs = tf.keras.Input(tuple(activation_shape), name="activation")
    if tuple(activation_shape[:2]) == (1, 1):  # a vector: a small map first
        x = layers.Flatten()(layers.LayerNormalization()(x))
        x = layers.Reshape((15, 15, 16))(layers.Dense(15 * 15 * 16, activation="relu")(x))
    x = layers.Conv2D(64, 3, padding="same", activation="relu")(layers.LayerNormalization()(x))
    x = layers.Resizing(height // 3, width // 3)(x)
    x = layers.Conv2D(64, 3, padding="same", activation="relu")(x)
    x = layers.Conv2D(32, 3, padding="same", activation="relu")(x)
    x = layers.Resizing(height, width)(x)
    x = layers.Conv2D(16, 3, padding="same", activation="relu")(x)
    x = layers.Conv2D(channels, 3, padding="same", activation="sigmoid")(x)
    return tf.keras.Model(inputs, x, name="adversary")


class DefendedModel(tf.keras.Model):
    """The two stages trained with the defences: noise at the cut (training and validation, as
    the edge will publish), NoPeek's distance correlation, and the adversary in alternation.
    Reports "dcor" with NoPeek and "adversary_mse" (the decoder's MSE before its step) with α."""

    def __init__(self, mobile, head, defence: Defence, nopeek: float = 0.0, seed: int = 1):
        super().__init__(name="split_defended")
        self.mobile, self.head, self.nopeek = mobile, head, nopeek
        self.alpha = float(defence.adversarial)
        self.weight = tf.Variable(0.0, trainable=False, name="adversarial_weight")  # α once warm
        noise = defence.noise()
        self.cut_noise = CutNoise(*noise, seed=seed, name="cut_noise") if noise else None
        shape = mobile.output_shape[1:]
        self.adversary = adversary(shape, mobile.input_shape[1:]) if self.alpha else None
        self.adversary_optimizer = tf.keras.optimizers.Adam(1e-3) if self.alpha else None
        self.trackers = {name: tf.keras.metrics.Mean(name) for name, on in (
            ("dcor", nopeek), ("adversary_mse", self.alpha)) if on}

    def call(self, images, training=False):
        return self.head(self.published(self.mobile(images, training=training)), training=training)

    def published(self, activation):
        return self.cut_noise(activation) if self.cut_noise is not None else activation

    @property
    def metrics(self):
        return super().metrics + list(self.trackers.values())

    def train_step(self, data):
        images, labels = data
        if self.adversary is not None:
            with tf.GradientTape() as tape:
                sent = self.published(self.mobile(images, training=True))
                recons = self.adversary(sent, training=True)
                bce = tf.reduce_mean(tf.keras.losses.binary_crossentropy(
                    tf.cast(images, recons.dtype), recons))
            mse = _mse(images, recons)
            weights = self.adversary.trainable_variables
            grads = tape.gradient(bce, weights)
            self.adversary_optimizer.apply_gradients(zip(grads, weights, strict=True))
            self.trackers["adversary_mse"].update_state(mse)
        stages = self.mobile.trainable_variables + self.head.trainable_variables
        with tf.GradientTape() as tape:
            activation = self.mobile(images, training=True)
            sent = self.published(activation)
            probs = self.head(sent, training=True)
            loss = self.compute_loss(images, labels, probs)
            if self.nopeek:
                from splitleak.cloud.nopeek import distance_correlation

                dcor = distance_correlation(images, activation)
                self.trackers["dcor"].update_state(dcor)
                loss += self.nopeek * dcor
            if self.adversary is not None:
                loss -= self.weight * _mse(images, self.adversary(sent, training=False))
        self.optimizer.apply_gradients(zip(tape.gradient(loss, stages), stages, strict=True))
        return self.compute_metrics(images, labels, probs, None) | {
            name: t.result() for name, t in self.trackers.items()}

    def test_step(self, data):
        images, labels = data
        probs = self.head(self.published(self.mobile(images, training=False)), training=False)
        self.compute_loss(images, labels, probs)
        return self.compute_metrics(images, labels, probs, None)


class KeepBestResisting(KeepBest):
    """KeepBest over the epochs after the warm-up only: an epoch before the adversary's weight
    came on is an undefended model, never the one kept."""

    def __init__(self, first: int, **kwargs):
        super().__init__(**kwargs)
        self.first = first

    def on_epoch_end(self, epoch, logs=None):
        if epoch >= self.first:
            super().on_epoch_end(epoch, logs)


class Resist(tf.keras.callbacks.Callback):
    """Turns the adversarial weight on (to α) at the start of epoch `warmup` + 1."""

    def __init__(self, warmup: int):
        super().__init__()
        self.warmup = warmup

    def on_epoch_begin(self, epoch, logs=None):
        self.model.weight.assign(self.model.alpha if epoch >= self.warmup else 0.0)


def _mse(images, recons):
    return tf.reduce_mean(tf.square(tf.cast(images, recons.dtype) - recons))


def stages(num_classes: int, cfg, defence: Defence):
    """(mobile, head) of cfg's network with the defence's bottleneck; the head reads its shape."""
    mobile = model.mobile_stage(cfg.norm, cfg.split_after, cfg.dropout)
    if defence.bottleneck:
        mobile = with_bottleneck(mobile, int(defence.bottleneck))
    return mobile, model.head(num_classes, mobile.output_shape[1:], cfg.norm, cfg.split_after,
                              cfg.dropout)


def edge_spec(defence: Defence, activation_std: float) -> str:
    """The edge defence that publishes what the head trained on: the noise at K x the std."""
    noise = defence.noise()
    return f"noise:{noise[0]}:{noise[1] * activation_std:.6g}" if noise else ""
