"""The split target model, defined once: a mobile stage (on the device) and a head (in the cloud).

Mobile stage, input 105x105x1 (ink = 1), output 1x1x32 — the activation sent over MQTT:
  4 x [Conv2D 32 (kernels 7, 7, 5, 3), relu -> norm -> MaxPool (3/3, 3/2, 2/2, 2/2) -> Dropout]
Head: Dense 256 relu -> Flatten -> Dropout -> Dense softmax.

`norm` is "batch" (the seed), "group" (GroupNormalization: per-example, so it keeps DP-SGD's
per-example guarantee) or "none".
"""

import tensorflow as tf

INPUT_SHAPE = (105, 105, 1)
ACTIVATION_SHAPE = (1, 1, 32)
BLOCKS = ((7, 3, 3), (7, 3, 2), (5, 2, 2), (3, 2, 2))  # (kernel, pool size, pool stride)
NORMS = ("batch", "group", "none")


def _norm(kind: str, name: str):
    if kind == "batch":
        return tf.keras.layers.BatchNormalization(name=name)
    if kind == "group":
        return tf.keras.layers.GroupNormalization(groups=8, name=name)
    return None


def mobile_stage(norm: str = "batch", dropout: float = 0.2, filters: int = 32) -> tf.keras.Model:
    """The on-device part; its output is the intercepted 1x1x32 activation."""
    if norm not in NORMS:
        raise ValueError(f"unknown norm '{norm}'; expected one of {', '.join(NORMS)}")
    x = inputs = tf.keras.Input(INPUT_SHAPE, name="image")
    for i, (kernel, pool, stride) in enumerate(BLOCKS, start=1):
        x = tf.keras.layers.Conv2D(filters, kernel, activation="relu", name=f"conv{i}")(x)
        layer = _norm(norm, f"norm{i}")
        x = layer(x) if layer is not None else x
        x = tf.keras.layers.MaxPooling2D(pool, stride, name=f"pool{i}")(x)
        x = tf.keras.layers.Dropout(dropout, name=f"drop{i}")(x)
    return tf.keras.Model(inputs, x, name="mobile")


def head(num_classes: int, dropout: float = 0.2) -> tf.keras.Model:
    """The cloud part: activation in, class probabilities out."""
    x = inputs = tf.keras.Input(ACTIVATION_SHAPE, name="activation")
    x = tf.keras.layers.Dense(256, activation="relu", name="dense")(x)
    x = tf.keras.layers.Flatten(name="flatten")(x)
    x = tf.keras.layers.Dropout(dropout, name="drop")(x)
    x = tf.keras.layers.Dense(num_classes, activation="softmax", name="probs")(x)
    return tf.keras.Model(inputs, x, name="head")


def split_model(mobile: tf.keras.Model, cloud_head: tf.keras.Model) -> tf.keras.Model:
    """Compose the two stages for training; the stages share weights with the whole."""
    inputs = tf.keras.Input(INPUT_SHAPE, name="image")
    return tf.keras.Model(inputs, cloud_head(mobile(inputs)), name="split")
