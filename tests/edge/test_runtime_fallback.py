"""The last fallback: with neither LiteRT nor tflite-runtime installed, TensorFlow's own
`tf.lite.Interpreter` runs the mobile stage, and computes what LiteRT computes."""

import subprocess
import sys
from importlib import metadata

import numpy as np
import pytest

from splitleak.cloud import rundir
from splitleak.edge import runtime, selfcheck
from splitleak.tools import cli

TF_MODULE = "tensorflow.lite.python.interpreter"


def block(monkeypatch, *packages: str) -> None:
    """Make each package's interpreter unimportable, as if the package were not installed."""
    for package in packages:
        for name in (package, runtime.interpreter_module(package)):
            monkeypatch.setitem(sys.modules, name, None)  # import raises ImportError


def test_tensorflow_keeps_its_interpreter_in_tf_lite():
    assert runtime.interpreter_module("tensorflow") == TF_MODULE
    assert runtime.interpreter_module("ai_edge_litert") == "ai_edge_litert.interpreter"
    assert list(runtime.RUNTIMES)[-1] == "tensorflow"  # tried only when the other two fail


def test_with_litert_installed_tensorflow_is_never_imported(tiny_run):
    """Not blocked, only unused: a device (or laptop) with LiteRT does not load TensorFlow."""
    code = ("import sys; from splitleak.edge import runtime; "
            "runtime.MobileStage(sys.argv[1]); print(sorted(m for m in sys.modules "
            "if m.split('.')[0] in ('tensorflow', 'keras')))")
    result = subprocess.run([sys.executable, "-c", code, str(rundir.mobile(tiny_run))],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "[]", result.stderr[-2000:]


@pytest.mark.parametrize("int8", [False, True], ids=["float32", "int8"])
def test_tensorflow_runs_the_stage_as_litert_does(tiny_run, lite, monkeypatch, int8):
    images = lite.val.images[:32]
    model = rundir.mobile(tiny_run, int8=int8)
    litert = runtime.MobileStage(model)
    assert type(litert._interp).__module__ == "ai_edge_litert.interpreter"
    expected = litert.run(images)

    block(monkeypatch, "ai_edge_litert", "tflite_runtime")
    stage = runtime.MobileStage(model)
    assert type(stage._interp).__module__ == TF_MODULE
    assert selfcheck.runtime_name() == f"tensorflow {metadata.version('tensorflow')}"
    assert stage.quantized == int8 and stage.output_quant == litert.output_quant
    got = stage.run(images)
    assert got.shape == expected.shape == (32, *litert.output_shape)
    if int8:  # integer kernels: the same codes, so the same dequantised values
        assert np.array_equal(got, expected)
    else:  # float sums may be ordered differently by another build of the kernels
        assert np.abs(got - expected).max() <= 1e-5


def test_tensorflow_runs_without_xnnpack_too(tiny_run, lite, monkeypatch):
    images = lite.val.images[:8]
    model = rundir.mobile(tiny_run)
    expected = runtime.MobileStage(model, xnnpack=False).run(images)
    block(monkeypatch, "ai_edge_litert", "tflite_runtime")
    stage = runtime.MobileStage(model, xnnpack=False)  # OpResolverType from TF's module
    assert type(stage._interp).__module__ == TF_MODULE
    assert np.abs(stage.run(images) - expected).max() <= 1e-5


def test_no_runtime_at_all_is_one_line_naming_the_installs(monkeypatch, capsys, tmp_path):
    block(monkeypatch, "ai_edge_litert", "tflite_runtime", "tensorflow")
    with pytest.raises(ImportError) as info:
        runtime._interpreter_class()
    message = str(info.value)
    assert "\n" not in message and message.startswith("no TFLite interpreter: ")
    assert "pip install 'splitleak[edge]'" in message and "pip install 'splitleak[train]'" in message
    (tmp_path / "m.tflite").write_bytes(b"not reached")
    assert cli.main(["edge", "--check", "--model", str(tmp_path / "m.tflite")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install 'splitleak[edge]'" in err
