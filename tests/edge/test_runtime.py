"""Which TFLite runtime the edge picks: LiteRT first, tflite-runtime as the fallback, and the
fallback refused under numpy 2 (it breaks on the first model it loads). TensorFlow's own
interpreter, the last fallback, is tested in test_runtime_fallback.py."""

import sys
import types
from importlib import metadata

import numpy as np
import pytest

from splitleak.cloud import rundir
from splitleak.edge import runtime, selfcheck
from splitleak.tools import cli


def fake_runtime(monkeypatch, module: str) -> type:
    """Make `module`.interpreter import a stub Interpreter class, and return the class."""
    for name in (module, f"{module}.interpreter"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    interpreter = type("Interpreter", (), {"__module__": f"{module}.interpreter"})
    sys.modules[f"{module}.interpreter"].Interpreter = interpreter
    return interpreter


def block(monkeypatch, module: str) -> None:
    """Make `module` unimportable, as if it were not installed."""
    for name in (module, runtime.interpreter_module(module)):
        monkeypatch.setitem(sys.modules, name, None)  # import raises ImportError


def test_litert_is_preferred_when_both_import(monkeypatch):
    litert = fake_runtime(monkeypatch, "ai_edge_litert")
    fake_runtime(monkeypatch, "tflite_runtime")
    monkeypatch.setattr(metadata, "version", lambda dist: "9.9")
    assert runtime._interpreter_class() is litert
    assert selfcheck.runtime_name() == "ai-edge-litert 9.9"


def test_the_fallback_is_tflite_runtime_with_numpy_1(monkeypatch):
    block(monkeypatch, "ai_edge_litert")
    tflite = fake_runtime(monkeypatch, "tflite_runtime")
    monkeypatch.setattr(np, "__version__", "1.26.4")
    assert runtime._interpreter_class() is tflite


def test_the_fallback_under_numpy_2_is_refused_in_one_line(monkeypatch):
    block(monkeypatch, "ai_edge_litert")
    fake_runtime(monkeypatch, "tflite_runtime")
    monkeypatch.setattr(np, "__version__", "2.1.3")
    monkeypatch.setattr(metadata, "version", lambda dist: "2.14.0")
    with pytest.raises(ImportError) as info:
        runtime._interpreter_class()
    message = str(info.value)
    assert "tflite-runtime 2.14.0" in message and "numpy 2.1.3" in message and "\n" not in message
    assert "pip install 'numpy<2'" in message and "ai-edge-litert" in message


def test_no_runtime_at_all_says_what_to_install(monkeypatch):
    block(monkeypatch, "ai_edge_litert")
    block(monkeypatch, "tflite_runtime")
    block(monkeypatch, "tensorflow")  # the full install's last fallback (test_runtime_fallback.py)
    with pytest.raises(ImportError, match=r"pip install 'splitleak\[edge\]'"):
        runtime._interpreter_class()


def test_edge_check_stops_at_the_bad_pairing_with_that_line(monkeypatch, capsys, tmp_path):
    block(monkeypatch, "ai_edge_litert")
    fake_runtime(monkeypatch, "tflite_runtime")
    monkeypatch.setattr(np, "__version__", "2.0.2")
    (tmp_path / "m.tflite").write_bytes(b"not reached")
    assert cli.main(["edge", "--check", "--model", str(tmp_path / "m.tflite")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "numpy 2.0.2" in err and "pip install 'numpy<2'" in err


def test_builtin_kernels_compute_the_same_int8_stage(tiny_run, lite):
    images = lite.val.images[:4]
    xnnpack = runtime.MobileStage(rundir.mobile(tiny_run, int8=True))
    builtin = runtime.MobileStage(rundir.mobile(tiny_run, int8=True), xnnpack=False)
    step = xnnpack.output_quant[0]  # kernels may round differently: a step or two at most
    assert np.abs(builtin.run(images) - xnnpack.run(images)).max() <= 2 * step + 1e-9
