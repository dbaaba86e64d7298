"""The lab network: device, broker and eve hosts (network namespaces) on one hub, so MQTT
crosses a real wire that eve can capture (tools/deploy/netns.py). Needs root.

  up      make it, print its hosts, hold it until Ctrl-C, then take it down
  down    take down what a killed `net up` left behind
  exec    run a command as one of its hosts, e.g.
          splitleak net exec eve -- splitleak attack sniff --iface eth0
"""

import argparse
import os

from splitleak.tools.deploy.netns import HOSTS, LabNet

DEFAULT = LabNet()


def add_arguments(parser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter  # keep the list above
    parser.add_argument("--prefix", default=DEFAULT.prefix,
                        help=f"namespaces are <prefix>-hub, <prefix>-device, ... "
                             f"(default {DEFAULT.prefix})")
    sub = parser.add_subparsers(dest="net_command", required=True, metavar="SUBCOMMAND")
    sub.add_parser("up", help="make the lab network and hold it until Ctrl-C")
    sub.add_parser("down", help="remove the lab network's namespaces")
    p = sub.add_parser("exec", help="run a command as one of the hosts")
    p.add_argument("host", choices=sorted(HOSTS))
    p.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- COMMAND",
                   help="the command and its arguments")


def run(args) -> int:
    from splitleak.tools.deploy import netns

    net = LabNet(prefix=args.prefix)
    if args.net_command == "down":
        gone = netns.down(net)
        print(f"removed {', '.join(gone)}" if gone else "the lab network was not up")
        return 0
    if args.net_command == "exec":
        argv = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
        if not argv:
            raise ValueError("net exec: expected a command after the host, e.g. "
                             "splitleak net exec eve -- ip addr")
        netns.check_can_make()
        if net.namespace(args.host) not in netns.existing(net):
            raise ValueError(f"the lab network is not up (no {net.namespace(args.host)}): "
                             "run `splitleak net up` first")
        os.execvp("ip", net.exec_args(args.host, *argv))
    return _hold(net)


def _hold(net: LabNet) -> int:
    from splitleak.tools.cli import stop_on_signals
    from splitleak.tools.deploy import netns

    stop = stop_on_signals()
    with netns.lab_network(net):
        print(f"lab network up: a hub ({net.namespace('hub')}) joins")
        for role in HOSTS:
            print(f"  {role:7} {net.address(role):12} namespace {net.namespace(role)}, "
                  f"interface {netns.IFACE}")
        print(f"run a command as a host: splitleak net exec HOST -- COMMAND (e.g. the broker: "
              f"... broker --host {net.address('broker')})")
        print("Press Ctrl-C to take it down.", flush=True)
        while not stop.wait(0.5):
            pass
    print("lab network down", flush=True)
    return 0
