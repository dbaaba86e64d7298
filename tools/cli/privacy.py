"""What a DP-SGD run guarantees (cloud/privacy.py; dp-accounting, no TensorFlow).

  epsilon   ε at δ for n examples, batch B, noise multiplier Z, E epochs, Poisson or shuffled
            batches, by the RDP and the PLD accountant; --seed-table: the seed's three settings
"""

import argparse
import json

from splitleak.cloud.config import SAMPLINGS
from splitleak.cloud.config import SEED_DP as SEED


def add_arguments(parser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    sub = parser.add_subparsers(dest="privacy", required=True, metavar="SUBCOMMAND")
    p = sub.add_parser("epsilon", help="ε of a DP-SGD run, by two accountants")
    p.add_argument("--n", type=int, help="examples trained on")
    p.add_argument("--batch", type=int, help="batch size (Poisson: expected batch size)")
    p.add_argument("--noise", type=float, help="noise multiplier z (noise std / clip norm)")
    p.add_argument("--epochs", type=float, help="passes over the data")
    p.add_argument("--delta", type=float, help="δ, at most 1/n")
    p.add_argument("--sampling", choices=SAMPLINGS, default=SAMPLINGS[0],
                   help="poisson: each example joins each step with probability B/n; "
                        "shuffle: fixed batches of a shuffled pass (default: %(default)s)")
    p.add_argument("--seed-table", action="store_true",
                   help="the seed's three noise multipliers: its ε beside ours, explained")
    p.add_argument("--json", action="store_true", help="print JSON only")


def run(args) -> int:
    from splitleak.cloud import privacy

    if args.seed_table:
        return _seed_table(args.json)
    missing = [f"--{k}" for k in ("n", "batch", "noise", "epochs", "delta")
               if getattr(args, k) is None]
    if missing:
        raise ValueError(f"missing {', '.join(missing)} (or pass --seed-table)")
    result = privacy.statement(args.n, args.batch, args.noise, args.epochs, args.delta,
                               args.sampling)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    eps = result["epsilon"]
    print(f"DP-SGD over n = {args.n:,} examples, batch {args.batch}, noise multiplier {args.noise}, "
          f"{args.epochs:g} epochs ({result['steps']:,} steps), {args.sampling} sampling:")
    print(f"  ε = {eps['rdp']:.3f} (RDP), {eps['pld']:.3f} (PLD) at δ = {args.delta:g}, "
          "add-or-remove-one example, every checkpoint")
    if args.sampling == "shuffle":
        print("  shuffled batches get no amplification by subsampling: each example is in one "
              "batch per epoch, so this is E Gaussian mechanisms composed")
    return 0


def _seed_table(as_json: bool) -> int:
    from splitleak.cloud import privacy

    rows = privacy.seed_table()
    if as_json:
        print(json.dumps({"settings": {k: v for k, v in SEED.items() if k not in ("epsilon", "accuracy")},
                          "rows": rows}, indent=2))
        return 0
    print(f"The seed's DP-SGD: batch {SEED['batch']}, {SEED['epochs']} epochs, δ = "
          f"{SEED['delta']:g}, n = {SEED['n_passed']:,} passed to the accountant, "
          f"{SEED['n_trained']:,} trained on.\n")
    print("| noise | seed | same, older RDP conversion | Poisson RDP / PLD, n 13,180 | "
          "Poisson RDP / PLD, n 11,000 | shuffled batches RDP / PLD, n 11,000 |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['noise']} | {r['seed']} | {r['classic_rdp_13180']:.2f} | "
              f"{r['poisson_rdp_13180']:.2f} / {r['poisson_pld_13180']:.2f} | "
              f"{r['poisson_rdp_11000']:.2f} / {r['poisson_pld_11000']:.2f} | "
              f"{r['shuffle_rdp_11000']:.1f} / {r['shuffle_pld_11000']:.1f} |")
    print("""
- Conversion: the seed's tensorflow-privacy turned the RDP curve into (ε, δ) with the older bound
  (ε = min over orders of RDP + log(1/δ)/(order - 1)); recomputed that way we get close to its
  figures. dp-accounting's conversion is tighter for the same curve, and PLD tighter still.
- n: the accountant was told 13,180 examples, but the model trained on 11,000. Fewer examples
  means a larger sampling rate B/n and more privacy spent per epoch: ε rises.
- Sampling: all Poisson figures assume each example joins each step with probability B/n. The
  seed trained on shuffled fixed batches, for which that figure is not a valid bound; the bound
  that holds (one Gaussian mechanism per epoch, no amplification) is much larger.""")
    return 0
