"""Run the exported mobile stage with a TFLite interpreter; TensorFlow only as the last resort.

Prefers LiteRT (ai-edge-litert: 64-bit Linux, Apple silicon, Windows; Python 3.11-3.13) and
falls back to tflite-runtime, installed only where LiteRT has no wheel (32-bit Raspberry Pi
OS). tflite-runtime 2.14 breaks with numpy 2, so that pairing is refused when the interpreter
is looked up, before any model loads. Where neither is installed, TensorFlow's own
`tf.lite.Interpreter` runs the stage: a laptop with the full install (the `train` extra) always
has a runtime, Intel macOS included, where LiteRT has no wheel. TensorFlow is imported only then:
a device with the edge install never imports it.
A float32 model takes and returns float32. Our int8 file takes float32 (its first op quantises)
and returns int8 with a scale and zero point, which `MobileStage.run` applies; a full-integer
model that takes int8 (older exports) has its input quantised here.
"""

import hashlib
import importlib
import sys
from importlib import metadata
from pathlib import Path

import numpy as np

# Interpreter package -> its distribution on PyPI, in order of preference.
RUNTIMES = {"ai_edge_litert": "ai-edge-litert", "tflite_runtime": "tflite-runtime",
            "tensorflow": "tensorflow"}


def interpreter_module(package: str) -> str:
    """The module holding `package`'s Interpreter (TensorFlow's is `tf.lite.Interpreter`)."""
    return "tensorflow.lite.python.interpreter" if package == "tensorflow" else f"{package}.interpreter"


def _interpreter_class():
    """The `Interpreter` class of the first runtime that imports (see RUNTIMES)."""
    for package in RUNTIMES:
        try:
            interpreter = importlib.import_module(interpreter_module(package)).Interpreter
        except ImportError:
            continue
        if package == "tflite_runtime":
            _refuse_numpy_2()
        return interpreter
    raise ImportError("no TFLite interpreter: pip install 'splitleak[edge]' (ai-edge-litert, or "
                      "tflite-runtime on 32-bit ARM), or where neither has a wheel (Intel macOS) "
                      "pip install 'splitleak[train]', whose TensorFlow has tf.lite")


def _refuse_numpy_2() -> None:
    """tflite-runtime (built against numpy 1) fails on its first model under numpy 2."""
    if int(np.__version__.split(".")[0]) >= 2:
        try:
            version = metadata.version("tflite-runtime")
        except metadata.PackageNotFoundError:
            version = "(version unknown)"
        raise ImportError(f"tflite-runtime {version} does not work with numpy {np.__version__}: "
                          "pip install 'numpy<2', or use ai-edge-litert instead")


def sha256_file(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


class MobileStage:
    """A TFLite mobile stage: images (N, 105, 105, 1) float32 in, activations out."""

    def __init__(self, path, threads: int = 1, xnnpack: bool = True):
        """`xnnpack=False` runs TFLite's built-in kernels instead of the XNNPACK delegate (for
        comparison: `splitleak bench tflite`)."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"TFLite model not found: {path}")
        self.path, self.sha256 = path, sha256_file(path)
        try:
            interpreter = _interpreter_class()
            options = {} if xnnpack else {"experimental_op_resolver_type": sys.modules[
                interpreter.__module__].OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES}
            self._interp = interpreter(model_path=str(path), num_threads=threads, **options)
            self._interp.allocate_tensors()
        except ValueError as exc:
            raise ValueError(f"{path} is not a valid TFLite model ({exc})") from exc
        self._in = self._interp.get_input_details()[0]
        self._out = self._interp.get_output_details()[0]
        self.input_shape = tuple(int(d) for d in self._in["shape"][1:])
        self.output_shape = tuple(int(d) for d in self._out["shape"][1:])
        self.quantized = self._out["dtype"] == np.int8
        self.output_quant = self._out["quantization"] if self.quantized else (0.0, 0)

    def run_raw(self, image: np.ndarray) -> np.ndarray:
        """One image (105, 105, 1) float32 -> the stage's own output (float32, or int8)."""
        if image.shape != self.input_shape:
            raise ValueError(f"expected an image of shape {self.input_shape}, got {image.shape}")
        x = image[None].astype(np.float32)
        if self._in["dtype"] == np.int8:
            scale, zero = self._in["quantization"]
            x = np.clip(np.round(x / scale + zero), -128, 127).astype(np.int8)
        self._interp.set_tensor(self._in["index"], x)
        self._interp.invoke()
        return self._interp.get_tensor(self._out["index"])[0].copy()

    def run(self, images: np.ndarray) -> np.ndarray:
        """A batch of images -> float32 activations (int8 outputs are dequantized)."""
        out = np.stack([self.run_raw(img) for img in images])
        if self.quantized:
            scale, zero = self.output_quant
            return ((out.astype(np.float32) - zero) * scale).astype(np.float32)
        return out.astype(np.float32)
