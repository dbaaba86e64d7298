"""Benchmarks (JSON with --json).

`tflite`: ms per image for Keras, TFLite float32 and int8.
`pipeline`: a broker, the cloud head and edge node(s) on this machine; frames per second,
lost frames and latency from capture on the edge to the prediction published by the cloud.
`attack`: frames per second a trained decoder reconstructs, alone and as the live eavesdropper
behind a fresh broker (goal: 1,000 frames/s on a 2-core CPU).
`dp`: seconds per epoch of DP-SGD training against non-private training of the same network
(ours on Poisson batches; ours and tensorflow-privacy's on shuffled batches).
"""

import json
import os
import platform
import subprocess
import tempfile
from pathlib import Path

from splitleak.broker.profiles import ENGINES
from splitleak.tools import bench_all
from splitleak.tools.cmd_data import add_data_options
from splitleak.tools.cmd_train import add_run_options, pick_run


def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="bench", required=True, metavar="BENCH")
    p = _bench(sub, "tflite", bench_tflite, _print_tflite,
               "ms per image of the mobile stage: Keras vs TFLite",
               "Median ms per single image after warm-up, batch size 1; the TFLite stages on "
               "each --threads count, with the runtime named, and the int8 stage once more on "
               "TFLite's built-in kernels instead of XNNPACK (the edge runs XNNPACK); "
               "int8_over_float32 compares their best thread counts.")
    p.add_argument("run_dir", metavar="RUN_DIR", type=Path)
    p.add_argument("--runs", type=int, default=300, help="timed runs per engine")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2], metavar="N",
                   help="TFLite interpreter threads to time (default: 1 2)")
    p = _bench(sub, "pipeline", bench_pipeline, _print_pipeline,
               "broker + cloud head + edge nodes: frames/s, loss, latency",
               "Streams the lite validation images (cycled) from --fleet edge nodes through a fresh "
               "broker to the cloud head. Lost = frames sent minus predictions back at the edge; "
               "latency = capture on the edge -> prediction published (cloud head).")
    add_run_options(p, "a `splitleak train` run")
    _stream_options(p, "frames per node")
    p.add_argument("--fleet", type=int, default=1, metavar="K", help="edge nodes (default: 1)")
    p.add_argument("--heads", type=int, default=1, metavar="N",
                   help="cloud heads; more than 1 share the stream (MQTT 5 shared subscription)")
    p.add_argument("--rate", type=float, default=0.0, metavar="HZ",
                   help="frames per second per node (default: unpaced)")
    p.add_argument("--batch", type=int, default=64, help="cloud head batch size, at most")
    add_data_options(p)
    p = _bench(sub, "attack", bench_attack, _print_attack,
               "decoder and live eavesdropper: frames/s reconstructed",
               "Decoder alone: best of 3 passes over 2,048 frames in batches of 256. Live: --frames "
               "frames published through a fresh broker while the eavesdropper reconstructs them, "
               "timed from the first publish to the last reconstruction.")
    p.add_argument("--decoder", type=Path, default=Path("runs/attack-lite"), metavar="ATTACK_DIR",
                   help="a `splitleak attack train` folder (default: runs/attack-lite)")
    _stream_options(p, "frames to stream")
    p = _bench(sub, "fuzz", bench_fuzz, _print_fuzz,
               "generated malformed messages at a running cloud head and eavesdropper",
               "Publishes --messages generated messages (valid frames with odd values, damaged "
               "and cut frames, random bytes, junk statuses, bad topics; seeded) through a fresh "
               "broker, then a probe frame. Both subscribers must stay up, answer the probe and "
               "count every message under the reason the wire decoder gives; exit 1 otherwise.")
    _deployment_options(p)
    p.add_argument("--messages", type=int, default=10_000, help="how many (default: 10000)")
    p.add_argument("--seed", type=int, default=0, help="generator seed (default: 0)")
    p = _bench(sub, "soak", bench_soak, _print_soak,
               "an emulated fleet at a fixed rate for a while: loss and memory growth",
               "Streams --nodes emulated nodes at --rate frames/s each for --seconds through a "
               "fresh broker, with the cloud head and the eavesdropper attached. Passes (exit 0) "
               "when nothing is lost (every frame answered, counted by the eavesdropper, no "
               "sequence gap) and every process's resident memory stays within 10 % from the "
               "end of the warm-up to the end.")
    _deployment_options(p)
    p.add_argument("--nodes", type=int, default=10, help="emulated nodes (default: 10)")
    p.add_argument("--rate", type=float, default=100.0, help="frames/s per node (default: 100)")
    p.add_argument("--seconds", type=float, default=60.0, help="how long (default: 60)")
    add_data_options(p)
    p = _bench(sub, "faults", bench_faults, _print_faults,
               "crashes mid-stream: broker twice, cloud head, an edge node; what is lost, and why",
               "Mosquitto only (amqtt keeps nothing across a restart). Two nodes stream at QoS 1 "
               "with the cloud head attached; a third node is killed (its retained status must "
               "turn offline: the last will); the broker is killed (SIGKILL) after a save and "
               "restarted, twice; the cloud head is killed and restarted with its session. Each "
               "missing frame is lost by design (acknowledged after the broker's last save "
               "before a kill) or unexplained; exit 1 if any is unexplained, a process did not "
               "recover or the status is wrong.")
    _deployment_options(p)
    p.add_argument("--frames", type=int, default=12_000, help="frames per node (default: 12000)")
    p.add_argument("--rate", type=float, default=100.0, metavar="HZ",
                   help="frames/s per node (default: 100)")
    add_data_options(p)
    p = _bench(sub, "dp", bench_dp, _print_dp,
               "DP-SGD against non-private training: seconds per epoch",
               "Trains the lite target four times in one process, the same network (GroupNorm, "
               "no dropout, no augmentation) and batch size: non-private (shuffled batches), "
               "DP-SGD (Poisson batches, noise 1.0), and on shuffled batches DP-SGD by ours and "
               "by tensorflow-privacy's DPModel. Seconds per epoch = median over the epochs "
               "after the first (which traces the graphs). Bar: ratio <= 2; goal <= 1.2.")
    p.add_argument("--epochs", type=int, default=3, help="epochs of each (default: 3)")
    p.add_argument("--limit", type=int, help="train on the first N images (default: all)")
    p.add_argument("--batch", type=int, default=32)
    add_data_options(p)
    bench_all.add_parser(sub)


def _bench(sub, name: str, bench, show, help: str, description: str):
    """A benchmark's sub-parser: `bench(args)` returns the report, `show(report)` prints it."""
    p = sub.add_parser(name, help=help, description=description)
    p.set_defaults(_bench=bench, _show=show)
    p.add_argument("--json", action="store_true", help="print JSON only")
    return p


def _deployment_options(p) -> None:
    """--run / --split-after and --engine: a run deployed behind a fresh broker."""
    add_run_options(p, "a `splitleak train` run")
    p.add_argument("--engine", choices=ENGINES, default="mosquitto",
                   help="broker (default: mosquitto)")


def _finished_run(args) -> int:
    """Set args.run from --run / --split-after to a run that has a head and a mobile stage;
    its split depth."""
    args.run, split_after = pick_run(args.run, args.split_after)
    if not (args.run / "head.keras").is_file() or not (args.run / "mobile.tflite").is_file():
        raise FileNotFoundError(f"{args.run} is not a finished run (no head.keras or "
                                "mobile.tflite): run `splitleak train` or pass --run RUN_DIR")
    return split_after


def _stream_options(p, frames: str) -> None:
    p.add_argument("--engine", choices=ENGINES, default="mosquitto",
                   help="broker (default: mosquitto)")
    p.add_argument("--frames", type=int, default=5000, help=f"{frames} (default: 5000)")


def bench_attack(args) -> dict:
    import numpy as np

    from splitleak.attack.evaluate import throughput
    from splitleak.attack.store import load_decoder
    from splitleak.tools.bench import live_attack

    if args.frames < 1:
        raise ValueError("--frames must be a positive integer")
    decoder, _ = load_decoder(args.decoder)
    acts = np.random.default_rng(0).random((256, *decoder.input_shape[1:]), np.float32)
    with tempfile.TemporaryDirectory(prefix="splitleak-bench-") as folder:
        live = live_attack(decoder, args.engine, args.frames, Path(folder) / "broker")
    return {"bench": "attack", "decoder": str(args.decoder), "machine": platform.machine(),
            "goal_frames_per_second": 1000,
            "decoder_frames_per_second": round(throughput(decoder, acts), 1), "live": live}


def _print_attack(r: dict) -> None:
    live = r["live"]
    print(f"decoder alone: {r['decoder_frames_per_second']:,.0f} frames/s")
    print(f"live ({live['engine']}): {live['reconstructed']} of {live['frames']} frames "
          f"reconstructed at {live['frames_per_second']:,.0f} frames/s; goal "
          f"{r['goal_frames_per_second']:,}")


def bench_dp(args) -> dict:
    if args.epochs < 2 or args.batch < 1 or (args.limit is not None and args.limit < 1):
        raise ValueError("--epochs must be at least 2 (the first traces), --batch and --limit "
                         "positive")
    from dataclasses import replace

    from splitleak.cloud.config import TrainConfig
    from splitleak.cloud.data import load_protocol
    from splitleak.tools.bench import fit_seconds

    proto = load_protocol("lite", args.omniglot_dir)
    plain = TrainConfig(epochs=args.epochs, batch=args.batch, norm="group", dropout=0.0,
                        augment=False, patience=0, limit=args.limit)
    private = replace(plain, dp=True, noise_multiplier=1.0)
    shuffled = replace(private, sampling="shuffle")  # the batches tensorflow-privacy's route needs
    seconds = {name: fit_seconds(proto, cfg) for name, cfg in (
        ("non_private", plain), ("dp_sgd", private), ("dp_sgd_shuffle", shuffled),
        ("tf_privacy_shuffle", replace(shuffled, dp_engine="tf-privacy")))}
    ratios = {k: round(v["median"] / seconds["non_private"]["median"], 2)
              for k, v in seconds.items() if k != "non_private"}
    return {"bench": "dp", "machine": platform.machine(), "epochs": args.epochs,
            "batch": args.batch, "images": seconds["dp_sgd"]["images"],
            "seconds_per_epoch": seconds, "ratios": ratios, "ratio": ratios["dp_sgd"],
            "bar": 2.0, "goal": 1.2}


def _print_dp(r: dict) -> None:
    s = r["seconds_per_epoch"]
    print(f"{r['images']:,} images, batch {r['batch']}, {r['epochs']} epochs each: non-private "
          f"{s['non_private']['median']:.2f} s/epoch, DP-SGD {s['dp_sgd']['median']:.2f} s/epoch; "
          f"ratio {r['ratio']:.2f} (bar {r['bar']}, goal {r['goal']})")
    print(f"on shuffled batches: ours {r['ratios']['dp_sgd_shuffle']:.2f}, tensorflow-privacy's "
          f"DPModel {r['ratios']['tf_privacy_shuffle']:.2f}")


def bench_tflite(args) -> dict:
    if args.runs < 1 or min(args.threads) < 1:
        raise ValueError("--runs and --threads must be positive integers")
    if not (args.run_dir / "mobile.tflite").is_file():
        raise FileNotFoundError(f"{args.run_dir} has no mobile.tflite; run `splitleak train` first")
    import numpy as np
    import tensorflow as tf

    from splitleak.edge.runtime import MobileStage
    from splitleak.edge.selfcheck import runtime_name
    from splitleak.tools.bench import median_ms

    mobile = tf.keras.models.load_model(args.run_dir / "mobile.keras")
    image = np.random.default_rng(0).random((1, *mobile.input_shape[1:]), dtype=np.float32)
    engines = {"keras": lambda: mobile(image, training=False)}
    for name in ("mobile.tflite", "mobile_int8.tflite", "int8 built-in kernels"):
        for threads in args.threads:
            stage = MobileStage(args.run_dir / name, threads=threads) if name.endswith(
                ".tflite") else MobileStage(args.run_dir / "mobile_int8.tflite", threads, False)
            engines[f"{name} x{threads}"] = lambda s=stage: s.run_raw(image[0])
    results = {name: median_ms(fn, runs=args.runs) for name, fn in engines.items()}
    best = {name: min(r["median_ms"] for key, r in results.items() if key.startswith(name + " "))
            for name in ("mobile.tflite", "mobile_int8.tflite", "int8 built-in kernels")}
    return {"bench": "tflite", "run_dir": str(args.run_dir), "machine": platform.machine(),
            "runtime": runtime_name(), "threads": list(args.threads), "batch": 1,
            "results": results, "best_ms": best,
            "int8_over_float32": round(best["mobile_int8.tflite"] / best["mobile.tflite"], 3),
            "int8_builtin_over_float32": round(best["int8 built-in kernels"]
                                               / best["mobile.tflite"], 3)}


def bench_pipeline(args) -> dict:
    """Run the deployment once; the edge's and the cloud's summaries and the key numbers."""
    from splitleak.tools.demo import Deployment, frame_bytes

    if args.frames < 1 or args.fleet < 1 or args.batch < 1 or args.rate < 0 or args.heads < 1:
        raise ValueError("--frames, --fleet, --heads and --batch must be positive, --rate zero "
                         "or positive")
    split_after = _finished_run(args)
    data = ["--omniglot-dir", args.omniglot_dir] if args.omniglot_dir else []
    size = frame_bytes(args.run, "edge-0" if args.fleet > 1 else "edge")
    with Deployment(args.run, args.engine) as dep:
        share = ("--share", "bench") if args.heads > 1 else ()
        clouds = [dep.start_cloud("--json", "--batch", args.batch, *share, "--client-id",
                                  f"bench-head-{i}") for i in range(args.heads)]
        edge = dep.start_edge("--source", "lite-val", "--count", args.frames, "--fleet",
                              args.fleet, "--rate", args.rate, "--json", *data)
        limit = max(600.0, args.frames * args.fleet / 50)
        try:
            code = edge.wait(limit)
        except subprocess.TimeoutExpired:
            raise TimeoutError(f"the edge node did not finish within {limit:g} s") from None
        if code != 0:
            raise OSError(f"the edge node failed: {edge.tail(1).strip()}")
        broker_cpu = getattr(dep.broker, "cpu_seconds", lambda: None)()
        for cloud in clouds:
            cloud.stop()
        edge_summary, heads = edge.json(), [cloud.json() for cloud in clouds]
    cloud_summary = heads[0] if len(heads) == 1 else _merge_heads(heads)
    fps = cloud_summary["frames_per_second"]
    return {"bench": "pipeline", "engine": args.engine, "machine": platform.machine(),
            "run": str(args.run), "split_after": split_after, "bytes_per_frame": size,
            "megabytes_per_second": round(fps * size / 1e6, 2) if fps else None,
            "frames_per_node": args.frames, "fleet": args.fleet, "heads": args.heads,
            "rate_hz": args.rate,
            "batch": args.batch, "sent": edge_summary["sent"],
            "predictions_received": edge_summary["predictions"],
            "lost": edge_summary["sent"] - edge_summary["predictions"],
            "cloud_sequence_gaps": cloud_summary["gaps"],
            "cloud_frames_per_second": cloud_summary["frames_per_second"],
            "edge_frames_per_second": edge_summary["frames_per_second"],
            "latency_ms": cloud_summary["latency_ms"],
            "round_trip_ms": edge_summary["round_trip_ms"],
            "per_head": [{"accepted": h["accepted"], "frames_per_second": h["frames_per_second"],
                          "latency_ms": h["latency_ms"]} for h in heads],
            "cpu_seconds": {"edge": edge_summary["cpu_seconds"],
                            "heads": [h["cpu_seconds"] for h in heads],
                            "broker": None if broker_cpu is None else round(broker_cpu, 2)},
            "cores": os.cpu_count(),
            "edge": edge_summary, "cloud": cloud_summary}


def _merge_heads(heads: list[dict]) -> dict:
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


def _print_pipeline(r: dict) -> None:
    lat, trip = r["latency_ms"] or {}, r["round_trip_ms"] or {}
    print(f"pipeline ({r['engine']}, split after block {r['split_after']}, {r['bytes_per_frame']:,} "
          f"bytes/frame, {r['fleet']} node(s) x {r['frames_per_node']} frames, {r['heads']} "
          "head(s), "
          f"rate {r['rate_hz'] or 'unpaced'}): sent {r['sent']}, predictions back "
          f"{r['predictions_received']}, lost {r['lost']}, cloud sequence gaps "
          f"{r['cloud_sequence_gaps']}")
    print(f"  cloud {r['cloud_frames_per_second']} frames/s ({r['megabytes_per_second']} MB/s), "
          f"edge {r['edge_frames_per_second']} "
          f"frames/s; capture -> prediction published p50 {lat.get('p50')} ms, p99 "
          f"{lat.get('p99')} ms; round trip to the edge p50 {trip.get('p50')} ms")
    cpu = r["cpu_seconds"]
    print(f"  CPU seconds while streaming: edge {cpu['edge']}, head(s) {cpu['heads']}, broker "
          f"{cpu['broker'] if cpu['broker'] is not None else 'n/a (in this process)'}; "
          f"{r['cores']} cores")
    if r["heads"] > 1:
        print("  per head: " + ", ".join(f"{h['accepted']} frames at {h['frames_per_second']}/s"
                                         for h in r["per_head"]))


def bench_fuzz(args) -> dict:
    from splitleak.tools import fuzz

    if args.messages < 1:
        raise ValueError(f"--messages must be positive, got {args.messages}")
    _finished_run(args)
    report = fuzz.run(args.run, args.engine, args.messages, args.seed)
    report["passed"] = (report["probe_answered"] and set(report["exit_codes"].values()) == {0}
                        and report["cloud"]["match"] and report["eavesdropper"]["match"])
    return report


def _print_fuzz(r: dict) -> None:
    print(f"fuzz ({r['engine']}, {r['messages']:,} messages, seed {r['seed']}): probe answered "
          f"{r['probe_answered']}, exit codes {r['exit_codes']}")
    for who in ("cloud", "eavesdropper"):
        c = r[who]
        print(f"  {who}: {c['frames']} frames (expected {c['expected_frames']}), rejected "
              f"{c['rejected']} (expected {c['expected_rejected']})"
              + (f", duplicates {c['duplicates']} (expected {c['expected_duplicates']})"
                 if "duplicates" in c else "") + f": {'match' if c['match'] else 'MISMATCH'}")
    print("passed" if r["passed"] else "FAILED")


def bench_soak(args) -> dict:
    from splitleak.tools import soak

    if args.nodes < 1 or args.rate <= 0 or args.seconds <= 0:
        raise ValueError("--nodes, --rate and --seconds must be positive")
    _finished_run(args)
    data = ["--omniglot-dir", args.omniglot_dir] if args.omniglot_dir else []
    return soak.run(args.run, args.engine, args.nodes, args.rate, args.seconds, data)


def _print_soak(r: dict) -> None:
    lat = r["latency_ms"] or {}
    print(f"soak ({r['engine']}, {r['nodes']} nodes x {r['rate_hz']:g} frames/s x "
          f"{r['seconds']:g} s): sent {r['sent']}, acknowledged {r['acknowledged']}, "
          f"predictions {r['predictions']}, lost {r['lost']}, cloud gaps {r['cloud_gaps']}, "
          f"eavesdropper {r['eavesdropper_frames']} frames; latency p50 {lat.get('p50')} ms, "
          f"p99 {lat.get('p99')} ms")
    for name, m in r["memory"].items():
        print(f"  {name}: {m['start_mib']} -> {m['end_mib']} MiB ({m['change']:+.1%})")
    print("passed" if r["passed"] else "FAILED")


def bench_faults(args) -> dict:
    from splitleak.tools import faults

    if args.frames < 1 or args.rate <= 0:
        raise ValueError("--frames and --rate must be positive")
    faults.check_engine(args.engine)
    _finished_run(args)
    return faults.run(args.run, args.engine, args.frames, args.rate, data_args=(
        "--omniglot-dir", args.omniglot_dir) if args.omniglot_dir else ())


def _print_faults(r: dict) -> None:
    print(f"faults ({r['engine']}, {len(r['nodes'])} nodes x {r['frames_per_node']} frames at "
          f"{r['rate_hz']:g} Hz, autosave every {r['autosave_s']} s):")
    for e in r["events"]:
        facts = ", ".join(f"{k} {v}" for k, v in e.items() if k not in ("event", "at_s",
                                                                         "answered_before"))
        print(f"  {e['at_s']:7.2f} s  {e['event']}: {facts}")
    for node, n in r["nodes"].items():
        print(f"  {node}: sent {n['sent']}, acknowledged {n['acknowledged']}, answered "
              f"{n['answered']}, missing {n['missing']}: lost by design {n['lost_by_design']} "
              f"(per broker kill {n['lost_per_crash']}), unexplained {n['unexplained']}")
    d, head = r["dropped"], r["restarted_head"]
    print(f"  {d['node']} (killed): {d['answered']} answered, {d['gaps']} gaps; status offline "
          f"after the kill / at the end / to the restarted head: {d['status_after_kill']} / "
          f"{d['status_at_end']} / {d['restarted_head_says']}")
    print(f"  restarted head: {head['accepted']} accepted, {head['gaps']} gaps, "
          f"{head['duplicates']} duplicates; exit codes {r['exit_codes']}")
    if r["lost_by_design"]:
        print(f"  {r['lost_by_design']} {r['explanation']}")
    print("passed" if r["passed"] else "FAILED: " + "; ".join(r["problems"]))


def _print_tflite(r: dict) -> None:
    print(f"runtime {r['runtime']} ({r['machine']})")
    for name, result in r["results"].items():
        print(f"{name:<22} {result['median_ms']:7.3f} ms/image (median of {result['runs']})")
    print(f"int8 / float32 (best thread counts): {r['int8_over_float32']} (XNNPACK, what the "
          f"edge runs), {r['int8_builtin_over_float32']} (int8 on TFLite's built-in kernels)")


def run(args) -> int:
    report = args._bench(args)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        args._show(report)
    return 0 if report.get("passed", True) else 1
