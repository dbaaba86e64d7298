"""The split target model, defined once and cut after block K (the split depth).

The whole network, input 105x105x1 (ink = 1):
  4 x [Conv2D 32 (kernels 7, 7, 5, 3), relu -> norm -> MaxPool (3/3, 3/2, 2/2, 2/2) -> Dropout]
  -> Dense 256 relu -> Flatten -> Dropout -> Dense softmax
Mobile stage (on the device) = blocks 1..K; its output is the activation sent over MQTT
(K = 1: 33x33x32, 2: 13x13x32, 3: 4x4x32, 4: 1x1x32, the seed's cut). Head (in the cloud) =
blocks K+1..4, then the dense layers. One architecture for every K, so accuracies compare.

`norm` is "batch" (the seed), "group" (GroupNormalization: per-example, so it keeps DP-SGD's
per-example guarantee) or "none". `dropout` 0 leaves the Dropout layers out (DP-SGD, as the seed's
DP model did: its clipping needs the same forward pass twice). Shapes elsewhere come from the
built stages, not from here.
"""

import tensorflow as tf

from splitleak.cloud.config import DEFAULT_SPLIT, NORMS, SPLITS, TrainConfig, check_split

INPUT_SHAPE = (105, 105, 1)
BLOCKS = ((7, 3, 3), (7, 3, 2), (5, 2, 2), (3, 2, 2))  # (kernel, pool size, pool stride)
FILTERS = 32
DROPOUT = TrainConfig.dropout
assert len(BLOCKS) == len(SPLITS), "config.SPLITS names one cut per block"


def _blocks(x, first: int, last: int, norm: str, dropout: float):
    """Apply conv blocks first..last (1-based) to x."""
    layers = tf.keras.layers
    for i in range(first, last + 1):
        kernel, pool, stride = BLOCKS[i - 1]
        x = layers.Conv2D(FILTERS, kernel, activation="relu", name=f"conv{i}")(x)
        if norm == "batch":
            x = layers.BatchNormalization(name=f"norm{i}")(x)
        elif norm == "group":
            x = layers.GroupNormalization(groups=8, name=f"norm{i}")(x)
        x = layers.MaxPooling2D(pool, stride, name=f"pool{i}")(x)
        if dropout:
            x = layers.Dropout(dropout, name=f"drop{i}")(x)
    return x


def mobile_stage(norm: str = "batch", split_after: int = DEFAULT_SPLIT,
                 dropout: float = DROPOUT) -> tf.keras.Model:
    """The on-device part, blocks 1..K; its output is the intercepted activation."""
    if norm not in NORMS:
        raise ValueError(f"unknown norm '{norm}'; expected one of {', '.join(NORMS)}")
    inputs = tf.keras.Input(INPUT_SHAPE, name="image")
    outputs = _blocks(inputs, 1, check_split(split_after), norm, dropout)
    return tf.keras.Model(inputs, outputs, name="mobile")


def head(num_classes: int, activation_shape: tuple, norm: str = "batch",
         split_after: int = DEFAULT_SPLIT, dropout: float = DROPOUT) -> tf.keras.Model:
    """The cloud part: the activation in (blocks K+1..4, dense layers), probabilities out."""
    layers = tf.keras.layers
    x = inputs = tf.keras.Input(tuple(activation_shape), name="activation")
    x = _blocks(x, check_split(split_after) + 1, len(BLOCKS), norm, dropout)
    x = layers.Dense(256, activation="relu", name="dense")(x)
    x = layers.Flatten(name="flatten")(x)
    if dropout:
        x = layers.Dropout(dropout, name="drop")(x)
    x = layers.Dense(num_classes, activation="softmax", name="probs")(x)
    return tf.keras.Model(inputs, x, name="head")


def stages(num_classes: int, norm: str = "batch", split_after: int = DEFAULT_SPLIT,
           dropout: float = DROPOUT):
    """(mobile, head) for a cut after block `split_after`; the head reads the mobile's shape."""
    mobile = mobile_stage(norm, split_after, dropout)
    return mobile, head(num_classes, mobile.output_shape[1:], norm, split_after, dropout)


def split_model(mobile: tf.keras.Model, cloud_head: tf.keras.Model,
                nopeek: float = 0.0) -> tf.keras.Model:
    """Compose the two stages for training; the stages share weights with the whole. With
    `nopeek` > 0 the loss gains nopeek x distance correlation(image, activation) (cloud/nopeek.py),
    reported as the metric "dcor"."""
    inputs = tf.keras.Input(mobile.input_shape[1:], name="image")
    activation = mobile(inputs)
    whole = tf.keras.Model(inputs, cloud_head(activation), name="split")
    if nopeek:
        from splitleak.cloud.nopeek import distance_correlation

        dcor = distance_correlation(inputs, activation)
        whole.add_loss(nopeek * dcor)
        whole.add_metric(dcor, name="dcor")
    return whole
