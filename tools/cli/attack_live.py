"""`splitleak attack live`: reconstruct the devices' inputs from the activation topic, live."""

import json

from splitleak.broker import topics
from splitleak.tools.cli.options import (
    BROKER_HELP,
    add_max_nodes_option,
    add_mqtt_option,
    broker_from,
    host_port,
    positive,
)


def add_arguments(parser) -> None:
    parser.add_argument("--decoder", metavar="ATTACK_DIR",
                        help="a decoder trained by `splitleak attack train` (without one: decode, "
                             "count and --record the frames only)")
    parser.add_argument("--broker", required=True, metavar="URL", help=BROKER_HELP)
    parser.add_argument("--topic", default=topics.ALL_ACTIVATIONS, help="MQTT topic filter")
    parser.add_argument("--ca", metavar="FILE", help="CA certificate for mqtts://")
    add_mqtt_option(parser)
    parser.add_argument("--web", metavar="HOST:PORT",
                        help="serve the live page here (e.g. 127.0.0.1:8088; port 0 picks one)")
    parser.add_argument("--save", metavar="DIR", help="write DIR/<node>/<seq>.png")
    parser.add_argument("--record", metavar="FILE",
                        help="append every raw message to a capture file ('<topic> <hex>')")
    parser.add_argument("--count", type=int, help="stop after this many reconstructions")
    parser.add_argument("--json", action="store_true", help="print the final counters as JSON")
    add_max_nodes_option(parser)


def run(args) -> int:
    from splitleak.attack.live import Eavesdropper
    from splitleak.attack.livepage import LivePage
    from splitleak.attack.store import load_decoder
    from splitleak.tools.cli import log_info, stop_on_signals

    log_info()
    positive(max_nodes=args.max_nodes)
    web = host_port(args.web) if args.web else None
    if args.decoder is None and (web or args.save):
        raise ValueError("--web and --save show reconstructions: they need --decoder ATTACK_DIR")
    decoder = load_decoder(args.decoder)[0] if args.decoder else None
    spy = Eavesdropper(decoder, broker_from(args), args.topic, ca_file=args.ca, protocol=args.mqtt,
                       save_dir=args.save, record=args.record, max_nodes=args.max_nodes)
    stop = stop_on_signals()
    if web:
        spy.page = LivePage(*web, args.topic, spy.stats, decoder.input_shape[1:])
        print(f"attacker: live page at {spy.page.url}", flush=True)
    try:
        spy.start()  # a refused subscription (SUBACK) ends here, in one line
        print(f"attacker: listening on {args.topic}", flush=True)
        spy.serve(stop, max_frames=args.count)
    finally:
        spy.stop()
        if spy.page:
            spy.page.stop()
    s = spy.stats()
    print(json.dumps(s) if args.json else
          f"attacker: {s['seen']} frames seen, {s['frames']} decoded, {s['reconstructed']} "
          "reconstructed, "
          f"{s['rejected_total']} rejected {s['rejected'] or ''}", flush=True)
    return 0
