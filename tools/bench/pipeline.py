"""`bench pipeline`: a broker, the cloud head(s) and edge node(s) on this machine; frames per
second, lost frames, latency from capture on the edge to the prediction published by the cloud,
CPU seconds per process."""

import os
import platform
import subprocess
from pathlib import Path

from splitleak.cloud.service import BATCH
from splitleak.tools.bench.target import ENGINE, data_args, finished_run

FRAMES = 5000  # per node
FLEET = 1  # edge nodes
HEADS = 1  # cloud heads; more share the stream (MQTT 5 shared subscription)
RATE = 0.0  # frames per second per node; 0: unpaced


def run(run_dir: Path | None = None, *, split_after: int | None = None, engine: str = ENGINE,
        frames: int = FRAMES, fleet: int = FLEET, heads: int = HEADS, rate: float = RATE,
        batch: int = BATCH, omniglot_dir: str | None = None) -> dict:
    """Stream the lite validation images (cycled) from `fleet` edge nodes through a fresh broker
    to `heads` cloud heads once; the edge's and the cloud's summaries and the key numbers."""
    from splitleak.tools.deploy.demo import Deployment, frame_bytes

    if frames < 1 or fleet < 1 or batch < 1 or rate < 0 or heads < 1:
        raise ValueError("--frames, --fleet, --heads and --batch must be positive, --rate zero "
                         "or positive")
    run_dir, split_after = finished_run(run_dir, split_after)
    size = frame_bytes(run_dir, "edge-0" if fleet > 1 else "edge")
    with Deployment(run_dir, engine) as dep:
        share = ("--share", "bench") if heads > 1 else ()
        clouds = [dep.start_cloud("--json", "--batch", batch, *share, "--client-id",
                                  f"bench-head-{i}") for i in range(heads)]
        edge = dep.start_edge("--source", "lite-val", "--count", frames, "--fleet", fleet,
                              "--rate", rate, "--json", *data_args(omniglot_dir))
        limit = max(600.0, frames * fleet / 50)
        try:
            code = edge.wait(limit)
        except subprocess.TimeoutExpired:
            raise TimeoutError(f"the edge node did not finish within {limit:g} s") from None
        if code != 0:
            raise OSError(f"the edge node failed: {edge.tail(1).strip()}")
        broker_cpu = getattr(dep.broker, "cpu_seconds", lambda: None)()
        for cloud in clouds:
            cloud.stop()
        edge_summary, summaries = edge.json(), [cloud.json() for cloud in clouds]
    cloud_summary = summaries[0] if len(summaries) == 1 else merge_heads(summaries)
    fps = cloud_summary["frames_per_second"]
    return {"bench": "pipeline", "engine": engine, "machine": platform.machine(),
            "run": str(run_dir), "split_after": split_after, "bytes_per_frame": size,
            "megabytes_per_second": round(fps * size / 1e6, 2) if fps else None,
            "frames_per_node": frames, "fleet": fleet, "heads": heads, "rate_hz": rate,
            "batch": batch, "sent": edge_summary["sent"],
            "predictions_received": edge_summary["predictions"],
            "lost": edge_summary["sent"] - edge_summary["predictions"],
            "cloud_sequence_gaps": cloud_summary["gaps"],
            "cloud_frames_per_second": cloud_summary["frames_per_second"],
            "edge_frames_per_second": edge_summary["frames_per_second"],
            "latency_ms": cloud_summary["latency_ms"],
            "round_trip_ms": edge_summary["round_trip_ms"],
            "per_head": [{"accepted": h["accepted"], "frames_per_second": h["frames_per_second"],
                          "latency_ms": h["latency_ms"]} for h in summaries],
            "cpu_seconds": {"edge": edge_summary["cpu_seconds"],
                            "heads": [h["cpu_seconds"] for h in summaries],
                            "broker": None if broker_cpu is None else round(broker_cpu, 2)},
            "cores": os.cpu_count(),
            "edge": edge_summary, "cloud": cloud_summary}


def merge_heads(heads: list[dict]) -> dict:
    """Several heads of one share group as one: frames summed over the longest head's time
    (they run side by side), the slowest head's latency. Each head sees part of every node's
    sequence, so gaps are left out: a frame no head answered shows as lost at the edge."""
    seconds = max(h["seconds"] for h in heads)
    accepted = sum(h["accepted"] for h in heads)
    return {"accepted": accepted, "seconds": seconds,
            "frames_per_second": round(accepted / seconds, 1) if seconds else None,
            "duplicates": sum(h["duplicates"] for h in heads), "gaps": None,
            "latency_ms": max((h["latency_ms"] for h in heads if h["latency_ms"]),
                              key=lambda lat: lat["p50"], default=None)}


def describe(r: dict) -> str:
    lat, trip = r["latency_ms"] or {}, r["round_trip_ms"] or {}
    cpu = r["cpu_seconds"]
    lines = [
        f"pipeline ({r['engine']}, split after block {r['split_after']}, "
        f"{r['bytes_per_frame']:,} bytes/frame, {r['fleet']} node(s) x {r['frames_per_node']} "
        f"frames, {r['heads']} head(s), rate {r['rate_hz'] or 'unpaced'}): sent {r['sent']}, "
        f"predictions back {r['predictions_received']}, lost {r['lost']}, cloud sequence gaps "
        f"{r['cloud_sequence_gaps']}",
        f"  cloud {r['cloud_frames_per_second']} frames/s ({r['megabytes_per_second']} MB/s), "
        f"edge {r['edge_frames_per_second']} frames/s; capture -> prediction published p50 "
        f"{lat.get('p50')} ms, p99 {lat.get('p99')} ms; round trip to the edge p50 "
        f"{trip.get('p50')} ms",
        f"  CPU seconds while streaming: edge {cpu['edge']}, head(s) {cpu['heads']}, broker "
        f"{cpu['broker'] if cpu['broker'] is not None else 'n/a (in this process)'}; "
        f"{r['cores']} cores"]
    if r["heads"] > 1:
        lines.append("  per head: " + ", ".join(f"{h['accepted']} frames at "
                                                f"{h['frames_per_second']}/s" for h in r["per_head"]))
    return "\n".join(lines)
