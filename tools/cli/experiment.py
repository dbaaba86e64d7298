"""Experiments across settings and deployments.

  sweep     per setting of a preset (seed-dp: non-private and DP noise 0.7/0.5/0.3; defences:
            noise, int8 and NoPeek at the cut after block 2; depth: K = 1..4, with bytes per
            frame; attack: our decoder and the seed's, stopped early or not, at the seed's cut;
            lab: lab 4's four; all) and per seed (--seeds; default 1 2 3, the lab's one), train
            the target (GroupNorm, no dropout, in every preset; stated in the output), train
            black-box attackers (naive; adaptive under an edge defence), score them and the white
            box (from the stronger attacker's reconstruction), and the black box again on the
            white box's images. One row file per (setting, seed) in the results folder
            (--results, to commit; a rerun skips the rows there), models in --models (default:
            the work folder, --out); --shard I/N runs one part (1-based), for a job array.
            Prints the estimated time first.
  report    results.md and the plot of a results folder, from its rows alone (no models)
  merge     copy the rows of results folders (shards) into one; refuses other sweeps' folders
  docs      rewrite the `<!-- results:NAME/PART -->` blocks of README.md and docs/ from the
            committed results folders (docs/results/NAME); --check writes nothing and fails when
            one is out of date
  network   one stream under each broker profile (open, auth, tls) with eavesdroppers holding no
            credentials, a wrong password, the attacker's own account, a stolen edge credential
            and a stolen cloud credential: frames received by the cloud and by each, and how
            well each eavesdropper's frames are reconstructed (top-1 identification); --wire
            runs it on the lab network, with a passive sniffer on the wire as well
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
    p.add_argument("--out", type=Path, help="the work folder: grids, report.html and, unless "
                   "--models, the models (default: runs/experiment-PRESET)")
    p.add_argument("--models", type=Path, metavar="DIR",
                   help="trained targets and decoders, reused by any preset pointed at the same "
                        "folder (default: OUT)")
    p.add_argument("--results", type=Path, metavar="DIR",
                   help="the results folder: config and one row per (setting, seed), to commit, "
                        "e.g. docs/results/PRESET (default: OUT/results)")
    p.add_argument("--seeds", type=int, nargs="+", metavar="SEED",
                   help="one job per setting and seed (default: the preset's: 1 2 3; lab: one)")
    p.add_argument("--shard", type=_shard, metavar="I/N",
                   help="run shard I of N only (1-based: 1/N .. N/N); jobs sharing a target share "
                        "a shard; `experiment merge` joins the shards' results folders")
    p.add_argument("--dry-run", action="store_true", help="print the jobs and the estimate only")
    add_data_options(p)
    p = sub.add_parser("report", help="results.md and the plot of a results folder, from its rows",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folder", type=Path, metavar="DIR",
                   help="a results folder (or a work folder's old results.json)")
    p.add_argument("--out", type=Path, help="write there instead of DIR")
    p = sub.add_parser("merge", help="union the rows of results folders (shards) into DEST",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dest", type=Path, metavar="DEST")
    p.add_argument("sources", type=Path, nargs="+", metavar="SRC",
                   help="results folders, or work folders holding one (WORK/results)")
    p = sub.add_parser("docs", help="the documentation's results blocks, from docs/results",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--check", action="store_true",
                   help="write nothing; exit 1 when a block is out of date")
    p = sub.add_parser("network", help="the broker profiles against five eavesdroppers",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--engine", choices=ENGINES, default=network.ENGINE)
    p.add_argument("--profiles", nargs="+", choices=PROFILES, default=list(PROFILES))
    p.add_argument("--frames", type=int, default=network.FRAMES,
                   help="images streamed (at most the source's: 1000 lite test images)")
    p.add_argument("--source", default=network.SOURCE, metavar="SOURCE",
                   help=f"what the edge streams: {network.SOURCE} or folder:DIR (default "
                        f"{network.SOURCE})")
    p.add_argument("--node", default=network.DEFAULTS["node"], metavar="ID",
                   help=f"the edge node's id (default {network.DEFAULTS['node']})")
    p.add_argument("--run", type=Path, help=f"reused or trained (default: {default_run_dir()})")
    p.add_argument("--decoder", type=Path, metavar="ATTACK_DIR",
                   help=f"reused or trained against --run (default: {default_attack_dir()})")
    p.add_argument("--out", type=Path, default=network.OUT)
    p.add_argument("--wire", action="store_true",
                   help="on the lab network (root): the edge node on its own host, and a passive "
                        "sniffer with no account capturing the wire")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    add_data_options(p)


def run(args) -> int:
    if args.experiment in ("sweep", "report", "merge", "docs"):
        return {"sweep": _sweep, "report": _report, "merge": _merge,
                "docs": _docs}[args.experiment](args)
    with contextlib.redirect_stdout(sys.stderr) if args.json else contextlib.nullcontext():
        result = network.run_experiment(args.run, args.decoder, args.engine, args.profiles,
                                        args.frames, args.out, args.omniglot_dir, args.wire,
                                        args.source, args.node)
        print(network.table(result["rows"]) + f"wrote {args.out / 'results.json'}, results.md")
    if args.json:  # progress went to stderr
        print(json.dumps(result, indent=2))
    return 0


def _shard(text: str) -> tuple[int, int]:
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}': expected I/N, e.g. 1/4") from None
    if not 1 <= index <= count:
        raise argparse.ArgumentTypeError(f"'{text}': expected 1 <= I <= N (1-based)")
    return index, count


def _sweep(args) -> int:
    from splitleak.tools.experiments.sweep import run_sweep

    done = run_sweep(args.preset, args.out, args.config, args.protocol, args.omniglot_dir,
                     args.seeds, args.shard, args.results, args.models, args.dry_run)
    if not args.dry_run:
        print(done.table + f"wrote {', '.join(str(p) for p in done.written)} "
              f"({done.seconds / 60:.1f} min)")
    return 0


def _report(args) -> int:
    from splitleak.tools.experiments.report import write

    page = write(args.folder, args.out)
    print(page.text + f"wrote {', '.join(map(str, page.written))}")
    if page.stale:
        print(f"warning: {page.stale}", file=sys.stderr)
    return 0


def _merge(args) -> int:
    from splitleak.tools.experiments.results import merge

    done = merge(args.dest, args.sources)
    print(f"{args.dest}: {done['added']} row(s) added to {done['present']}; {done['rows']} in "
          f"the sources; run: splitleak experiment report {args.dest}")
    return 0


def _docs(args) -> int:
    from splitleak.tools.experiments import docs

    done = docs.render_files(check=args.check)
    print(docs.describe(done))
    return 0 if done["passed"] else 1
