"""Run the cloud head: classify every activation frame on the broker, publish predictions.

Runs until Ctrl-C / SIGTERM (or --count frames), then prints what it accepted, rejected
(by reason) and each node's sequence gaps.
"""

import json
import logging
import signal
import threading
import time


def add_arguments(parser) -> None:
    parser.add_argument("--run", required=True, metavar="RUN_DIR", help="a `splitleak train` run")
    parser.add_argument("--broker", required=True, metavar="URL",
                        help="mqtt://[user:pass@]host:port or mqtts://…")
    parser.add_argument("--ca", metavar="FILE", help="CA certificate for mqtts:// (verified)")
    parser.add_argument("--batch", type=int, default=64, help="frames per head call, at most")
    parser.add_argument("--count", type=int, help="stop after this many frames")
    parser.add_argument("--stats", action="store_true",
                        help="print throughput and latency every 5 s and at the end")
    parser.add_argument("--json", action="store_true", help="print the final summary as JSON")


def run(args) -> int:
    from splitleak.cloud.service import CloudHead

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.batch < 1:
        raise ValueError(f"--batch must be at least 1, got {args.batch}")
    head = CloudHead(args.run, args.broker, ca_file=args.ca, batch=args.batch)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    head.start()
    print(f"cloud: ready, subscribed to splitleak/+/activations on {args.broker}", flush=True)
    if args.stats:
        threading.Thread(target=_report, args=(head, stop), daemon=True).start()
    try:
        head.serve(stop, max_frames=args.count)
    finally:
        head.stop()
    summary = head.summary()
    print(json.dumps(summary) if args.json else _describe(summary), flush=True)
    return 0


def _report(head, stop: threading.Event, every: float = 5.0) -> None:
    while not stop.wait(every):
        print(_describe(head.summary()), flush=True)


def _describe(s: dict) -> str:
    lat = s["latency_ms"] or {}
    gaps = sum(n["gaps"] for n in s["nodes"].values())
    return (f"cloud: {s['accepted']} frames from {len(s['nodes'])} node(s), rejected "
            f"{sum(s['rejected'].values())} {s['rejected'] or ''}, sequence gaps {gaps}, "
            f"{s['frames_per_second']} frames/s, latency p50 {lat.get('p50')} ms "
            f"p99 {lat.get('p99')} ms  [{time.strftime('%H:%M:%S')}]")
