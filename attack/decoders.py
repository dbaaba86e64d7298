"""Decoder architectures: the mobile stage's activation in, an image of the target's input shape out.

Shapes come from the caller (the training activations and the surrogate images), never from here.

- `upsample` (default) adapts to the activation:
  - a vector (1x1xC, the seed's cut): standardise it, two dense layers to a map 1/15 of the image,
    then learned upsampling x3 and x5 with a sigmoid output, so pixels live in [0, 1] like the
    images. The attacker has only ~1,700 surrogate images, so the two dense layers are followed
    by dropout 0.5; without it this decoder overfits within a few epochs.
  - a map (HxWxC, H > 1, an earlier cut): per-channel standardisation, two 3x3 convolutions, a
    learned resampling onto the image's grid at 1/2^k scale, k stride-2 transposed convolutions
    each followed by a 3x3 convolution, a crop to the image size and a 3x3 sigmoid convolution.
    Filters double as maps halve (16 at full size). The convolution after each upsampling and
    16 rather than 8 full-size filters matter: without them the decoder underfit (its training
    MSE was as high as its test MSE) and reconstructed and identified the test images markedly
    worse (docs/attack.md). The resampling is what makes this work: the cut's
    valid convolutions and poolings put its cells at a smaller stride than image / map, offset
    from the border, which convolutions alone cannot undo. No dense layer and no dropout: the
    map keeps where each feature is, and this decoder does not overfit the surrogate set.
- `seed`: the seed experiment's stack, exactly — four Conv2DTranspose layers, ReLU output, MSE;
  only for its 1x1x32 activation and 105x105x1 image:
    1x1x32 -k9 s1-> 9x9x32 -k7 s2-> 23x23x32 -k7 s2-> 51x51x1 -k5 s2-> 105x105x1
"""

import numpy as np
import tensorflow as tf

from splitleak.attack.config import ARCHS, DEFAULT_ARCH

__all__ = ["ARCHS", "DEFAULT_ARCH", "build", "seed_decoder", "upsample_decoder", "conv_decoder"]

DROPOUT = 0.5
SEED_STACK = ((32, 9, 1), (32, 7, 2), (1, 7, 2), (1, 5, 2))  # (filters, kernel, stride)
SEED_SHAPES = ((1, 1, 32), (105, 105, 1))  # the only activation and image the seed's stack fits
FULL_RES_FILTERS = 16  # the map decoder's filters at the image's size, doubling as maps halve
MAX_FILTERS = 128


def build(arch: str, activations: np.ndarray, image_shape: tuple) -> tf.keras.Model:
    """A fresh decoder for `activations` (N, H, W, C) (training queries: they set the input
    shape and standardisation) to images of `image_shape` (H, W, C)."""
    if arch not in ARCHS:
        raise ValueError(f"unknown decoder arch '{arch}'; expected one of {', '.join(ARCHS)}")
    activations = np.asarray(activations, np.float32)
    if activations.ndim != 4 or len(activations) == 0:
        raise ValueError(f"expected training activations of shape (N, H, W, C) with N > 0, "
                         f"got {activations.shape}")
    if arch == "seed":
        return seed_decoder(activations.shape[1:], tuple(image_shape))
    if activations.shape[1:3] == (1, 1):
        return upsample_decoder(activations, tuple(image_shape))
    return conv_decoder(activations, tuple(image_shape))


def seed_decoder(activation_shape: tuple, image_shape: tuple) -> tf.keras.Model:
    """The seed's decoder: 4 x Conv2DTranspose, ReLU everywhere (the output too)."""
    if (tuple(activation_shape), tuple(image_shape)) != SEED_SHAPES:
        raise ValueError(f"--arch seed decodes a {_dims(SEED_SHAPES[0])} activation to a "
                         f"{_dims(SEED_SHAPES[1])} image, got {_dims(activation_shape)} -> "
                         f"{_dims(image_shape)}; use the default decoder for this target")
    x = inputs = tf.keras.Input(activation_shape, name="activation")
    for i, (filters, kernel, stride) in enumerate(SEED_STACK, 1):
        x = tf.keras.layers.Conv2DTranspose(filters, kernel, stride, activation="relu",
                                            name=f"deconv{i}")(x)
    return tf.keras.Model(inputs, x, name="decoder_seed")


def upsample_decoder(activations: np.ndarray, image_shape: tuple) -> tf.keras.Model:
    """For a 1x1xC activation: dense layers to a map 1/15 of the image, learned upsampling x15."""
    height, width, channels = image_shape
    if height % 15 or width % 15:
        raise ValueError(f"the vector decoder upsamples x15: expected image sides divisible by "
                         f"15, got {_dims(image_shape)}")
    layers = tf.keras.layers
    mean, var = _moments(activations.reshape(len(activations), -1))
    x = inputs = tf.keras.Input(activations.shape[1:], name="activation")
    x = layers.Flatten(name="flatten")(x)
    x = layers.Normalization(mean=mean, variance=var, name="standardise")(x)
    x = layers.Dense(512, activation="relu", name="dense1")(x)
    x = layers.Dropout(DROPOUT, name="dropout1")(x)
    x = layers.Dense(height // 15 * width // 15 * 64, activation="relu", name="dense2")(x)
    x = layers.Dropout(DROPOUT, name="dropout2")(x)
    x = layers.Reshape((height // 15, width // 15, 64), name="map")(x)
    x = layers.Conv2DTranspose(64, 6, 3, padding="same", activation="relu", name="up3")(x)
    x = layers.Conv2D(32, 3, padding="same", activation="relu", name="conv3")(x)
    x = layers.Conv2DTranspose(channels, 10, 5, padding="same", activation="sigmoid",
                               name="up15")(x)
    return tf.keras.Model(inputs, x, name="decoder_upsample")


def conv_decoder(activations: np.ndarray, image_shape: tuple) -> tf.keras.Model:
    """For an HxWxC map: convolve, resample to the image's grid, upsample x2 until it covers it."""
    layers = tf.keras.layers
    height, width, channels = image_shape
    steps = max(0, int(np.floor(np.log2(height / activations.shape[1]))))
    grid = (-(-height // 2 ** steps), -(-width // 2 ** steps))
    mean, var = _moments(activations.reshape(-1, activations.shape[-1]))
    x = inputs = tf.keras.Input(activations.shape[1:], name="activation")
    x = layers.Normalization(mean=mean, variance=var, name="standardise")(x)
    for i in (1, 2):
        x = layers.Conv2D(_filters(height, x.shape[1]), 3, padding="same", activation="relu",
                          name=f"conv{i}")(x)
    x = _resample(x, grid)
    for _ in range(steps):
        side = 2 * x.shape[1]
        x = layers.Conv2DTranspose(_filters(height, side), 4, 2, padding="same",
                                   activation="relu", name=f"up{side}")(x)
        x = layers.Conv2D(_filters(height, side), 3, padding="same", activation="relu",
                          name=f"refine{side}")(x)
    extra_h, extra_w = x.shape[1] - height, x.shape[2] - width
    x = layers.Cropping2D(((extra_h // 2, extra_h - extra_h // 2),
                           (extra_w // 2, extra_w - extra_w // 2)), name="crop")(x)
    x = layers.Conv2D(channels, 3, padding="same", activation="sigmoid", name="pixels")(x)
    return tf.keras.Model(inputs, x, name="decoder_map")


def _filters(image_side: int, side: int) -> int:
    """Filters for a map of `side`: doubling as the side halves, a multiple of 8, capped."""
    wanted = FULL_RES_FILTERS * image_side / side
    return int(min(MAX_FILTERS, max(FULL_RES_FILTERS, 8 * round(wanted / 8))))


def _resample(x, grid: tuple):
    """A learned linear map from x's rows and columns to `grid`'s, starting as a bilinear resize.

    The cut's valid convolutions and poolings put its cells on a grid that is not the image's
    grid scaled down (a smaller stride, and an offset); convolutions cannot learn a shift that
    varies across the map, but this can. Permute + Dense, so the saved model needs no custom code.
    """
    layers = tf.keras.layers
    rows, cols = x.shape[1], x.shape[2]
    x = layers.Permute((3, 1, 2), name="channels_first")(x)  # (C, rows, cols)
    along_cols = layers.Dense(grid[1], use_bias=False, name="resample_cols")
    x = layers.Permute((1, 3, 2), name="swap_axes")(along_cols(x))  # (C, grid cols, rows)
    along_rows = layers.Dense(grid[0], use_bias=False, name="resample_rows")
    x = layers.Permute((3, 2, 1), name="channels_last")(along_rows(x))  # (grid rows, cols, C)
    along_cols.set_weights([_interpolation(cols, grid[1])])
    along_rows.set_weights([_interpolation(rows, grid[0])])
    return x


def _interpolation(size: int, new_size: int) -> np.ndarray:
    """(size, new_size) matrix M such that v @ M resizes v linearly, pixel centres aligned."""
    matrix = np.zeros((size, new_size), np.float32)
    for j in range(new_size):
        position = min(max((j + 0.5) * size / new_size - 0.5, 0.0), size - 1.0)
        low = int(position)
        high, frac = min(low + 1, size - 1), position - low
        matrix[low, j] += 1.0 - frac
        matrix[high, j] += frac
    return matrix


def _moments(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of each column of (samples, features)."""
    return features.mean(axis=0), np.maximum(features.var(axis=0), 1e-6)


def _dims(shape) -> str:
    return "x".join(map(str, shape))
