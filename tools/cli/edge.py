"""Run an edge node: the TFLite mobile stage on each image, activations published over MQTT.

Sources: `lite-val` (the lite target's validation images: what the device classifies),
`lite-test` (the attack-test images, Greek and Latin), `folder:DIR` (every PNG below DIR, sorted),
`zip:FILE` (every PNG in a zip): 105x105 Omniglot-style, black ink on white paper. Live ones
(edge/camera.py): `camera` (the Pi camera, or OpenCV camera 0), `camera:N`, `video:FILE`: each
frame turned into the model's input as the training images look (edge/paper.py), frames without
ink skipped; they stream until the video ends, --count frames are sent, or Ctrl-C / SIGTERM.
Needs no TensorFlow.

The node exits 0 once every frame is acknowledged (then it waits up to --wait seconds for the
predictions), and 2 with one line saying why when the broker cannot be reached, refuses the
login, or refuses frames (reported with --mqtt 5; MQTT 3.1.1 brokers drop them silently).
With the tls profile each node must log in as its node id: pass the broker's credentials.json
with --credentials (for --fleet K start the broker with --node ID-0 … --node ID-(K-1)), or, for
one node, set SPLITLEAK_MQTT_USER to the node id and SPLITLEAK_MQTT_PASSWORD to its password
(docs/pi.md runs it so, as a systemd service).
"""

import json
from pathlib import Path

from splitleak.cloud.data import DEFAULT_SOURCE, SOURCES
from splitleak.edge.camera import LIVE_SOURCES
from splitleak.edge.node import EdgeConfig
from splitleak.tools.cli.options import (
    add_broker_options,
    add_data_options,
    add_defense_option,
    broker_from,
    credentials_from,
)


def add_arguments(parser) -> None:
    parser.add_argument("--model", required=True, metavar="PATH.tflite", help="the mobile stage")
    parser.add_argument("--check", action="store_true",
                        help="self-test this device instead of streaming: runtime and versions, "
                             "model sha256 and shapes, median and p95 ms per image for 1, 2 and "
                             "4 threads after a warm-up (no broker needed)")
    add_broker_options(parser, "each node's id (the tls profile requires it); not with --check",
                       required=False)
    parser.add_argument("--node-id", default=EdgeConfig.node_id, help="this node's id (topic level)")
    parser.add_argument("--source", default=DEFAULT_SOURCE, help=f"{SOURCES} | {LIVE_SOURCES}")
    parser.add_argument("--rate", type=float, default=EdgeConfig.rate, metavar="HZ",
                        help="frames per second per node (default: as fast as possible)")
    parser.add_argument("--count", type=int, help="frames per node (default: the source once; "
                                                  "a camera: until Ctrl-C)")
    parser.add_argument("--preview", metavar="DIR",
                        help="write each frame's model input to DIR/<seq>.png, as the model saw "
                             "it (black ink on white)")
    parser.add_argument("--fleet", type=int, default=EdgeConfig.fleet, metavar="K",
                        help="emulate K nodes, ids <node-id>-0 … <node-id>-(K-1), over one URL")
    parser.add_argument("--wait", type=float, default=EdgeConfig.prediction_timeout,
                        metavar="SECONDS", help="how long to wait for the last predictions "
                                                "(default: %(default)s)")
    add_defense_option(parser, seed=True)
    parser.add_argument("--ack-log", metavar="FILE",
                        help="at the end, write when the broker acknowledged each frame (CSV: "
                             "node,seq,acked_at in unix seconds)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    add_data_options(parser)


def run(args) -> int:
    from splitleak.cloud.data import load_source
    from splitleak.edge import defences
    from splitleak.edge.camera import is_live
    from splitleak.edge.node import stream
    from splitleak.edge.runtime import _interpreter_class
    from splitleak.tools.cli import log_info

    _interpreter_class()  # no runtime, or a known-bad one: one line now, not at the first frame
    if args.check:
        return _self_check(args)
    if not args.broker:
        raise ValueError("--broker URL is required to stream (or pass --check for a self-test)")
    log_info()
    if args.wait < 0:
        raise ValueError(f"--wait must be zero or positive, got {args.wait}")
    cfg = EdgeConfig(model=args.model, broker=broker_from(args), node_id=args.node_id, rate=args.rate,
                     count=args.count, fleet=args.fleet, ca_file=args.ca, protocol=args.mqtt,
                     credentials=credentials_from(args), prediction_timeout=args.wait,
                     progress=not args.json, defense=args.defense, seed=args.defense_seed,
                     ack_log=args.ack_log, preview=args.preview)
    defences.parse(args.defense)  # a bad spec is refused before anything loads
    if args.ack_log:
        Path(args.ack_log).write_text("")  # an unwritable path fails now, not after the stream
    for node in cfg.node_ids():  # check the settings before loading anything
        cfg.url_for(node)
    if is_live(args.source):
        summary = _stream_live(cfg, args.source)
    else:
        summary = stream(cfg, load_source(args.source, args.omniglot_dir))
    if args.json:
        print(json.dumps(summary), flush=True)
    else:
        skipped = (f" ({summary['skipped_no_ink']} of {summary['frames_seen']} frames "
                   "had no ink: skipped)") if "skipped_no_ink" in summary else ""
        print(f"edge: {summary['nodes']} node(s) sent {summary['sent']} frames{skipped}, "
              f"{summary['acknowledged']} acknowledged, {summary['refused']} refused, "
              f"{summary['predictions']} predictions back, {summary['frames_per_second']} "
              "frames/s", flush=True)
    _check(summary)
    return 0


def _stream_live(cfg: EdgeConfig, source: str) -> dict:
    """Stream a camera or a video until it ends, --count frames are sent, or a signal."""
    from splitleak.edge.camera import Inputs
    from splitleak.edge.node import stream
    from splitleak.edge.runtime import MobileStage
    from splitleak.tools.cli import stop_on_signals

    frames = Inputs(source, MobileStage(cfg.model).input_shape[0])
    try:
        return stream(cfg, frames, stop_on_signals()) | frames.counts()
    finally:
        frames.close()


def _self_check(args) -> int:
    """Print the device self-test; exit 1 if the runtime misbehaves."""
    from splitleak.edge.selfcheck import describe, self_check

    report = self_check(args.model)
    print(json.dumps(report, indent=2) if args.json else describe(report), flush=True)
    return 0 if report["ok"] else 1


def _check(summary: dict) -> None:
    """Raise the one-line error for refused or unacknowledged frames."""
    refusals = [f"{n} frames on {topic}: {why}" for topic, (n, why) in summary["refusals"].items()]
    if refusals:
        raise PermissionError("the broker refused " + "; ".join(refusals))
    if summary["unacknowledged"]:
        raise TimeoutError(f"{summary['unacknowledged']} of {summary['sent']} frames were not "
                           "acknowledged by the broker in time")
