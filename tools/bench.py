"""Small timing helpers shared by the benchmarks."""

import time

import numpy as np


def median_ms(fn, runs: int = 200, warmup: int = 20) -> dict:
    """Call fn() warmup times, then time `runs` calls; milliseconds per call."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return {"median_ms": float(np.median(times)), "p90_ms": float(np.percentile(times, 90)),
            "runs": runs}
