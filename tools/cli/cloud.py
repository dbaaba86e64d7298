"""Run the cloud head: classify every activation frame on the broker, publish predictions.

Runs until Ctrl-C / SIGTERM (or --count frames), then prints what it accepted, rejected
(by reason), each node's sequence gaps, the throughput and the latency percentiles (capture
on the edge -> prediction published). Nodes whose status announces a mobile stage other than
RUN_DIR's mobile.tflite or mobile_int8.tflite are refused. Exits 2 with one line when the
broker cannot be reached, refuses the login or refuses the subscription.

Several heads split one stream with --share GROUP (an MQTT 5 shared subscription; MQTT 5 is
then used). Give each head its own --client-id: the broker keeps a head's session, with the
frames it was handed but had not acknowledged, until a head with that id comes back.
"""

import json
import os
import time

from splitleak.cloud.service import BATCH
from splitleak.tools.cli.options import (
    add_broker_options,
    add_max_nodes_option,
    broker_from,
    credentials_from,
    positive,
)

CLOUD_USER = "cloud"


def add_arguments(parser) -> None:
    parser.add_argument("--run", required=True, metavar="RUN_DIR", help="a `splitleak train` run")
    add_broker_options(parser, f"user {CLOUD_USER!r}")
    parser.add_argument("--batch", type=int, default=BATCH, help="frames per head call, at most")
    parser.add_argument("--share", metavar="GROUP",
                        help="join the shared subscription $share/GROUP/splitleak/+/activations "
                             "(MQTT 5): the heads of a group split the frames between them")
    parser.add_argument("--client-id", metavar="ID",
                        help="MQTT client id, the key of the broker's session for this head "
                             "(default: splitleak-cloud; with --share, splitleak-cloud-GROUP-PID)")
    parser.add_argument("--count", type=int, help="stop after this many frames")
    add_max_nodes_option(parser)
    parser.add_argument("--stats", action="store_true",
                        help="print throughput and latency every 5 s and at the end")
    parser.add_argument("--json", action="store_true", help="print the final summary as JSON")


def broker_url(args) -> str:
    """--broker, logged in as the cloud user when --credentials is given (else as the URL or
    the environment says)."""
    from splitleak.broker.urls import url_for_user

    credentials = credentials_from(args)
    if credentials is None:
        return broker_from(args)
    return url_for_user(args.broker, CLOUD_USER, credentials, args.credentials).full()


def run(args) -> int:
    from splitleak.broker.urls import parse_url
    from splitleak.cloud.service import CloudHead, describe
    from splitleak.tools.cli import log_info, stop_on_signals

    log_info()
    if args.batch < 1:
        raise ValueError(f"--batch must be at least 1, got {args.batch}")
    positive(max_nodes=args.max_nodes)
    url = broker_url(args)
    client_id = args.client_id or (f"splitleak-cloud-{args.share}-{os.getpid()}" if args.share
                                   else "splitleak-cloud")
    head = CloudHead(args.run, url, ca_file=args.ca, batch=args.batch, client_id=client_id,
                     protocol="5" if args.share else args.mqtt, share=args.share,
                     max_nodes=args.max_nodes)
    stop = stop_on_signals()
    try:
        head.start()
        print(f"cloud: ready, subscribed to {head.subscriptions[0][0]} on {parse_url(url)} as "
              f"{client_id}", flush=True)
        head.serve(stop, max_frames=args.count, report=Reporter() if args.stats else None)
    finally:
        head.stop()
    summary = head.summary()
    print(json.dumps(summary) if args.json else describe(summary), flush=True)
    return 0


class Reporter:
    """--stats: the summary line, plus the rate since the previous report."""

    def __init__(self):
        self.accepted, self.at = 0, time.monotonic()

    def __call__(self, head) -> None:
        from splitleak.cloud.service import describe

        now = time.monotonic()
        rate = (head.accepted - self.accepted) / (now - self.at)
        self.accepted, self.at = head.accepted, now
        print(f"{describe(head.summary())}; last interval {rate:.1f} frames/s", flush=True)
