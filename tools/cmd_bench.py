"""Benchmarks (JSON with --json). `tflite`: ms per image for Keras, TFLite float32 and int8."""

import json
import platform
from pathlib import Path


def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="bench", required=True, metavar="BENCH")
    p = sub.add_parser("tflite", help="ms per image of the mobile stage: Keras vs TFLite",
                       description="Median ms per single image after warm-up, batch size 1.")
    p.add_argument("run_dir", metavar="RUN_DIR", type=Path)
    p.add_argument("--runs", type=int, default=300, help="timed runs per engine")
    p.add_argument("--json", action="store_true", help="print JSON only")


def bench_tflite(args) -> dict:
    import numpy as np
    import tensorflow as tf

    from splitleak.edge.runtime import MobileStage
    from splitleak.tools.bench import median_ms

    mobile = tf.keras.models.load_model(args.run_dir / "mobile.keras")
    image = np.random.default_rng(0).random((1, 105, 105, 1), dtype=np.float32)
    engines = {"keras": lambda: mobile(image, training=False)}
    for name in ("mobile.tflite", "mobile_int8.tflite"):
        stage = MobileStage(args.run_dir / name)
        engines[name] = lambda s=stage: s.run_raw(image[0])
    results = {name: median_ms(fn, runs=args.runs) for name, fn in engines.items()}
    return {"bench": "tflite", "run_dir": str(args.run_dir), "machine": platform.machine(),
            "threads": 1, "batch": 1, "results": results}


def run(args) -> int:
    if args.runs < 1:
        raise ValueError("--runs must be a positive integer")
    if not (args.run_dir / "mobile.tflite").is_file():
        raise FileNotFoundError(f"{args.run_dir} has no mobile.tflite; run `splitleak train` first")
    report = bench_tflite(args)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for name, r in report["results"].items():
            print(f"{name:<20} {r['median_ms']:7.3f} ms/image (median of {r['runs']})")
    return 0
