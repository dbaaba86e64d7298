"""Experiments that repeat an attack across settings and write one table.

  depth   the split depth K = 1..4: bytes on the wire, accuracy, edge latency, and how well the
          black-box and white-box attacks reconstruct and identify unseen test images
"""

import argparse
from pathlib import Path

from splitleak.attack.config import TrainConfig as DecoderConfig
from splitleak.cloud.config import SPLITS, TrainConfig
from splitleak.tools.cmd_data import add_data_options

WHITEBOX_IMAGES = 64


def add_arguments(parser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    sub = parser.add_subparsers(dest="sweep", required=True, metavar="SWEEP")
    p = sub.add_parser("depth", help="the attack at every split depth, one table",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--splits", type=int, nargs="+", choices=SPLITS, default=list(SPLITS),
                   metavar="K", help="split depths to measure (default: 1 2 3 4)")
    p.add_argument("--epochs", type=int, default=TrainConfig.epochs,
                   help="target epochs where a run must be trained")
    p.add_argument("--attack-epochs", type=int, default=DecoderConfig.epochs,
                   help="decoder epochs where a decoder must be trained")
    p.add_argument("--whitebox-limit", type=int, default=WHITEBOX_IMAGES,
                   help="test images the white-box attack inverts (it is slow)")
    p.add_argument("--tflite-runs", type=int, default=300, help="timed TFLite runs per K")
    p.add_argument("--runs-dir", type=Path, default=Path("runs"),
                   help="where runs/lite[-kK] and runs/attack-lite[-kK] are reused or trained")
    p.add_argument("--out", type=Path, default=Path("runs/sweep-depth"))
    add_data_options(p)


def run(args) -> int:
    for name in ("epochs", "attack_epochs", "whitebox_limit", "tflite_runs"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be a positive integer")
    from splitleak.cloud.data import load_protocol
    from splitleak.tools import sweep
    from splitleak.tools.cmd_train import default_run_dir

    proto = load_protocol("lite", args.omniglot_dir)
    rows = []
    for k in sorted(set(args.splits)):
        run = args.runs_dir / Path(default_run_dir("lite", k)).name
        attack = args.runs_dir / Path(default_run_dir("lite", k, "attack-")).name
        print(f"split after block {k}: {run}, {attack}", flush=True)
        rows.append(sweep.measure_depth(k, proto, run, attack, args.epochs, args.attack_epochs,
                                        args.whitebox_limit, args.tflite_runs))
        text = _write(args.out, rows)  # after every K: a long sweep stopped early keeps its rows
    grid, plot = sweep.save_grid(args.out, proto, rows), sweep.save_plot(args.out, rows)
    print(text)
    print(f"wrote {args.out / 'results.json'}, results.md, {grid.name}, {plot.name}")
    return 0


def _write(out: Path, rows: list[dict]) -> str:
    from splitleak.cloud import artifacts
    from splitleak.tools import sweep

    out.mkdir(parents=True, exist_ok=True)
    artifacts.write_json(out / "results.json", {"sweep": "depth", "rows": rows})
    text = sweep.table(rows)
    (out / "results.md").write_text(text)
    return text
