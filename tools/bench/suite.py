"""`splitleak bench all`: every benchmark, one after another, in one JSON.

In order: the demo from nothing (wall time of `splitleak demo` in a fresh folder: target,
decoder, stream; the venv install is not in it), TFLite per split depth, the pipeline through
Mosquitto and amqtt with 1 and 10 nodes, the pipeline at each split depth, several cloud heads
and large fleets (scaling), the attacker's reconstruction, DP-SGD against non-private training,
fuzzing both brokers' subscribers, the soak and the faults. Each part calls the same code as
its own `splitleak bench` command, so the numbers mean what they mean there. Runs missing for a
split depth are trained first (not timed). `summary` holds the headline figures; `markdown`
turns it into the table in docs/reliability.md; tools/bench/docs.py puts the report's other
figures into the docs.
"""

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from splitleak.cloud import rundir
from splitleak.cloud.config import SPLITS, TrainConfig
from splitleak.tools.bench import attack, dp, faults, flood, fuzz, pipeline, soak, tflite

PARTS = ("demo", "tflite", "pipeline", "depth", "scaling", "attack", "dp", "fuzz", "soak",
         "flood", "faults")
PACKAGES = ("tensorflow", "ai-edge-litert", "tflite-runtime", "numpy", "paho-mqtt", "amqtt",
            "tensorflow-privacy", "dp-accounting")
ENGINES = ("mosquitto", "amqtt")  # the pipeline part's brokers, in the report's order
# (full, --quick) sizes; full: each bench's own default where it has one
PIPELINE_FRAMES = {1: (3000, 200), 10: (600, 30)}  # frames per node, by fleet size
SIZES = {"tflite_runs": (tflite.RUNS, 30), "attack_frames": (attack.FRAMES, 200),
         "dp_epochs": (dp.EPOCHS, 2), "dp_limit": (None, 128), "depth_frames": (3000, 100),
         "fuzz_messages": (fuzz.MESSAGES, 300), "soak_seconds": (soak.SECONDS, 8.0),
         "flood_nodes": (flood.NODES, 5000), "flood_max_nodes": (None, 500)}
# the faults part runs at its defaults even with --quick: the broker must save (every 30 s)
# before each of its kills

# the scaling part: pipeline.run's options per run (Mosquitto and unpaced unless given), full
# and --quick: several nodes and cloud heads, a large fleet, one node paced on each broker
SCALING = (({"frames": 3000}, {"frames": 3000, "heads": 2}, {"fleet": 10, "frames": 600},
            {"fleet": 10, "frames": 600, "heads": 2}, {"fleet": 10, "frames": 600, "heads": 4},
            {"fleet": 200, "frames": 20}, {"frames": 3000, "rate": 1000.0},
            {"frames": 3000, "rate": 500.0, "engine": "amqtt"}),
           ({"frames": 100}, {"frames": 100, "heads": 2}, {"fleet": 50, "frames": 4},
            {"frames": 100, "rate": 200.0, "engine": "amqtt"}))


def machine() -> dict:
    """CPU model, cores, memory, OS and Python of this machine."""
    info = {"platform": platform.platform(), "machine": platform.machine(),
            "python": platform.python_version(), "cores": os.cpu_count()}
    for path, key, field in (("/proc/cpuinfo", "cpu", "model name"),
                             ("/proc/meminfo", "memory", "MemTotal")):
        try:
            line = next(line for line in Path(path).read_text().splitlines()
                        if line.startswith(field))
            info[key] = line.split(":", 1)[1].strip()
        except (OSError, StopIteration):
            info[key] = None
    if info["memory"] and info["memory"].endswith(" kB"):
        info["memory"] = f"{int(info['memory'].split()[0]) / 2**20:.1f} GiB"
    return info


def packages() -> dict:
    """The benchmarked packages' versions (missing ones left out), and Mosquitto's."""
    from splitleak.cloud.artifacts import versions

    found = versions(PACKAGES)
    try:
        out = subprocess.run(["mosquitto", "-h"], capture_output=True, text=True, timeout=10)
        found["mosquitto"] = (out.stdout or out.stderr).splitlines()[0].split()[-1]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        found["mosquitto"] = None
    return found


def _demo(folder: Path) -> dict:
    """`splitleak demo` from nothing in `folder`, as a child process; its wall time."""
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "splitleak.tools.cli", "demo", "--run",
                           folder / rundir.default_run_dir().name, "--attack-dir",
                           _demo_decoder(folder), "--out", folder / "demo", "--web", "127.0.0.1:0"],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise OSError(f"the demo failed: {(done.stderr or done.stdout).strip()[-500:]}")
    from splitleak.tools.deploy import report  # not at the top: it loads TensorFlow

    shown = json.loads((folder / "demo" / report.SUMMARY).read_text())
    rec, blank = shown["reconstruction"], shown["baselines"]["blank_page"]
    return {"seconds": round(time.monotonic() - start, 1), "command": "splitleak demo",
            "last_line": done.stdout.strip().splitlines()[-1],
            "val_accuracy": rundir.read_metrics(folder / rundir.default_run_dir().name)[
                "val_accuracy"],
            **{k: shown[k] for k in ("frames", "predictions_received", "mqtt_accuracy",
                                     "offline_accuracy", "reconstructed")},
            "mse": rec["mse"], "blank_page_mse": blank["mse"]}


def _demo_decoder(folder: Path) -> Path:
    """The decoder the demo trains in `folder`."""
    return Path(folder) / rundir.default_attack_dir().name


def _tflite_runs(run_dir: Path | None, splits) -> dict:
    """Split depth -> run directory, training the missing ones (not timed)."""
    from splitleak.cloud.data import load_protocol
    from splitleak.cloud.train import ensure_run

    if run_dir:
        return {rundir.pick_run(run_dir, None)[1]: run_dir}
    runs = dict(sorted((k, rundir.pick_run(None, k)[0]) for k in splits))
    proto = None
    for k, run_k in runs.items():
        if not rundir.finished(run_k):
            proto = proto or load_protocol(rundir.DEFAULT_PROTOCOL)
            ensure_run(run_k, TrainConfig.epochs, proto, k)
    return runs


def _parity(run_dir: Path) -> dict | None:
    """The run's own TFLite parity (its metrics), measured when it was exported."""
    metrics = Path(run_dir) / rundir.METRICS
    return rundir.read_metrics(run_dir).get("parity") if metrics.is_file() else None


def run(*, splits=SPLITS, run_dir: Path | None = None, decoder: Path = attack.DECODER,
        skip=(), quick: bool = False, json_file: Path | None = None) -> dict:
    """Every part not in `skip` (PARTS), at full or --quick sizes, with `summary`; written to
    `json_file` too when given. `run_dir`: one run for every part instead of runs/lite(-kK)
    for each of `splits`; `decoder`: the attack part's (the demo's when it has none)."""
    from splitleak.tools.experiments.provenance import BENCH, commit, path_stamp

    report = {"bench": "all", "date": date.today().isoformat(), "quick": quick,
              "command": "splitleak bench all" + (" --quick" if quick else ""),
              "machine": machine(), "packages": packages(), "skipped": list(skip),
              "provenance": commit() | path_stamp(BENCH)}
    with tempfile.TemporaryDirectory(prefix="splitleak-bench-all-") as folder:
        if "demo" not in skip:
            print("demo from nothing (about 4 minutes) ...", file=sys.stderr)
            report["demo"] = _demo(Path(folder))
            if not rundir.finished(decoder):  # the demo's, for the attack part
                decoder = _demo_decoder(Path(folder))
        _parts(report, splits, run_dir, decoder, skip, int(quick))
    report["summary"] = summary(report)
    if json_file:
        Path(json_file).write_text(json.dumps(report, indent=2) + "\n")
    return report


def _parts(report: dict, splits, run_dir: Path | None, decoder: Path, skip, q: int) -> None:
    """Every part but the demo, into `report`; q: 0 full sizes, 1 --quick."""
    if "tflite" not in skip:
        report["tflite"] = {k: tflite.run(run_k, runs=SIZES["tflite_runs"][q])
                            | {"parity": _parity(run_k)}
                            for k, run_k in _tflite_runs(run_dir, splits).items()}
    if "pipeline" not in skip:
        report["pipeline"] = [pipeline.run(run_dir, engine=engine, fleet=fleet,
                                           frames=PIPELINE_FRAMES[fleet][q])
                              for engine in ENGINES for fleet in PIPELINE_FRAMES]
    if "depth" not in skip:
        report["depth"] = [pipeline.run(run_k, engine="mosquitto",
                                        frames=SIZES["depth_frames"][q])
                           for run_k in _tflite_runs(run_dir, splits).values()]
    if "scaling" not in skip:
        report["scaling"] = [pipeline.run(run_dir, **({"engine": "mosquitto"} | options))
                             for options in SCALING[q]]
    if "attack" not in skip:
        report["attack"] = attack.run(decoder, frames=SIZES["attack_frames"][q])
    if "dp" not in skip:
        report["dp"] = dp.run(epochs=SIZES["dp_epochs"][q], limit=SIZES["dp_limit"][q])
    if "fuzz" not in skip:
        report["fuzz"] = [fuzz.run(run_dir, engine=engine, n=SIZES["fuzz_messages"][q])
                          for engine in ENGINES]
    if "soak" not in skip:
        report["soak"] = soak.run(run_dir, seconds=SIZES["soak_seconds"][q])
    if "flood" not in skip:
        report["flood"] = flood.run(run_dir, nodes=SIZES["flood_nodes"][q],
                                    max_nodes=SIZES["flood_max_nodes"][q], progress=False)
    if "faults" not in skip:
        report["faults"] = faults.run(run_dir)


def summary(r: dict) -> dict:
    """The headline figures (medians where the part repeats)."""
    s = {}
    if "demo" in r:
        s["demo_seconds"] = r["demo"]["seconds"]
    for k, t in r.get("tflite", {}).items():
        best = t["best_ms"]
        s[f"tflite_k{k}"] = {"runtime": t["runtime"],
                             "keras_ms": round(t["results"]["keras"]["median_ms"], 3),
                             "float32_ms": round(best[tflite.FLOAT32], 3),
                             "int8_ms": round(best[tflite.INT8], 3),
                             "int8_over_float32": t["int8_over_float32"],
                             "int8_builtin_over_float32": t["int8_builtin_over_float32"]}
        if t.get("parity"):
            s[f"tflite_k{k}"] |= {key: round(t["parity"][key], 4) for key in (
                "int8_relative_error", "int8_top1_agreement")}
    for p in r.get("pipeline", []):
        s[f"pipeline_{p['engine']}_{p['fleet']}"] = {
            "frames_per_second": p["cloud_frames_per_second"], "lost": p["lost"],
            "gaps": p["cloud_sequence_gaps"], "p50_ms": (p["latency_ms"] or {}).get("p50"),
            "p99_ms": (p["latency_ms"] or {}).get("p99"), "frames": p["sent"]}
    if "attack" in r:
        s["attack"] = {"decoder_frames_per_second": r["attack"]["decoder_frames_per_second"],
                       "live_frames_per_second": r["attack"]["live"]["frames_per_second"]}
    if "dp" in r:
        s["dp_over_non_private"] = r["dp"]["ratio"]
    for f in r.get("fuzz", []):
        s[f"fuzz_{f['engine']}"] = {"messages": f["messages"], "passed": f["passed"]}
    if "soak" in r:
        s["soak"] = {"sent": r["soak"]["sent"], "lost": r["soak"]["lost"],
                     "memory_change_max": max(abs(m["change"])
                                              for m in r["soak"]["memory"].values()),
                     "passed": r["soak"]["passed"]}
    if "flood" in r:
        f = r["flood"]
        s["flood"] = {"nodes": f["nodes"], "max_nodes": f["max_nodes"],
                      "memory_change_max": max(m["change"] for m in f["memory"].values()),
                      "real_answered": f["real_answered"], "real_sent": f["real_sent"],
                      "passed": f["passed"]}
    if "faults" in r:
        s["faults"] = {"lost_by_design": r["faults"]["lost_by_design"],
                       "unexplained": r["faults"]["unexplained"],
                       "passed": r["faults"]["passed"]}
    return s


def markdown(r: dict) -> str:
    """The summary as a Markdown table (docs/reliability.md's, generated)."""
    s, rows = r["summary"], []
    for key, v in s.items():
        if key.startswith("tflite_k"):
            rows.append((f"ms per image, split after block {key[-1]} ({v['runtime']}, best of "
                         "1/2 threads)", f"Keras {v['keras_ms']}, float32 {v['float32_ms']}, "
                         f"int8 {v['int8_ms']}; int8 / float32 {v['int8_over_float32']} "
                         f"(int8 on built-in kernels: {v['int8_builtin_over_float32']})"
                         + (f"; int8 relative error {v['int8_relative_error']}, top-1 "
                            f"agreement {v['int8_top1_agreement']}"
                            if "int8_relative_error" in v else "")))
        elif key.startswith("pipeline_"):
            _, engine, fleet = key.split("_")
            rows.append((f"pipeline, {engine}, {fleet} node(s), unpaced",
                         f"{v['frames_per_second']:,} frames/s, {v['frames']:,} frames, "
                         f"{v['lost']} lost, {v['gaps']} gaps, p50 {v['p50_ms']} ms, "
                         f"p99 {v['p99_ms']} ms"))
    if "attack" in s:
        rows.append(("attacker: frames reconstructed per second",
                     f"decoder alone {s['attack']['decoder_frames_per_second']:,}, live behind "
                     f"Mosquitto {s['attack']['live_frames_per_second']:,}"))
    if "dp_over_non_private" in s:
        rows.append(("DP-SGD / non-private seconds per epoch", f"{s['dp_over_non_private']}"))
    for key, v in s.items():
        if key.startswith("fuzz_"):
            rows.append((f"fuzz, {key[5:]}: malformed messages to the running subscribers",
                         f"{v['messages']:,} messages, " + ("passed" if v["passed"] else "FAILED")))
    if "soak" in s:
        v = s["soak"]
        rows.append(("soak: a fleet at a fixed rate", f"{v['sent']:,} frames, {v['lost']} lost, "
                     f"memory within {v['memory_change_max']:.1%}, "
                     + ("passed" if v["passed"] else "FAILED")))
    if "flood" in s:
        v = s["flood"]
        rows.append(("flood: fake node ids, one frame each", f"{v['nodes']:,} ids, each subscriber "
                     f"keeping {v['max_nodes']:,} nodes: memory grew at most "
                     f"{v['memory_change_max']:.1%}; a real node after it: {v['real_answered']} "
                     f"of {v['real_sent']} frames answered, "
                     + ("passed" if v["passed"] else "FAILED")))
    if "faults" in s:
        v = s["faults"]
        rows.append(("faults: broker, head and node killed mid-stream",
                     f"{v['lost_by_design']} lost by design, {v['unexplained']} unexplained, "
                     + ("passed" if v["passed"] else "FAILED")))
    if "demo_seconds" in s:
        rows.append(("`splitleak demo` from nothing (no venv install)", f"{s['demo_seconds']} s"))
    m = r["machine"]
    head = (f"`{r['command']}` on {r['date']}: {m['cpu']}, {m['cores']} cores, "
            f"{m['memory']}, Python {m['python']}\n\n| what | measured |\n|---|---|\n")
    return head + "\n".join(f"| {a} | {b} |" for a, b in rows) + "\n"


def describe(r: dict) -> str:
    return markdown(r)
