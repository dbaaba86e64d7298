"""Export the mobile stage to TFLite (float32 and full-integer int8) and check parity.

Both files hold `folded(mobile)`: the seed's conv -> relu -> BatchNorm order leaves each
BatchNorm after the relu, where the converter cannot fold it; left in, it becomes a per-channel
multiply and add that int8 quantises per tensor, a large error in the int8 activation.
The int8 file also has its first convolution `blocked` for XNNPACK's int8 kernels, which makes
int8 faster than float32 rather than slower (figures: docs/reliability.md, from `splitleak
bench all`, docs/bench/all.json).

Parity is measured with the edge's own interpreter (edge/runtime.py), the code that will run
on the device: float32 must match Keras to 1e-4 (relative to the largest activation when that
exceeds 1: float32 rounding grows with the values); for int8 we record the activation's relative
error and how often the head's top-1 class agrees with the float model's.
"""

import os
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import tensorflow as tf

from splitleak.cloud import rundir
from splitleak.edge.runtime import MobileStage

FLOAT_TOLERANCE = 1e-4  # TFLite float32 against Keras, relative to the activation's scale
# GroupNormalization reduces over up to 39,000 values a group, and TFLite sums in another order
# and normalises small variances: the difference outgrows FLOAT_TOLERANCE once DP-SGD has trained.
GROUP_NORM_TOLERANCE = 1e-2
CALIBRATION_IMAGES = 200


@contextmanager
def converter_output_kept_aside():
    """The converter prints pages of MLIR statistics straight to file descriptor 2: keep them
    in a temporary file, and show them only if the conversion fails."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as log:
        os.dup2(log.fileno(), 2)
        try:
            yield
        except Exception:
            os.dup2(saved, 2)
            log.seek(0)
            sys.stderr.write(log.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def folded(mobile: tf.keras.Model) -> tf.keras.Model:
    """The same function at inference with every post-relu BatchNorm folded into convolutions.

    A BatchNorm of scale g > 0 and shift h after a relu: g * relu(z) + h = relu(g * z) + h, so g
    scales the convolution before it; + h passes through max pooling (per channel) into the next
    convolution's bias (exact: valid padding, every output sees a whole window). The last
    shift stays, as one add at the output. Anything else (GroupNorm, no norm, a scale <= 0)
    is returned unchanged."""
    layers = [layer for layer in mobile.layers[1:] if not isinstance(layer, tf.keras.layers.Dropout)]
    kinds = [type(layer).__name__ for layer in layers]
    if "BatchNormalization" not in kinds or set(kinds) - {"Conv2D", "BatchNormalization",
                                                           "MaxPooling2D"}:
        return mobile
    x = inputs = tf.keras.Input(mobile.input_shape[1:], name="image")
    shift = None
    for i, layer in enumerate(layers):
        if isinstance(layer, tf.keras.layers.MaxPooling2D):
            x = layer.__class__.from_config(layer.get_config())(x)
        elif isinstance(layer, tf.keras.layers.Conv2D):
            kernel, bias = layer.get_weights()
            if shift is not None:  # the previous block's + h, seen through this convolution
                bias = bias + np.einsum("hwco,c->o", kernel, shift)
            norm = layers[i + 1] if i + 1 < len(layers) else None
            if not isinstance(norm, tf.keras.layers.BatchNormalization) or \
                    layer.get_config()["activation"] != "relu" or layer.padding != "valid":
                return mobile
            gamma, beta, mean, variance = norm.get_weights()
            scale = gamma / np.sqrt(variance + norm.epsilon)
            if not (scale > 0).all():
                return mobile
            conv = layer.__class__.from_config(layer.get_config())
            x = conv(x)
            conv.set_weights([kernel * scale, bias * scale])
            shift = beta - mean * scale
    shift = tf.constant(shift, tf.float32)
    outputs = tf.keras.layers.Lambda(lambda a: a + shift, name="shift")(x)
    return tf.keras.Model(inputs, outputs, name=f"{mobile.name}_folded")


def blocked(mobile: tf.keras.Model) -> tf.keras.Model:
    """The same function with a first convolution over one channel rewritten for int8 kernels.

    XNNPACK's int8 convolution over a single input channel is slow (slower than its float32 one,
    docs/reliability.md), and so is its int8 PAD. So a reshape groups the image's columns B to a
    channel (B the smallest divisor of the width >= kernel width - 1, so one output group reads
    at most two input groups), and one "same"-padded convolution over the groups computes all B
    column phases at once: output channel p * C + o is filter o at column p of the group, its
    taps placed by column, zeros elsewhere. A reshape puts the phases back into columns and a
    crop keeps the valid window. Exact; 2.2x the multiply-adds (7x7 filter, 105 wide), on
    kernels that do them fast. `mobile` is a chain of layers (as model.py builds); one whose
    first layer does not fit is returned unchanged."""
    conv = mobile.layers[1]
    if not isinstance(conv, tf.keras.layers.Conv2D) or mobile.input_shape[-1] != 1 or \
            conv.padding != "valid" or conv.strides != (1, 1) or conv.dilation_rate != (1, 1) \
            or not conv.use_bias:
        return mobile
    (height, width, _), (kh, kw) = mobile.input_shape[1:], conv.kernel_size
    block = next((b for b in range(max(kw - 1, 2), 2 * kw) if width % b == 0), None)
    if block is None:
        return mobile
    kernel, bias = conv.get_weights()
    filters = kernel.shape[-1]
    wide = np.zeros((kh, 2, block, block, filters), np.float32)  # row, group, in, out column
    for p in range(block):  # output column p reads columns p .. p + kw - 1 from its group on
        for d in range(kw):
            wide[:, (p + d) // block, (p + d) % block, p] = kernel[:, d, 0]
    layers = tf.keras.layers
    x = inputs = tf.keras.Input(mobile.input_shape[1:], name="image")
    x = layers.Reshape((height, width // block, block))(x)
    grouped = layers.Conv2D(block * filters, (kh, 2), padding="same",  # pads rows, and 1 group right
                            activation=conv.activation, name=f"{conv.name}_blocked")
    x = layers.Reshape((height, width, filters))(grouped(x))
    grouped.set_weights([wide.reshape(kh, 2, block, block * filters), np.tile(bias, block)])
    top = (kh - 1) // 2
    x = layers.Cropping2D(((top, kh - 1 - top), (0, kw - 1)))(x)
    for layer in mobile.layers[2:]:
        x = layer(x)
    return tf.keras.Model(inputs, x, name=f"{mobile.name}_blocked")


def to_tflite(mobile: tf.keras.Model, calibration: np.ndarray | None = None) -> bytes:
    """Convert to TFLite: float32, or full-integer int8 if calibration images are given.

    Traced for one image at a time (what the edge runs): GroupNormalization's reshapes then have
    a static batch, which int8 calibration needs."""
    one = tf.TensorSpec((1, *mobile.input_shape[1:]), tf.float32)
    call = tf.function(lambda image: mobile(image, training=False)).get_concrete_function(one)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([call], mobile)
    if calibration is not None:
        def representative():
            for image in calibration[:CALIBRATION_IMAGES]:
                yield [image[None].astype(np.float32)]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_output_type = tf.int8  # the input stays float: quantised in-graph
    with converter_output_kept_aside():
        return converter.convert()


def export(mobile: tf.keras.Model, calibration: np.ndarray, out_dir: Path) -> dict:
    """Write mobile.tflite and mobile_int8.tflite; return their tensor descriptions."""
    out_dir = Path(out_dir)
    deployed = folded(mobile)
    rundir.mobile(out_dir).write_bytes(to_tflite(deployed))
    rundir.mobile(out_dir, int8=True).write_bytes(to_tflite(blocked(deployed), calibration))
    return {path.name: describe(MobileStage(path))
            for path in (rundir.mobile(out_dir), rundir.mobile(out_dir, int8=True))}


def describe(stage: MobileStage) -> dict:
    """Input and output shapes, dtypes and (for int8) quantisation of a TFLite stage."""
    def tensor(detail):
        scale, zero = detail["quantization"]
        info = {"shape": [int(d) for d in detail["shape"][1:]], "dtype": np.dtype(detail["dtype"]).name}
        return info | ({"scale": float(scale), "zero_point": int(zero)} if scale else {})

    return {"input": tensor(stage._in), "output": tensor(stage._out)}


def parity(mobile: tf.keras.Model, cloud_head: tf.keras.Model, images: np.ndarray, out_dir) -> dict:
    """Compare Keras with both TFLite files on the same images."""
    reference = mobile.predict(images, verbose=0)
    as_float = MobileStage(rundir.mobile(out_dir)).run(images)
    as_int8 = MobileStage(rundir.mobile(out_dir, int8=True)).run(images)
    max_diff = float(np.abs(as_float - reference).max())
    grouped = any(isinstance(layer, tf.keras.layers.GroupNormalization) for layer in mobile.layers)
    tolerance = (GROUP_NORM_TOLERANCE if grouped else FLOAT_TOLERANCE) * max(
        1.0, float(np.abs(reference).max()))
    if max_diff > tolerance:
        raise ValueError(f"TFLite float32 differs from Keras by {max_diff:.2e} "
                         f"(tolerance {tolerance:.1e})")
    norms = np.linalg.norm((as_int8 - reference).reshape(len(images), -1), axis=1)
    scale = np.linalg.norm(reference.reshape(len(images), -1), axis=1) + 1e-12
    top_float = cloud_head.predict(reference, verbose=0).argmax(1)
    top_int8 = cloud_head.predict(as_int8, verbose=0).argmax(1)
    return {
        "images": len(images),
        "float32_max_abs_diff": max_diff,
        "float32_tolerance": tolerance,
        "int8_relative_error": float(np.mean(norms / scale)),
        "int8_top1_agreement": float(np.mean(top_float == top_int8)),
    }
