"""Try the Pi path without a Pi: the edge node on a real arm64 Debian userland under QEMU.

  build   debootstrap the release (cached: minutes the first time), then install this checkout's
          edge extra in a virtual environment inside it (no TensorFlow) and list the wheels
  run     run a command inside, e.g.  splitleak pi-emu run -- splitleak edge --check --model M
  info    what is built where, and the wheel sets

Needs root, debootstrap and QEMU's binfmt_misc entry (apt-get install qemu-user-static
binfmt-support debootstrap); building needs Debian's packages and PyPI. Inside, the current
folder (and each --bind DIR) is at its host path and the host's loopback is the Pi's, so the
node reaches a broker on this machine. Timings inside are QEMU's, not a Pi's: edge --check says so.
"""

import argparse
import json
import os

from splitleak.cloud import rundir
from splitleak.tools.pi import emulator as pi_emu


def add_arguments(parser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    sub = parser.add_subparsers(dest="pi_command", required=True, metavar="SUBCOMMAND")
    p = sub.add_parser("build", help="build (or refresh) the emulated Pi")
    _which(p)
    p.add_argument("--mirror", metavar="URL",
                   help="Debian mirror for debootstrap (default: the one this host's apt uses)")
    p.add_argument("--json", action="store_true", help="print the installed wheel set as JSON")
    p.set_defaults(_pi=_build)
    p = sub.add_parser("run", help="run a command inside the emulated Pi")
    _which(p)
    p.add_argument("--bind", action="append", default=[], metavar="DIR",
                   help="also show this host folder inside, at the same path (repeatable)")
    p.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- COMMAND …")
    p.set_defaults(_pi=_run)
    p = sub.add_parser("info", help="the emulated Pis built in --dir and their wheels")
    p.add_argument("--dir", metavar="DIR", help=f"cache folder (default: {pi_emu.default_dir()})")
    p.set_defaults(_pi=_info)


def _which(p) -> None:
    p.add_argument("--release", choices=pi_emu.RELEASES, default="bookworm",
                   help="Debian release = Raspberry Pi OS 64-bit release (bookworm: Python 3.11, "
                        "trixie: 3.13; default: %(default)s)")
    p.add_argument("--runtime", choices=pi_emu.RUNTIMES, default="litert",
                   help="litert: the edge extra (ai-edge-litert); tflite-runtime: the fallback "
                        "extra (tflite-runtime 2.14, numpy<2; bookworm only); default: %(default)s")
    p.add_argument("--dir", metavar="DIR", help=f"cache folder (default: {pi_emu.default_dir()})")


def run(args) -> int:
    return args._pi(args)


def _build(args) -> int:
    pi = pi_emu.Pi(args.release, args.runtime, args.dir)
    info = pi_emu.build(pi, mirror=args.mirror, log=lambda line: print(line, flush=True))
    if args.json:
        print(json.dumps(info))
    else:
        wheels = ", ".join(f"{k} {v}" for k, v in sorted(info["wheels"].items()))
        print(f"{pi} ready in {pi.root}\n  Python {info['python']}, wheels: {wheels}\n"
              f"  try: splitleak pi-emu run --release {pi.release} --runtime {pi.runtime} -- "
              f"splitleak edge --check --model {rundir.mobile(rundir.default_run_dir())}")
    return 0


def _run(args) -> int:
    argv = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    if not argv:
        raise ValueError("no command to run: splitleak pi-emu run [options] -- COMMAND …")
    pi = pi_emu.Pi(args.release, args.runtime, args.dir)
    pi_emu.check_host()
    pi.check_ready()
    command = pi.command(argv, binds=args.bind)
    os.execvp(command[0], command)  # the same process: signals reach the command inside


def _info(args) -> int:
    folder = pi_emu.Pi(directory=args.dir).directory
    found = sorted(folder.glob("*-*.json")) if folder.is_dir() else []
    if not found:
        print(f"no emulated Pi in {folder}: splitleak pi-emu build")
    for path in found:
        info = json.loads(path.read_text())
        wheels = ", ".join(f"{k} {v}" for k, v in sorted(info["wheels"].items()))
        print(f"{info['release']} ({info['machine']}, Python {info['python']}) "
              f"[{info['extra']}]: {wheels}")
    return 0
