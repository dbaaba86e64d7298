"""DP-SGD for the split target: every example's gradient from one forward and one backward pass.

Each step clips every example's gradient to L2 norm C, sums them, adds N(0, (z*C)^2) noise and
divides by the expected batch size B (a constant, so the sum's sensitivity stays C). Per-example
gradients come cheaply from one pass: a layer's weight gradient for one example is its input
times the loss gradient at its output (for a convolution, summed over positions and kernel
offsets), so one forward pass records each layer's input, one backward pass gives the output
gradients, and each layer turns them into per-example weight gradients (`GRADIENTS`: each
takes the layer, its input and the tape's `watch`, and returns its output, the tensor whose
gradient it needs, and a function from that gradient to its variables' per-example gradients). The clipped
sum is then a weighted sum over the batch; no second pass.

Why not tensorflow-privacy's training routes (their costs: docs/privacy.md, and
`splitleak bench dp`): `DPKeras*Optimizer` computes a Jacobian, one backward pass per example;
`DPModel` (make_dp_model_class) with our Conv2D and GroupNormalization entries in its
fast-clipping registry runs the model twice. Without a registry it maps the per-example
gradient over the batch with tf.vectorized_map (`--dp-engine tf-privacy`, `wrap` below): a bit
faster than this route on fixed shuffled batches, but it divides by the rows it gets, so
Poisson batches with a constant divisor would need padding every draw (to 72 rows for B = 32)
with zero-weight rows that cost as much as real ones: it is allowed with shuffled batches only.
Its XLA build fails under op determinism.

- No BatchNorm (it mixes the examples of a batch) and no Dropout: `model.stages(dropout=0)`.
- Poisson batches (`PoissonBatches`): each step draws every training example independently with
  probability B/n, ceil(n/B) steps an epoch, as the accountant (cloud/privacy.py) assumes. An
  empty draw is one zero-weight row: its gradient is 0, so the step adds noise only.
"""

import math

import numpy as np
import tensorflow as tf


def wrap(mobile: tf.keras.Model, head: tf.keras.Model, cfg) -> tf.keras.Model:
    """One flat model over the two stages' layers (and weights), trained by DP-SGD: ours, or
    tensorflow-privacy's DPModel (per-example gradients by tf.vectorized_map, no XLA)."""
    x = inputs = tf.keras.Input(mobile.input_shape[1:], name="image")
    for layer in mobile.layers[1:] + head.layers[1:]:
        x = layer(x)
    if cfg.dp_engine == "tf-privacy":
        from tensorflow_privacy.privacy.keras_models.dp_keras_model import make_dp_model_class

        return make_dp_model_class(tf.keras.Model)(
            l2_norm_clip=cfg.l2_clip, noise_multiplier=cfg.noise_multiplier, use_xla=False,
            inputs=inputs, outputs=x, name="split_dp_tfp")
    return DPSGDModel(inputs=inputs, outputs=x, l2_clip=cfg.l2_clip,
                      noise_multiplier=cfg.noise_multiplier, batch=cfg.batch, name="split_dp")


class DPSGDModel(tf.keras.Model):
    """A chain of layers whose train_step is DP-SGD (compile it with the usual loss for the
    reported figures; the step's own loss is sparse categorical cross-entropy per example)."""

    def __init__(self, *args, l2_clip: float, noise_multiplier: float, batch: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.l2_clip, self.noise_multiplier, self.expected_batch = l2_clip, noise_multiplier, batch
        for layer in self.layers[1:]:
            if layer.trainable_weights and type(layer) not in GRADIENTS:
                raise ValueError(f"DP-SGD has no per-example gradient for layer {layer.name} "
                                 f"({type(layer).__name__}); expected one of "
                                 f"{', '.join(t.__name__ for t in GRADIENTS)}")

    def per_example_gradients(self, x, y, weights=None):
        """(per-example gradients, one (B, *shape) tensor per trainable variable; predictions)."""
        tape = tf.GradientTape(watch_accessed_variables=False)
        grad_fns, bases = [], []
        with tape:
            h = tf.ensure_shape(x, (None, *self.input_shape[1:]))  # static shapes downstream
            for layer in self.layers[1:]:
                if not layer.trainable_weights:
                    h = layer(h)
                    continue
                h, base, fn = GRADIENTS[type(layer)](layer, h, tape.watch)
                bases.append(base)
                grad_fns.append(fn)
            losses = tf.keras.losses.sparse_categorical_crossentropy(y, h)
            if weights is not None:
                losses *= tf.cast(weights, losses.dtype)
            total = tf.reduce_sum(losses)
        grads = tape.gradient(total, bases, unconnected_gradients=tf.UnconnectedGradients.ZERO)
        return [g for fn, out in zip(grad_fns, grads, strict=True) for g in fn(out)], h

    def clipped_sum(self, per_example: list) -> list:
        """Each example's gradient scaled to norm <= C, summed over the batch."""
        squares = tf.add_n([tf.reduce_sum(tf.square(g), axis=tf.range(1, tf.rank(g)))
                            for g in per_example])
        scale = tf.minimum(1.0, self.l2_clip / tf.maximum(tf.sqrt(squares), 1e-12))
        return [tf.tensordot(scale, g, axes=1) for g in per_example]

    def train_step(self, data):
        x, y, weights = tf.keras.utils.unpack_x_y_sample_weight(data)
        per_example, predictions = self.per_example_gradients(x, y, weights)
        std = self.l2_clip * self.noise_multiplier
        grads = [(g + tf.random.normal(tf.shape(g), stddev=std, dtype=g.dtype))
                 / self.expected_batch for g in self.clipped_sum(per_example)]
        self.optimizer.apply_gradients(zip(grads, self.trainable_variables, strict=True))
        self.compute_loss(x, y, predictions, weights)  # the reported (non-private) loss
        return self.compute_metrics(x, y, predictions, weights)


def _linear(layer, x):
    """layer(x) without its activation (the activation is applied by the caller)."""
    saved, layer.activation = layer.activation, tf.keras.activations.linear
    try:
        return layer(x)
    finally:
        layer.activation = saved


def _conv2d(layer, x, watch):
    """Kernel gradient of one example: for each kernel offset, the input window's channels x
    the output gradient's channels, summed over output positions."""
    if layer.padding != "valid" or layer.groups != 1 or layer.data_format != "channels_last":
        raise ValueError(f"DP-SGD supports valid, ungrouped, channels-last Conv2D; "
                         f"{layer.name} is not")
    base = _linear(layer, x)
    watch(base)  # before anything is computed from it
    (kh, kw), (sh, sw), (dh, dw) = layer.kernel_size, layer.strides, layer.dilation_rate

    def grads(g):  # g: (B, H', W', C_out), the loss gradient at `base`
        height, width = g.shape[1], g.shape[2]
        kernel = tf.stack([tf.stack([
            tf.einsum("bhwi,bhwo->bio", x[:, i * dh:i * dh + sh * (height - 1) + 1:sh,
                                          j * dw:j * dw + sw * (width - 1) + 1:sw], g)
            for j in range(kw)], axis=1) for i in range(kh)], axis=1)
        return [kernel] + ([tf.reduce_sum(g, axis=(1, 2))] if layer.use_bias else [])
    return layer.activation(base), base, grads


def _dense(layer, x, watch):
    """Dense on (B, ..., C_in): input x output gradient, summed over positions."""
    base = _linear(layer, x)
    watch(base)  # before anything is computed from it

    def grads(g):
        flat_x = tf.reshape(x, (-1, math.prod(x.shape[1:-1]), x.shape[-1]))
        flat_g = tf.reshape(g, (-1, math.prod(g.shape[1:-1]), g.shape[-1]))
        kernel = tf.einsum("bpi,bpo->bio", flat_x, flat_g)
        return [kernel] + ([tf.reduce_sum(flat_g, axis=1)] if layer.use_bias else [])
    return layer.activation(base), base, grads


def _group_norm(layer, x, watch):
    """GroupNormalization's scale and offset: the normalised input x the output gradient,
    summed over positions."""
    saved = layer.scale, layer.center
    layer.scale = layer.center = False
    try:
        normalised = layer(x)
    finally:
        layer.scale, layer.center = saved
    out = normalised * layer.gamma if layer.scale else normalised
    out = out + layer.beta if layer.center else out
    watch(out)

    def grads(g):
        axes = list(range(1, g.shape.rank - 1))
        return (([tf.reduce_sum(normalised * g, axis=axes)] if layer.scale else [])
                + ([tf.reduce_sum(g, axis=axes)] if layer.center else []))
    return out, out, grads


GRADIENTS = {tf.keras.layers.Conv2D: _conv2d, tf.keras.layers.Dense: _dense,
             tf.keras.layers.GroupNormalization: _group_norm}


class PoissonBatches(tf.keras.utils.Sequence):
    """ceil(n/B) steps per epoch, each a fresh Poisson draw: (images, labels, weights)."""

    def __init__(self, images, labels, batch: int, seed: int, augment=None):
        super().__init__()
        self.images, self.labels, self.augment = images, np.asarray(labels), augment
        self.rate = batch / len(images)
        self.steps = math.ceil(len(images) / batch)
        self.rng = np.random.default_rng(seed)
        self.drawn: list[int] = []  # batch sizes drawn, for tests and the record

    def __len__(self) -> int:
        return self.steps

    def __getitem__(self, i: int):
        pick = np.flatnonzero(self.rng.random(len(self.images)) < self.rate)
        self.drawn.append(len(pick))
        weights = np.ones(len(pick), np.float32)
        if len(pick) == 0:  # nobody drawn: one zero-weight row, a noise-only step
            pick, weights = np.array([0]), np.zeros(1, np.float32)
        x = self.images[pick]
        if self.augment is not None:
            x = self.augment(x, training=True).numpy()
        return x, self.labels[pick], weights
