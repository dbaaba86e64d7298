"""White-box model inversion: optimise an image until the mobile stage maps it to the activation.

Regularised maximum likelihood (rMLE) of He, Zhang & Lee, "Model inversion attacks against
collaborative inference" (ACSAC 2019, §IV-A): with the edge model f's weights known, find

    x* = argmin_x  ||f(x) - a||^2 + lambda * TV(x),   x in [0, 1]

where a is the intercepted activation and TV the total variation (a prior for piecewise-constant
images). We parameterise x = sigmoid(z) to keep pixels in [0, 1], start from a near-blank page
(mostly paper, as Omniglot is), divide the activation term by ||a||^2 and average TV over pixels,
and run Adam on a whole batch at once with f in inference mode (dropout off, BatchNorm frozen).
"""

import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm


@dataclass
class WhiteboxConfig:
    steps: int = 300
    learning_rate: float = 0.1
    tv_weight: float = 2.0
    init: float = 0.05  # starting ink level of every pixel
    batch: int = 64
    seed: int = 1

    def validate(self) -> None:
        if self.steps < 1 or self.batch < 1:
            raise ValueError("steps and batch must be positive integers")
        if not self.learning_rate > 0 or self.tv_weight < 0:
            raise ValueError("learning_rate must be positive and tv_weight non-negative")
        if not 0 < self.init < 1:
            raise ValueError(f"init must be strictly between 0 and 1, got {self.init}")

    def as_dict(self) -> dict:
        return asdict(self)


def total_variation(x: tf.Tensor) -> tf.Tensor:
    """Anisotropic TV per image, averaged over pixels: mean |dx| + mean |dy|."""
    dy = tf.reduce_mean(tf.abs(x[:, 1:] - x[:, :-1]), axis=(1, 2, 3))
    dx = tf.reduce_mean(tf.abs(x[:, :, 1:] - x[:, :, :-1]), axis=(1, 2, 3))
    return dx + dy


def activation_loss(mobile, x: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
    """Relative squared error per image, ||f(x) - a||^2 / ||a||^2 (so lambda is scale-free)."""
    error = tf.reduce_sum(tf.square(mobile(x, training=False) - target), axis=(1, 2, 3))
    return error / (tf.reduce_sum(tf.square(target), axis=(1, 2, 3)) + 1e-12)


def intercepted(run_dir, mobile, images: np.ndarray) -> np.ndarray:
    """The activations the device would publish: mobile.tflite if present, else Keras."""
    path = Path(run_dir) / "mobile.tflite"
    if path.is_file():
        from splitleak.attack.blackbox import query
        from splitleak.edge.runtime import MobileStage

        return query(MobileStage(path), images, "query target")
    return mobile.predict(images, batch_size=256, verbose=0)


def invert(mobile, activations: np.ndarray, cfg: WhiteboxConfig | None = None,
           progress: bool = True) -> tuple[np.ndarray, dict]:
    """Reconstruct images from activations; return them and the mean losses before/after."""
    cfg = cfg or WhiteboxConfig()
    cfg.validate()
    tf.keras.utils.set_random_seed(cfg.seed)
    acts = np.asarray(activations, np.float32)
    images, first, last = [], [], []
    for i in range(0, len(acts), cfg.batch):
        out, before, after = _invert_batch(mobile, acts[i:i + cfg.batch], cfg, progress)
        images.append(out)
        first.append(before)
        last.append(after)
    trace = {}
    for key, parts in (("initial", first), ("final", last)):
        trace[key] = {k: float(np.mean(np.concatenate([p[k] for p in parts]))) for k in parts[0]}
    return np.concatenate(images), trace


def _invert_batch(mobile, target: np.ndarray, cfg: WhiteboxConfig, progress: bool):
    shape = (len(target), *mobile.input_shape[1:])
    z = tf.Variable(tf.fill(shape, float(np.log(cfg.init / (1 - cfg.init)))))
    target = tf.constant(target)
    optimizer = tf.keras.optimizers.Adam(cfg.learning_rate)

    def losses():
        x = tf.sigmoid(z)
        return activation_loss(mobile, x, target), total_variation(x)

    def numpy_losses() -> dict:
        act, tv = losses()
        return {"activation": act.numpy(), "tv": tv.numpy()}

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            act, tv = losses()
            total = tf.reduce_sum(act + cfg.tv_weight * tv)
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
