"""White-box model inversion: optimise an image until the mobile stage maps it to the activation.

Regularised maximum likelihood (rMLE) of He, Zhang & Lee, "Model inversion attacks against
collaborative inference" (ACSAC 2019, §IV-A): with the edge model f's weights known, find

    x* = argmin_x  ||f(x) - a||^2 / ||a||^2 + tv * TV(x) + prior * mean((x - x0)^2),  x in [0, 1]

where a is the intercepted activation, TV the total variation (a prior for piecewise-constant
images, averaged over pixels) and x0 the start. x = sigmoid(z) keeps pixels in [0, 1]; Adam runs
on a whole batch at once with f in inference mode (dropout off, BatchNorm frozen).

Two starts. A near-blank page (mostly paper, as Omniglot is; no pull toward it) is the paper's
attack: it recovers the image when the activation pins it down (early cuts) and lands on noise
that merely reproduces the activation when it does not (the 1x1x32 cut: 32 numbers for 11,025
pixels). A black-box decoder's reconstruction with a pull toward it is a learned prior: the
optimisation then fits the activation near images like the attacker's own.
"""

import sys

import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm

from splitleak.attack.config import WhiteboxConfig

EDGE = 0.02  # starts are clipped to [EDGE, 1 - EDGE]: sigmoid(z) cannot start at 0 or 1


def total_variation(x: tf.Tensor) -> tf.Tensor:
    """Anisotropic TV per image, averaged over pixels: mean |dx| + mean |dy|."""
    dy = tf.reduce_mean(tf.abs(x[:, 1:] - x[:, :-1]), axis=(1, 2, 3))
    dx = tf.reduce_mean(tf.abs(x[:, :, 1:] - x[:, :, :-1]), axis=(1, 2, 3))
    return dx + dy


def activation_loss(mobile, x: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
    """Relative squared error per image, ||f(x) - a||^2 / ||a||^2 (so lambda is scale-free)."""
    error = tf.reduce_sum(tf.square(mobile(x, training=False) - target), axis=(1, 2, 3))
    return error / (tf.reduce_sum(tf.square(target), axis=(1, 2, 3)) + 1e-12)


def intercepted(run_dir, mobile, images: np.ndarray, defense: str | None = None,
                seed: int | None = None) -> np.ndarray:
    """The activations the device would publish: mobile.tflite (else Keras), then `defense`."""
    from splitleak.attack.blackbox import query
    from splitleak.cloud import rundir

    path = rundir.mobile(run_dir)
    if path.is_file():
        return query(rundir.device(run_dir, defense, seed), images, "query target")
    if defense:
        raise FileNotFoundError(f"{path} not found: a defence needs the device's TFLite stage")
    return mobile.predict(images, batch_size=256, verbose=0)


def invert(mobile, activations: np.ndarray, cfg: WhiteboxConfig | None = None,
           progress: bool = True, starts: np.ndarray | None = None) -> tuple[np.ndarray, dict]:
    """Reconstruct images from activations; return them and the mean losses before/after.

    `starts` (N, *image shape), e.g. a decoder's reconstructions, replaces the blank start."""
    cfg = (cfg or WhiteboxConfig()).validate()
    tf.keras.utils.set_random_seed(cfg.seed)
    acts = np.asarray(activations, np.float32)
    shape = (len(acts), *mobile.input_shape[1:])
    pull = 0.0 if starts is None else cfg.prior_weight
    if starts is None:
        starts = np.full(shape, cfg.ink, np.float32)
    elif starts.shape != shape:
        raise ValueError(f"expected start images of shape {shape}, got {starts.shape}")
    starts = np.clip(starts, EDGE, 1 - EDGE).astype(np.float32)
    images, first, last = [], [], []
    for i in range(0, len(acts), cfg.batch):
        part = slice(i, i + cfg.batch)
        out, before, after = _invert_batch(mobile, acts[part], starts[part], pull, cfg, progress)
        images.append(out)
        first.append(before)
        last.append(after)
    trace = {}
    for key, parts in (("initial", first), ("final", last)):
        trace[key] = {k: float(np.mean(np.concatenate([p[k] for p in parts]))) for k in parts[0]}
    return np.concatenate(images), trace


def _invert_batch(mobile, target: np.ndarray, start: np.ndarray, pull: float,
                  cfg: WhiteboxConfig, progress: bool):
    z = tf.Variable(np.log(start / (1 - start)))
    start, target = tf.constant(start), tf.constant(target)
    optimizer = tf.keras.optimizers.Adam(cfg.learning_rate)

    def losses():
        x = tf.sigmoid(z)
        prior = tf.reduce_mean(tf.square(x - start), axis=(1, 2, 3))
        return activation_loss(mobile, x, target), total_variation(x), prior

    def numpy_losses() -> dict:
        return dict(zip(("activation", "tv", "prior"), (t.numpy() for t in losses()),
                        strict=True))

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            act, tv, prior = losses()
            total = tf.reduce_sum(act + cfg.tv_weight * tv + pull * prior)
        optimizer.apply_gradients([(tape.gradient(total, z), z)])
        return tf.reduce_mean(act)

    before = numpy_losses()
    bar = tqdm(range(cfg.steps), desc="invert", unit="step", disable=not progress,
               leave=False, file=sys.stderr)
    for i in bar:
        loss = step()
        if i % 20 == 0:
            bar.set_postfix(activation=f"{float(loss):.4f}")
    after = numpy_losses()
    return tf.sigmoid(z).numpy(), before, after
