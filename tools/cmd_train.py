"""Train the split target (mobile stage + head), export the mobile stage to TFLite, write RUN_DIR."""

from splitleak.cloud.data import PROTOCOLS
from splitleak.tools.cmd_data import add_data_options


def add_arguments(parser) -> None:
    parser.add_argument("--protocol", choices=PROTOCOLS, default="lite")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--out", metavar="RUN_DIR", help="default: runs/<protocol>")
    parser.add_argument("--force", action="store_true", help="replace an existing RUN_DIR")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    parser.add_argument("--norm", choices=("batch", "group", "none"), default="batch")
    parser.add_argument("--no-augment", action="store_true", help="train on the images as they are")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--limit", type=int, help="use only the first N train/val images (tests)")
    parser.add_argument("--leaky", action="store_true", help="seed protocol: as the seed did")
    add_data_options(parser)


def run(args) -> int:
    if args.epochs < 1 or args.batch < 1 or (args.limit is not None and args.limit < 1):
        raise ValueError("--epochs, --batch and --limit must be positive integers")
    from splitleak.cloud import train
    from splitleak.cloud.data import load_protocol

    out = args.out or f"runs/{args.protocol}"
    proto = load_protocol(args.protocol, args.omniglot_dir, leaky=args.leaky)
    cfg = train.TrainConfig(epochs=args.epochs, batch=args.batch, learning_rate=args.lr,
                            norm=args.norm, augment=not args.no_augment, seed=args.seed,
                            limit=args.limit)
    metrics = train.run(proto, cfg, out, force=args.force)
    p = metrics["parity"]
    print(f"best epoch {metrics['best_epoch']}: train accuracy {metrics['train_accuracy']:.3f}, "
          f"validation {metrics['val_accuracy']:.3f}")
    print(f"TFLite parity on {p['images']} images: float32 max diff {p['float32_max_abs_diff']:.1e}; "
          f"int8 relative error {p['int8_relative_error']:.3f}, "
          f"top-1 agreement {p['int8_top1_agreement']:.3f}")
    print(f"wrote {out}")
    return 0
