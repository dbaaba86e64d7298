"""List the data protocols and the size of each split (target train/val, attacker, attack test)."""

from splitleak.cloud.data import PROTOCOLS
from splitleak.tools.cli.options import add_data_options


def add_arguments(parser) -> None:
    parser.add_argument("--protocol", choices=PROTOCOLS, action="append",
                        help="protocol to show (repeatable; default: all that load)")
    parser.add_argument("--leaky", action="store_true",
                        help="seed only: keep the test images that the attacker set also holds")
    add_data_options(parser)


def run(args) -> int:
    from splitleak.cloud.data import load_protocol

    for name in args.protocol or PROTOCOLS:
        try:
            proto = load_protocol(name, args.omniglot_dir, leaky=args.leaky)
        except (OSError, ValueError) as exc:
            if args.protocol:
                raise
            print(f"{name}: not available here ({exc})\n")
            continue
        print(f"{name} protocol (source: {proto.source})")
        print(f"  classes ({len(proto.classes)}): {', '.join(proto.classes)}")
        for split, n in proto.sizes().items():
            print(f"  {split:<9} {n:>6} images")
        if name == "seed":
            kept = "kept (--leaky)" if args.leaky else "removed"
            print(f"  test images also in the attacker set: {proto.removed_from_test} {kept}")
        shared = ", ".join(f"{k} {v}" for k, v in proto.overlaps.items())
        verdict = "disjoint" if not any(proto.overlaps.values()) else "NOT disjoint"
        print(f"  content-hash check: {verdict} ({shared})\n")
    return 0
