"""Run an MQTT broker in the foreground until Ctrl-C or SIGTERM.

Engines: amqtt (pure Python, in this process, MQTT 3.1.1) or mosquitto (the system binary,
MQTT 3.1.1 and 5, keeps queued messages across restarts). Profiles: open (anonymous),
auth (user names and passwords), tls (auth + TLS + per-user topic rules). The broker's
files (configuration, credentials.json, certificates, database, log) go into --dir.
The command prints the URL each user should connect with.
"""

import argparse
import logging
import signal
import threading

from splitleak.broker.profiles import ENGINES, PROFILES
from splitleak.broker.server import DIRECTORY


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--engine", choices=ENGINES, default="amqtt",
                        help="broker implementation (default: amqtt)")
    parser.add_argument("--profile", choices=PROFILES, default="open",
                        help="security profile (default: open)")
    parser.add_argument("--port", type=int, default=None,
                        help="listen port (default: 1883, or 8883 for tls)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="listen address (default: 127.0.0.1; 0.0.0.0 exposes it)")
    parser.add_argument("--tls-name", action="append", metavar="NAME", default=[],
                        help="tls profile: a host name or IP address that remote clients use "
                             "to reach this broker, added to its certificate (repeatable; the "
                             "certificate always covers localhost, 127.0.0.1, ::1 and --host)")
    parser.add_argument("--dir", default=DIRECTORY,
                        help=f"directory for the broker's files (default: {DIRECTORY})")
    parser.add_argument("--node", action="append", metavar="NODE",
                        help="edge node id, also its user name (repeatable; default: edge)")
    parser.add_argument("--password", action="append", metavar="USER=PASS", default=[],
                        help="set a user's password instead of a generated one (repeatable)")
    parser.add_argument("--bridge-to", metavar="URL",
                        help="Mosquitto only: bridge to the broker at mqtt://[user:pass@]host:port "
                             "(activations and statuses out, predictions in, QoS 1): this broker "
                             "sits by the nodes, the cloud heads use the other one")
    parser.add_argument("--verbose", action="store_true",
                        help="show amqtt's log (mosquitto always logs to DIR/mosquitto.log)")


def _passwords(pairs: list[str]) -> dict[str, str]:
    result = {}
    for pair in pairs:
        user, sep, password = pair.partition("=")
        if not sep or not user or not password:
            raise ValueError(f"--password expects USER=PASS, got {pair!r}")
        result[user] = password
    return result


def _print_banner(broker, tls_names=(), given=()) -> None:
    """What a user needs to connect; a password given with --password is not printed (it
    stays with whoever gave it, as it stays out of credentials.json)."""
    print(f"{broker.engine} broker, profile {broker.profile}, listening on "
          f"{broker.host}:{broker.port}; files in {broker.directory}")
    if broker.profile == "open":
        print(f"  url: {broker.url}")
    for user in broker.passwords:
        if user in given:
            from splitleak.broker.urls import parse_url

            print(f"  {user + ':':10} {parse_url(broker.url_for(user))} (the password given)")
        else:
            print(f"  {user + ':':10} {broker.url_for(user)}")
    if broker.ca_file:
        from splitleak.broker.certs import server_names

        print(f"  CA file:   {broker.ca_file}")
        print(f"  TLS names: {', '.join(server_names(broker.host, tls_names))} (a client must "
              "connect by one of these)")
    if getattr(broker, "log_file", None):
        print(f"  log:       {broker.log_file}")
    print("Press Ctrl-C to stop.", flush=True)


def run(args: argparse.Namespace) -> int:
    from splitleak.broker import profiles
    from splitleak.broker.server import start_broker

    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s: %(message)s")
    port = args.port or (8883 if args.profile == "tls" else 1883)
    broker = start_broker(args.engine, args.profile, port, args.dir, host=args.host,
                          nodes=args.node or profiles.DEFAULT_NODES,
                          passwords=_passwords(args.password), tls_names=args.tls_name,
                          bridge=args.bridge_to)
    stop = threading.Event()
    handlers = {sig: signal.signal(sig, lambda *_: stop.set())
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        _print_banner(broker, args.tls_name, _passwords(args.password))
        while broker.is_running() and not stop.wait(0.5):
            pass
        died = not broker.is_running()
    finally:
        broker.stop()
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    if died:
        raise OSError(f"the {broker.engine} broker stopped unexpectedly"
                      + (f"; see {broker.log_file}" if hasattr(broker, "log_file") else ""))
    print("broker stopped", flush=True)
    return 0
