"""`bench tflite`: ms per single image of a run's mobile stage, Keras against TFLite float32 and
int8 on each thread count, and int8 once more on TFLite's built-in kernels instead of XNNPACK."""

import platform
from pathlib import Path

from splitleak.cloud import rundir

RUNS = 300  # timed runs per engine
THREADS = (1, 2)  # TFLite interpreter threads to time
FLOAT32, INT8 = rundir.MOBILE_TFLITE, rundir.MOBILE_INT8  # the report names the stages by file
BUILTIN = "int8 built-in kernels"  # the int8 stage without the XNNPACK delegate
STAGES = (FLOAT32, INT8, BUILTIN)


def run(run_dir: Path, *, runs: int = RUNS, threads=THREADS) -> dict:
    """Median ms per image after warm-up, batch size 1, per engine and thread count; the best
    thread count of each TFLite stage and int8's ratios to float32."""
    run_dir = Path(run_dir)
    if runs < 1 or min(threads) < 1:
        raise ValueError("--runs and --threads must be positive integers")
    if not rundir.mobile(run_dir).is_file():
        raise FileNotFoundError(f"{run_dir} has no {FLOAT32}; run `splitleak train` first")
    import numpy as np
    import tensorflow as tf

    from splitleak.edge.runtime import MobileStage
    from splitleak.edge.selfcheck import runtime_name
    from splitleak.tools.bench.timing import median_ms

    mobile = tf.keras.models.load_model(run_dir / rundir.MOBILE_KERAS)
    image = np.random.default_rng(0).random((1, *mobile.input_shape[1:]), dtype=np.float32)
    engines = {"keras": lambda: mobile(image, training=False)}
    for name in STAGES:
        for n in threads:
            stage = (MobileStage(rundir.mobile(run_dir, int8=True), n, xnnpack=False)
                     if name == BUILTIN else rundir.device(run_dir, int8=name == INT8, threads=n).stage)
            engines[f"{name} x{n}"] = lambda s=stage: s.run_raw(image[0])
    results = {name: median_ms(fn, runs=runs) for name, fn in engines.items()}
    best = {name: min(r["median_ms"] for key, r in results.items() if key.startswith(name + " "))
            for name in STAGES}
    return {"bench": "tflite", "run_dir": str(run_dir), "machine": platform.machine(),
            "runtime": runtime_name(), "threads": list(threads), "batch": 1,
            "results": results, "best_ms": best,
            "int8_over_float32": round(best[INT8] / best[FLOAT32], 3),
            "int8_builtin_over_float32": round(best[BUILTIN] / best[FLOAT32], 3)}


def describe(r: dict) -> str:
    lines = [f"runtime {r['runtime']} ({r['machine']})"]
    lines += [f"{name:<22} {result['median_ms']:7.3f} ms/image (median of {result['runs']})"
              for name, result in r["results"].items()]
    lines.append(f"int8 / float32 (best thread counts): {r['int8_over_float32']} (XNNPACK, what "
                 f"the edge runs), {r['int8_builtin_over_float32']} (int8 on TFLite's built-in "
                 "kernels)")
    return "\n".join(lines)
