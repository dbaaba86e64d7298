"""A soak run: an emulated fleet streaming at a fixed rate for a while through a fresh broker,
with the cloud head and the eavesdropper attached; what was lost, and whether any process grew.

Resident memory (VmRSS) of each process is sampled every second; "start" is the first sample
after the warm-up (the first 10 % of the run, at least 2 s, counted from the first prediction:
imports, model and data loading and the first batches are over), "end" the last one before
the fleet stops.
"""

import time
from pathlib import Path

from splitleak.tools.bench.target import ENGINE, data_args, finished_run

FLAT = 0.10  # resident memory may move this much (relative) between start and end
NODES, RATE, SECONDS = 10, 100.0, 60.0  # emulated nodes, frames/s each, how long


def rss_mib(pid: int) -> float | None:
    """Resident memory of a process in MiB (Linux /proc), None once it has ended."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def run(run_dir: Path | None = None, *, split_after: int | None = None, engine: str = ENGINE,
        nodes: int = NODES, rate: float = RATE, seconds: float = SECONDS,
        omniglot_dir: str | None = None) -> dict:
    """Stream nodes x rate frames/s for `seconds`, deploying `run_dir` (target.finished_run);
    counts, memory at start and end, and `passed`: nothing lost, no process grew past FLAT."""
    import os

    from splitleak.tools.deploy.demo import Deployment, PredictionLog

    if nodes < 1 or rate <= 0 or seconds <= 0:
        raise ValueError("--nodes, --rate and --seconds must be positive")
    run_dir, _ = finished_run(run_dir, split_after)
    frames = int(rate * seconds)
    warmup = max(2.0, 0.1 * seconds)
    with Deployment(run_dir, engine) as dep:
        cloud = dep.start_cloud("--json")
        spy = dep.start_eavesdropper("--json")
        edge = dep.start_edge("--node-id", "soak", "--fleet", nodes, "--rate", rate, "--count",
                              frames, "--source", "lite-val", "--json", *data_args(omniglot_dir))
        broker = getattr(dep.broker, "process", None)  # Mosquitto's; amqtt runs in this process
        pids = {"edge": edge.proc.pid, "cloud": cloud.proc.pid, "eavesdropper": spy.proc.pid,
                "broker" if broker else "bench process (amqtt inside)":
                broker.pid if broker else os.getpid()}
        first = PredictionLog(dep.broker.url, "soak-0" if nodes > 1 else "soak")
        dep.callback(first.close)
        if not first.wait_for(1, timeout=300):
            raise TimeoutError(f"no prediction within 300 s: {edge.tail(1).strip()}")
        started, samples = time.monotonic(), []
        while edge.proc.poll() is None:
            if time.monotonic() - started >= warmup:
                sample = {name: rss_mib(pid) for name, pid in pids.items()}
                if None in sample.values():
                    break  # the edge is finishing
                samples.append(sample)
            time.sleep(1.0)
        if edge.wait(seconds + 300) != 0:
            raise OSError(f"the edge fleet failed: {edge.tail(1).strip()}")
        time.sleep(1.0)  # the last predictions reach the cloud and the eavesdropper
        cloud.stop()
        spy.stop()
        edge_summary, cloud_summary, spy_summary = edge.json(), cloud.json(), spy.json()
    if len(samples) < 2:
        raise ValueError(f"the run was too short to sample memory twice after the {warmup:g} s "
                         "warm-up: give --seconds more")
    memory = memory_change(samples[0], samples[-1])
    sent = edge_summary["sent"]
    return {"bench": "soak", "engine": engine, "nodes": nodes, "rate_hz": rate,
            "seconds": seconds, "warmup_s": warmup, "samples": len(samples), "sent": sent,
            "acknowledged": edge_summary["acknowledged"],
            "predictions": edge_summary["predictions"], "lost": sent - edge_summary["predictions"],
            "cloud_accepted": cloud_summary["accepted"], "cloud_gaps": cloud_summary["gaps"],
            "eavesdropper_frames": spy_summary["frames"],
            "edge_frames_per_second": edge_summary["frames_per_second"],
            "latency_ms": cloud_summary["latency_ms"], "memory": memory,
            "passed": sent == nodes * frames == edge_summary["predictions"]
            == cloud_summary["accepted"] == spy_summary["frames"]
            and cloud_summary["gaps"] == 0
            and all(abs(m["change"]) <= FLAT for m in memory.values())}


def describe(r: dict) -> str:
    lat = r["latency_ms"] or {}
    lines = [f"soak ({r['engine']}, {r['nodes']} nodes x {r['rate_hz']:g} frames/s x "
             f"{r['seconds']:g} s): sent {r['sent']}, acknowledged {r['acknowledged']}, "
             f"predictions {r['predictions']}, lost {r['lost']}, cloud gaps {r['cloud_gaps']}, "
             f"eavesdropper {r['eavesdropper_frames']} frames; latency p50 {lat.get('p50')} ms, "
             f"p99 {lat.get('p99')} ms"]
    return "\n".join(lines + memory_lines(r))


def memory_change(start: dict, end: dict) -> dict:
    """Per process: resident MiB at start and end, and the relative change."""
    return {name: {"start_mib": round(start[name], 1), "end_mib": round(end[name], 1),
                   "change": round(end[name] / start[name] - 1, 4)} for name in start}


def memory_lines(r: dict) -> list[str]:
    """A report's memory per process, then its verdict."""
    return [f"  {name}: {m['start_mib']} -> {m['end_mib']} MiB ({m['change']:+.1%})"
            for name, m in r["memory"].items()] + ["passed" if r["passed"] else "FAILED"]
