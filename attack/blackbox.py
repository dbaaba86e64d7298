"""Black-box model inversion: query the deployed mobile stage, learn to invert it.

The "inverse network" attack of He, Zhang & Lee, "Model inversion attacks against collaborative
inference" (ACSAC 2019, §IV-C): the attacker cannot see the edge model's weights but can run it
(here: the TFLite file, through the edge's own interpreter) on images of its own. It queries the
model on a surrogate set, then trains a decoder that maps each activation back to its image.

Our recipe: a few % of the surrogate set (chosen by content hash) is held out for early stopping,
and the default sigmoid decoder (attack/decoders.py, shaped to the activation the target
publishes) minimises BCE + 0.3 * (1 - SSIM). BCE is the Bernoulli likelihood of near-binary ink
and has the same optimum as MSE (the conditional mean), but that mean is a faint haze wherever
the stroke position is uncertain; the SSIM term trades a little MSE for clean paper and sharper
strokes. `augment=True` queries freshly shifted/rotated/zoomed copies every epoch (the attacker
picks its queries); it lowers test MSE a little but makes training several times slower, so it
is off by default. Settings (`TrainConfig`) live in attack/config.py, which imports no TensorFlow.
"""

import sys

import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm

from splitleak.attack import decoders
from splitleak.attack.config import ARCHS, DEFAULT_ARCH, LOSSES, TrainConfig  # noqa: F401 (re-exported)
from splitleak.cloud.callbacks import EpochBar, KeepBest, steady
from splitleak.edge.omniglot import content_hashes

QUERY_CHUNK = 256
SSIM_WEIGHT = 0.3
SSIM_FILTER, SSIM_SIGMA, SSIM_K1, SSIM_K2 = 11, 1.5, 0.01, 0.03  # tf.image.ssim's defaults


def loss_function(name: str):
    """A Keras loss: pixel MSE or BCE, optionally plus SSIM_WEIGHT * (1 - SSIM)."""
    pixel = tf.keras.losses.MeanSquaredError() if name.startswith("mse") \
        else tf.keras.losses.BinaryCrossentropy()
    if not name.endswith("+ssim"):
        return pixel

    def loss(y_true, y_pred):
        return pixel(y_true, y_pred) + SSIM_WEIGHT * (1.0 - tf.reduce_mean(ssim(y_true, y_pred)))

    return loss


def ssim(x, y):
    """tf.image.ssim(x, y, max_val=1.0) per image, with its Gaussian window applied as two 1-D
    passes over the four local statistics at once: the same value, several times faster."""
    taps = np.arange(SSIM_FILTER) - (SSIM_FILTER - 1) / 2
    taps = np.exp(-taps ** 2 / (2 * SSIM_SIGMA ** 2))
    window = tf.constant(taps / taps.sum(), tf.float32)
    stats = tf.concat([x, y, x * y, x * x + y * y], axis=-1)
    for shape in ((SSIM_FILTER, 1), (1, SSIM_FILTER)):
        kernel = tf.tile(tf.reshape(window, (*shape, 1, 1)), (1, 1, tf.shape(stats)[-1], 1))
        stats = tf.nn.depthwise_conv2d(stats, kernel, (1, 1, 1, 1), "VALID")
    mean_x, mean_y, mean_xy, mean_sq = tf.split(stats, 4, axis=-1)
    c1, c2 = SSIM_K1 ** 2, SSIM_K2 ** 2
    luminance = (2 * mean_x * mean_y + c1) / (mean_x ** 2 + mean_y ** 2 + c1)
    contrast = (2 * (mean_xy - mean_x * mean_y) + c2) / \
        (mean_sq - mean_x ** 2 - mean_y ** 2 + c2)
    return tf.reduce_mean(luminance * contrast, axis=(1, 2, 3))


def query(stage, images: np.ndarray, progress: str | None = None) -> np.ndarray:
    """Run the black box (anything with `.run(images)`) on images, in chunks, with a bar."""
    if len(images) == 0:
        raise ValueError("no images to query the target with")
    with tqdm(total=len(images), desc=progress, unit="img", disable=progress is None,
              leave=False, file=sys.stderr) as bar:
        out = []
        for i in range(0, len(images), QUERY_CHUNK):
            out.append(stage.run(images[i:i + QUERY_CHUNK]))
            bar.update(len(out[-1]))
    return np.concatenate(out)


def holdout_mask(images: np.ndarray, percent: int) -> np.ndarray:
    """True for about `percent`% of images, chosen by content hash (order-independent).

    Tiny sets where that picks none or all of them hold out just the first image."""
    held = np.array([int(h[:8], 16) % 100 < percent for h in content_hashes(images)])
    return held if 0 < held.sum() < len(held) else np.arange(len(images)) == 0


def augmenter(seed: int) -> tf.keras.Sequential:
    """Small random shifts, rotations and zooms; the paper (0) fills what moves in."""
    layers = tf.keras.layers
    return tf.keras.Sequential([
        layers.RandomTranslation(0.1, 0.1, fill_mode="constant", seed=seed),
        layers.RandomRotation(0.05, fill_mode="constant", seed=seed + 1),
        layers.RandomZoom(0.1, fill_mode="constant", seed=seed + 2),
    ], name="augment")


class QueryPairs(tf.keras.utils.Sequence):
    """(activation, image) batches of freshly augmented images, queried anew every epoch."""

    def __init__(self, stage, images, activations, batch: int, seed: int):
        super().__init__()
        self.stage, self.originals, self.batch = stage, images, batch
        self.images, self.activations = images, activations
        self.augment = augmenter(seed)
        self.rng = np.random.default_rng(seed)
        self.on_epoch_end()

    def __len__(self) -> int:
        return int(np.ceil(len(self.originals) / self.batch))

    def __getitem__(self, i: int):
        pick = self.order[i * self.batch:(i + 1) * self.batch]
        return self.activations[pick], self.images[pick]

    def on_epoch_end(self) -> None:
        self.order = self.rng.permutation(len(self.originals))
        self.images = np.concatenate([  # in chunks: the layers hold the whole batch in memory
            self.augment(self.originals[i:i + 512], training=True).numpy()
            for i in range(0, len(self.originals), 512)])
        self.activations = query(self.stage, self.images)


def train(stage, images: np.ndarray, cfg: TrainConfig, progress: bool = True):
    """Query `stage` on surrogate `images`, fit a decoder; return (decoder, history dict)."""
    cfg.validate()
    if len(images) < 4:
        raise ValueError(f"need at least 4 surrogate images to train a decoder, got {len(images)}")
    tf.keras.utils.set_random_seed(cfg.seed)
    held = holdout_mask(images, cfg.val_percent)
    activations = query(stage, images, "query target" if progress else None)
    if cfg.augment:
        pairs = QueryPairs(stage, images[~held], activations[~held], cfg.batch, cfg.seed)
    else:  # tf.data: a Keras Sequence stalled fit between epochs
        pairs = steady(tf.data.Dataset.from_tensor_slices((activations[~held], images[~held]))
                       .shuffle(int((~held).sum()), seed=cfg.seed).batch(cfg.batch))
    decoder = decoders.build(cfg.arch, activations[~held], images.shape[1:])
    decoder.compile(tf.keras.optimizers.Adam(cfg.learning_rate),
                    loss_function(cfg.resolved_loss()), metrics=["mse"])
    callbacks = [EpochBar(cfg.epochs, "train decoder")] if progress else []
    if cfg.patience:
        callbacks.append(KeepBest("val_loss", patience=cfg.patience))
    fit = decoder.fit(pairs, validation_data=(activations[held], images[held]),
                      epochs=cfg.epochs, callbacks=callbacks, verbose=0, shuffle=False)
    epochs = [{"epoch": i + 1} | {k: float(v[i]) for k, v in fit.history.items()}
              for i in range(len(fit.epoch))]
    kept = min(epochs, key=lambda e: e["val_loss"]) if cfg.patience else epochs[-1]
    history = {"loss": cfg.resolved_loss(), "kept_epoch": kept["epoch"],
               "val_mse": kept["val_mse"], "train_images": int((~held).sum()),
               "val_images": int(held.sum()), "epochs": epochs}
    return decoder, history


def reconstruct(decoder: tf.keras.Model, activations: np.ndarray, batch: int = 256) -> np.ndarray:
    """Activations (N, *decoder input shape), or flat (N, size) -> images float32 in [0, 1]."""
    shape = tuple(decoder.input_shape[1:])
    acts = np.asarray(activations, np.float32)
    if acts.ndim < 2 or int(np.prod(acts.shape[1:])) != int(np.prod(shape)):
        raise ValueError(f"this decoder reads activations of shape (N, {', '.join(map(str, shape))})"
                         f", got {acts.shape}")
    acts = acts.reshape((len(acts), *shape))
    if len(acts) == 0:
        return np.zeros((0, *decoder.output_shape[1:]), np.float32)
    out = [decoder.predict_on_batch(acts[i:i + batch]) for i in range(0, len(acts), batch)]
    return np.clip(np.concatenate(out), 0.0, 1.0).astype(np.float32)
