"""`splitleak edge --check`: what a device will run, and how fast (numpy and the TFLite runtime
only). Per thread count: median and p95 ms per image after a warm-up, and whether the output
equals the single-thread one (a broken runtime build shows here first). Under emulation
(`splitleak pi-emu run` sets EMULATED_ENV) the report says so: those timings are the emulator's."""

import os
import platform
import time
from importlib import metadata

import numpy as np

from splitleak.edge.runtime import RUNTIMES, MobileStage, _interpreter_class

THREADS = (1, 2, 4)
EMULATED_ENV = "SPLITLEAK_EMULATED"  # what emulates this machine, set by whoever emulates it


def runtime_name() -> str:
    """The TFLite runtime in use, with its version."""
    dist = RUNTIMES[_interpreter_class().__module__.split(".")[0]]
    return f"{dist} {metadata.version(dist)}"


def self_check(model, threads=THREADS, warmup: int = 20, runs: int = 200, budget_s: float = 2.0,
               seed: int = 0) -> dict:
    """Time the stage on one seeded ink-on-paper image per thread count (up to `runs` images or
    `budget_s` seconds each, at least 10: more threads than cores can be very slow); compare
    outputs."""
    if warmup < 0 or runs < 1 or not threads or min(threads) < 1:
        raise ValueError("expected warm-up >= 0, runs >= 1 and thread counts >= 1")
    stages = {t: MobileStage(model, threads=t) for t in threads}
    first = stages[threads[0]]
    image = (np.random.default_rng(seed).random(first.input_shape) > 0.9).astype(np.float32)
    reference = first.run_raw(image)
    latency = {}
    for t, stage in stages.items():
        for _ in range(warmup):
            stage.run_raw(image)
        ms = []
        while len(ms) < runs and (len(ms) < 10 or sum(ms) < budget_s * 1e3):
            start = time.perf_counter()
            out = stage.run_raw(image)
            ms.append((time.perf_counter() - start) * 1e3)
        latency[str(t)] = {"runs": len(ms), "median_ms": round(float(np.median(ms)), 4),
                           "p95_ms": round(float(np.percentile(ms, 95)), 4),
                           "same_output": bool(np.allclose(out, reference, rtol=1e-5, atol=1e-6))}
    return {"runtime": runtime_name(), "numpy": np.__version__,
            "python": platform.python_version(), "machine": platform.machine(),
            "emulated": os.environ.get(EMULATED_ENV) or None,
            "model": str(first.path), "sha256": first.sha256,
            "input_shape": list(first.input_shape), "activation_shape": list(first.output_shape),
            "activation_dtype": "int8" if first.quantized else "float32",
            "warmup": warmup, "threads": latency,
            "ok": bool(np.isfinite(reference).all())
            and all(v["same_output"] for v in latency.values())}


def describe(r: dict) -> str:
    """The report as lines for a terminal."""
    shape = "x".join
    lines = [f"runtime {r['runtime']}, numpy {r['numpy']}, Python {r['python']} ({r['machine']})",
             f"model {r['model']} sha256 {r['sha256'][:16]}…: input "
             f"{shape(map(str, r['input_shape']))} -> activation "
             f"{shape(map(str, r['activation_shape']))} {r['activation_dtype']}"]
    if r["emulated"]:
        lines.append(f"EMULATED: {r['emulated']}")
    lines += [f"{t} thread(s): median {v['median_ms']:.3f} ms, p95 {v['p95_ms']:.3f} ms "
              f"({v['runs']} runs)"
              + ("" if v["same_output"] else " (OUTPUT DIFFERS from 1 thread)")
              for t, v in r["threads"].items()]
    lines.append("self-check passed" if r["ok"] else "self-check FAILED")
    return "\n".join(lines)
