"""`splitleak attack sniff`: the passive eavesdropper. No broker account: it reads MQTT off a
network interface (on the lab network, eve's eth0) or a capture file, prints every user name
and password it sees in a CONNECT, and decodes (with --decoder, reconstructs) the frames the
devices publish. TLS leaves it nothing to read (attack/sniff.py)."""

import json
import threading

from splitleak.broker.urls import DEFAULT_PORTS
from splitleak.tools.cli.options import add_max_nodes_option, positive

MQTT_PORT = DEFAULT_PORTS["mqtt"]


def add_arguments(parser) -> None:
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--iface", metavar="IF", help="capture on this interface (needs root)")
    where.add_argument("--pcap", metavar="FILE", help="read a capture file (pcap or pcapng)")
    parser.add_argument("--port", type=int, default=MQTT_PORT,
                        help=f"the broker's TCP port (default {MQTT_PORT}; TLS: 8883)")
    parser.add_argument("--decoder", metavar="ATTACK_DIR",
                        help="reconstruct the frames with this decoder (`splitleak attack train`)")
    parser.add_argument("--save", metavar="DIR", help="write DIR/<node>/<seq>.png")
    parser.add_argument("--write", metavar="FILE", help="also write the captured packets to a pcap")
    parser.add_argument("--count", type=int, help="stop after this many frames (--iface)")
    parser.add_argument("--seconds", type=float, help="stop after this long (--iface)")
    parser.add_argument("--json", action="store_true", help="print the final counters as JSON")
    add_max_nodes_option(parser)


def run(args) -> int:
    from splitleak.attack import sniff
    from splitleak.tools.cli import log_info, stop_on_signals

    log_info()
    if args.save and not args.decoder:
        raise ValueError("--save writes reconstructions: it needs --decoder ATTACK_DIR")
    if args.pcap and (args.count or args.seconds or args.write):
        raise ValueError("--count, --seconds and --write are for a live capture (--iface)")
    positive(max_nodes=args.max_nodes)
    if not 0 < args.port < 65536:
        raise ValueError(f"--port must be in 1..65535, got {args.port}")
    decoder = None
    if args.decoder:
        from splitleak.attack.store import load_decoder

        decoder = load_decoder(args.decoder)[0]
    spy = sniff.Sniffer(args.port, decoder, args.save, args.max_nodes)
    if args.pcap:
        sniff.read_pcap(spy, args.pcap)
        spy.reconstruct()
    else:
        stop = stop_on_signals()
        if args.seconds:
            threading.Timer(args.seconds, stop.set).start()
        enough = (lambda: spy.stats()["frames"] >= args.count) if args.count else None
        sniff.listen(spy, args.iface, stop, until=enough, write=args.write,
                     on_ready=lambda: print(f"sniffing on {args.iface}, MQTT on port "
                                            f"{args.port}", flush=True))
    s = spy.stats()
    if args.json:
        print(json.dumps(s), flush=True)
        return 0
    for c in s["credentials"]:
        print(f"CONNECT from {c['client']} (MQTT {c['mqtt']}): client id {c['client_id']!r}, "
              f"user {c['username']!r}, password {c['password']!r}")
    nodes = f" {s['nodes']}" if s["nodes"] else ""
    print(f"sniffed: {s['mqtt_packets']} MQTT packets, {s['frames']} frames{nodes}, "
          f"{s['reconstructed']} reconstructed, {len(s['credentials'])} CONNECTs, "
          f"{s['unreadable']} unreadable (TLS) segments", flush=True)
    return 0
