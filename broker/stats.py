"""Summary statistics that every node reports the same way (edge, cloud head, benchmarks)."""

import numpy as np


def percentiles(ms: np.ndarray) -> dict | None:
    """p50, p90, p99 of milliseconds, rounded; None when there are none."""
    if not len(ms):
        return None
    return {q: round(float(np.percentile(ms, int(q[1:]))), 2) for q in ("p50", "p90", "p99")}
