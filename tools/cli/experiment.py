"""Experiments across settings and deployments.

  sweep     per setting of a preset (seed-dp: non-private and DP noise 0.7/0.5/0.3; defences:
            noise, int8 and NoPeek at the cut after block 2; depth: K = 1..4, with bytes per
            frame; lab: lab 4's four; all), train the target (GroupNorm, no dropout, in every
            preset; stated in the output), train black-box attackers (naive; adaptive under an
            edge defence), score them and the white box (from the stronger attacker's
            reconstruction), and the black box again on the white box's images; results.json/csv
            keyed by each setting's hash (a rerun skips finished settings), a privacy-utility
            plot, grids, report.html
  network   one stream under each broker profile (open, auth, tls) with eavesdroppers holding no
            credentials, a wrong password, the attacker's own account, a stolen edge credential
            and a stolen cloud credential: frames received by the cloud and by each, and how
            well each eavesdropper's frames are reconstructed (top-1 identification)
"""

import argparse
import contextlib
import json
import sys
from pathlib import Path

from splitleak.broker.profiles import ENGINES, PROFILES
from splitleak.cloud.rundir import default_attack_dir, default_run_dir
from splitleak.tools.cli.options import add_data_options
from splitleak.tools.experiments import network
from splitleak.tools.experiments.settings import PRESETS


def add_arguments(parser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    sub = parser.add_subparsers(dest="experiment", required=True, metavar="EXPERIMENT")
    p = sub.add_parser("sweep", help="train, attack and score every setting of a preset",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--protocol", choices=("lite",), default="lite")
    p.add_argument("--preset", choices=PRESETS, required=True)
    p.add_argument("--config", type=Path, metavar="FILE",
                   help="JSON object of setting fields applied to every setting, e.g. "
                        '{"epochs": 5, "attack_epochs": 10}')
    p.add_argument("--out", type=Path, help="default: runs/experiment-PRESET")
    add_data_options(p)
    p = sub.add_parser("network", help="the broker profiles against five eavesdroppers",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--engine", choices=ENGINES, default=network.ENGINE)
    p.add_argument("--profiles", nargs="+", choices=PROFILES, default=list(PROFILES))
    p.add_argument("--frames", type=int, default=network.FRAMES,
                   help="lite test images streamed (max 1000)")
    p.add_argument("--run", type=Path, help=f"reused or trained (default: {default_run_dir()})")
    p.add_argument("--decoder", type=Path, metavar="ATTACK_DIR",
                   help=f"reused or trained against --run (default: {default_attack_dir()})")
    p.add_argument("--out", type=Path, default=network.OUT)
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    add_data_options(p)


def run(args) -> int:
    if args.experiment == "sweep":
        return _sweep(args)
    with contextlib.redirect_stdout(sys.stderr) if args.json else contextlib.nullcontext():
        result = network.run_experiment(args.run, args.decoder, args.engine, args.profiles,
                                        args.frames, args.out, args.omniglot_dir)
        print(network.table(result["rows"]) + f"wrote {args.out / 'results.json'}, results.md")
    if args.json:  # progress went to stderr
        print(json.dumps(result, indent=2))
    return 0


def _sweep(args) -> int:
    from splitleak.tools.experiments.sweep import run_sweep

    done = run_sweep(args.preset, args.out, args.config, args.protocol, args.omniglot_dir)
    print(done.table + f"wrote {', '.join(p.name for p in done.written)} in {done.out} "
          f"({done.seconds / 60:.1f} min)")
    return 0
