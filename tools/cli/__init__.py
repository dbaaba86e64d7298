"""The `splitleak` command: registers one subcommand per module, imports heavy code lazily.

Each command module defines `add_arguments(parser)` (cheap: no TensorFlow) and `run(args)`
(may import anything). Errors meant for the user are `ValueError` or `OSError` subclasses, or
`ImportError` for a missing or unusable package: they are printed as one line and exit with
status 2. Set SPLITLEAK_DEBUG=1 for tracebacks.
"""

import argparse
import importlib
import logging
import os
import signal
import sys
import threading

# name -> (module, one-line help)
COMMANDS = {
    "data": ("splitleak.tools.cli.data", "list the data protocols and their split sizes"),
    "train": ("splitleak.tools.cli.train", "train the split target model and export TFLite"),
    "demo": ("splitleak.tools.cli.demo", "the main job: lite target, broker, cloud head and edge node"),
    "broker": ("splitleak.tools.cli.broker", "run an MQTT broker (amqtt or Mosquitto), with a profile"),
    "attack": ("splitleak.tools.cli.attack", "train, evaluate and run decoders that invert the mobile stage"),
    "edge": ("splitleak.tools.cli.edge", "run an edge node: TFLite mobile stage, activations to MQTT"),
    "cloud": ("splitleak.tools.cli.cloud", "run the cloud head: activations in, predictions out"),
    "bench": ("splitleak.tools.cli.bench", "benchmarks with JSON output"),
    "sweep": ("splitleak.tools.cli.sweep", "renamed: splitleak experiment sweep --preset depth"),
    "experiment": ("splitleak.tools.cli.experiment",
                   "experiments: privacy sweeps across settings, the network lockdown"),
    "privacy": ("splitleak.tools.cli.privacy", "ε of a DP-SGD run, as trained (dp-accounting)"),
    "doctor": ("splitleak.tools.cli.doctor", "check the set-up the labs need, with a fix per ✘"),
    "lab": ("splitleak.tools.cli.lab", "security-class labs: list, start N, check N"),
    "net": ("splitleak.tools.cli.net",
            "the lab network: namespaces on a hub, where a passive eavesdropper captures"),
    "pi-emu": ("splitleak.tools.cli.pi_emu",
               "an emulated Raspberry Pi (arm64 Debian under QEMU) for the edge node"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="splitleak",
        description="Model inversion against split inference over MQTT: a security testbed.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        mod = importlib.import_module(module)
        p = sub.add_parser(name, help=help_text, description=mod.__doc__)
        mod.add_arguments(p)
        p.set_defaults(_module=mod)
    return parser


def log_info() -> None:
    """Timestamped INFO logs on stderr, for the long-running nodes."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")


def stop_on_signals() -> threading.Event:
    """An Event that Ctrl-C and SIGTERM set, for a node that stops cleanly between steps."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def _exit_on_sigterm(signum, frame):
    raise SystemExit(128 + signum)  # unwinds like Ctrl-C: every `finally` and ExitStack runs


def main(argv=None) -> int:
    # TensorFlow's C++ log: level 3 keeps only fatal errors. The CUDA wheel registers cuDNN, cuFFT
    # and cuBLAS at import and logs errors about it even with no GPU; set 0 to see everything.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    from splitleak.tools.experiments.provenance import trace_modules

    trace_modules()  # a lab record's: which modules this process ran
    try:
        return args._module.run(args) or 0
    except KeyboardInterrupt:
        print("splitleak: interrupted", file=sys.stderr)
        return 130
    except (ValueError, OSError, ImportError) as exc:
        if os.environ.get("SPLITLEAK_DEBUG"):
            raise
        print(f"splitleak {args.command}: error: {exc}", file=sys.stderr)
        return 2

