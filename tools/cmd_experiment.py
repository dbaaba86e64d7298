"""Experiments across settings and deployments.

  sweep     per setting of a preset (seed-dp: non-private and DP noise 0.7/0.5/0.3; defences:
            noise, int8 and NoPeek at the cut after block 2; depth: K = 1..4; all), train the
            target, train black-box attackers (naive; adaptive under an edge defence), score
            them and the white box; results.json/csv keyed by each setting's hash (a rerun
            skips finished settings), a privacy-utility plot, grids, report.html
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

from splitleak.attack.config import TrainConfig as DecoderConfig
from splitleak.broker.profiles import ENGINES, PROFILES
from splitleak.cloud.config import TrainConfig
from splitleak.tools.cmd_data import add_data_options
from splitleak.tools.experiment import PRESETS


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
    p.add_argument("--engine", choices=ENGINES, default="mosquitto")
    p.add_argument("--profiles", nargs="+", choices=PROFILES, default=list(PROFILES))
    p.add_argument("--frames", type=int, default=200, help="lite test images streamed (max 1000)")
    p.add_argument("--run", type=Path, default=Path("runs/lite"), help="reused or trained")
    p.add_argument("--decoder", type=Path, default=Path("runs/attack-lite"),
                   metavar="ATTACK_DIR", help="reused or trained against --run")
    p.add_argument("--out", type=Path, default=Path("runs/network"))
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    add_data_options(p)


def run(args) -> int:
    if args.experiment == "sweep":
        return _sweep(args)
    with contextlib.redirect_stdout(sys.stderr) if args.json else contextlib.nullcontext():
        result = _network(args)  # progress on stderr when stdout is JSON
    if args.json:
        print(json.dumps(result, indent=2))
    return 0


def _network(args) -> dict:
    from splitleak.attack import store
    from splitleak.cloud import artifacts
    from splitleak.cloud.data import load_protocol
    from splitleak.tools import network
    from splitleak.tools.cmd_demo import ensure_decoder, ensure_run

    proto = load_protocol("lite", args.omniglot_dir)
    if not 1 <= args.frames <= len(proto.test):
        raise ValueError(f"--frames must be in 1..{len(proto.test)}, got {args.frames}")
    ensure_run(args.run, TrainConfig.epochs, proto, TrainConfig.split_after)
    ensure_decoder(args.decoder, args.run, DecoderConfig.epochs, proto)
    decoder, _ = store.load_decoder(args.decoder)
    images = proto.test.images[:args.frames]
    rows = []
    for profile in args.profiles:
        print(f"profile {profile}: streaming {args.frames} lite test images", flush=True)
        row, frames = network.run_profile(args.run, args.engine, profile, images, "lite-test")
        for name, got in frames.items():
            row["eavesdroppers"][name]["reconstruction"] = network.score_frames(decoder, got,
                                                                                images)
        rows.append(row)
    args.out.mkdir(parents=True, exist_ok=True)
    result = {"engine": args.engine, "run": str(args.run), "decoder": str(args.decoder),
              "rows": rows}
    artifacts.write_json(args.out / "results.json", result)
    (args.out / "results.md").write_text(network.table(rows))
    print(network.table(rows) + f"wrote {args.out / 'results.json'}, results.md")
    return result


def _sweep(args) -> int:
    import csv
    import time
    from dataclasses import fields, replace

    from splitleak.cloud import artifacts
    from splitleak.cloud.data import load_protocol
    from splitleak.tools import experiment

    settings = experiment.preset(args.preset)
    if args.config:
        overrides = json.loads(args.config.read_text())
        known = {f.name for f in fields(experiment.Setting)} - {"name"}
        if not isinstance(overrides, dict) or set(overrides) - known:
            bad = sorted(set(overrides) - known) if isinstance(overrides, dict) else overrides
            raise ValueError(f"{args.config}: unknown setting key(s) {bad}; expected a JSON "
                             f"object with keys from {', '.join(sorted(known))}")
        settings = [replace(s, **overrides) for s in settings]
    out = args.out or Path(f"runs/experiment-{args.preset}")
    path = out / "results.json"
    done = artifacts.read_json(path)["settings"] if path.is_file() else {}
    foreign = set(done) - {s.key() for s in settings}
    if foreign:
        raise ValueError(f"{out} holds {len(foreign)} setting(s) of another sweep; "
                         "use another --out")
    estimate = experiment.estimate_seconds(settings, set(done), out)
    print(f"preset {args.preset}: {len(settings)} settings, {len(done)} already done; "
          f"about {estimate / 60:.0f} min on a 2-core CPU", flush=True)
    proto = load_protocol(args.protocol, args.omniglot_dir)
    start = time.monotonic()
    for i, s in enumerate(settings, 1):
        if s.key() in done:
            print(f"[{i}/{len(settings)}] {s.name}: done before, skipped", flush=True)
            continue
        began = time.monotonic()
        print(f"[{i}/{len(settings)}] {s.name} ({s.key()})", flush=True)
        done[s.key()] = experiment.run_setting(s, proto, out)
        artifacts.write_json(path, {"preset": args.preset, "settings": done})  # resumable
        print(f"[{i}/{len(settings)}] {s.name}: {(time.monotonic() - began) / 60:.1f} min",
              flush=True)
    rows = [done[s.key()] for s in settings]
    with (out / "results.csv").open("w", newline="") as f:
        flat = experiment.csv_rows(rows)
        writer = csv.DictWriter(f, fieldnames=list(flat[0]))
        writer.writeheader()
        writer.writerows(flat)
    text = experiment.table(rows)
    (out / "results.md").write_text(text)
    plot = experiment.save_plot(out, rows)
    seconds = time.monotonic() - start
    report = experiment.save_report(out, args.preset, rows, seconds)
    print(text + f"wrote {path}, results.csv, results.md, {plot.name}, {report.name} "
          f"({seconds / 60:.1f} min)")
    return 0
