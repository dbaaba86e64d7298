"""Run an edge node: the TFLite mobile stage on each image, activations published over MQTT.

Sources: `lite-val` (the lite target's validation images: what the device classifies),
`lite-test` (the attack-test images, Greek and Latin), `folder:DIR` (every PNG below DIR, sorted),
`zip:FILE` (every PNG in a zip). Images are 105x105 Omniglot-style: black ink on white paper.
Needs no TensorFlow.
"""

import json
import logging

from splitleak.tools.cmd_data import add_data_options

SOURCES = "lite-val | lite-test | folder:DIR | zip:FILE"


def add_arguments(parser) -> None:
    parser.add_argument("--model", required=True, metavar="PATH.tflite", help="the mobile stage")
    parser.add_argument("--broker", required=True, metavar="URL",
                        help="mqtt://[user:pass@]host:port or mqtts://…")
    parser.add_argument("--ca", metavar="FILE", help="CA certificate for mqtts:// (verified)")
    parser.add_argument("--node-id", default="edge", help="this node's id (topic level)")
    parser.add_argument("--source", default="lite-val", help=SOURCES)
    parser.add_argument("--rate", type=float, default=0.0, metavar="HZ",
                        help="frames per second per node (default: as fast as possible)")
    parser.add_argument("--count", type=int, help="frames per node (default: the source once)")
    parser.add_argument("--fleet", type=int, default=1, metavar="K",
                        help="emulate K nodes, ids <node-id>-0 … <node-id>-(K-1)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    add_data_options(parser)


def load_source(source: str, omniglot_dir=None):
    """Images (N, 105, 105, 1) float32, ink = 1, for a --source string."""
    from splitleak.edge import omniglot

    kind, _, arg = source.partition(":")
    if source in ("lite-val", "lite-test"):
        from splitleak.cloud.data import load_protocol

        proto = load_protocol("lite", omniglot_dir)
        return (proto.val if source == "lite-val" else proto.test).images
    if kind == "folder" and arg:
        return omniglot.read_folder(arg)[0]
    if kind == "zip" and arg:
        return omniglot.read_zip(arg).images
    raise ValueError(f"unknown --source {source!r}; expected {SOURCES}")


def run(args) -> int:
    from splitleak.edge.node import EdgeConfig, stream

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    cfg = EdgeConfig(model=args.model, broker=args.broker, node_id=args.node_id, rate=args.rate,
                     count=args.count, fleet=args.fleet, ca_file=args.ca, progress=not args.json)
    cfg.node_ids()  # check the settings before loading anything
    summary = stream(cfg, load_source(args.source, args.omniglot_dir))
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"edge: {summary['nodes']} node(s) sent {summary['sent']} frames, "
              f"{summary['acknowledged']} acknowledged, {summary['predictions_received']} "
              f"predictions back, {summary['frames_per_second']} frames/s")
    return 0 if summary["unacknowledged"] == 0 else 1
