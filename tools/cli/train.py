"""Train the split target (mobile stage + head), export the mobile stage to TFLite, write RUN_DIR."""

from splitleak.cloud.config import DP_ENGINES, NORMS, SAMPLINGS, SPLITS, TrainConfig
from splitleak.cloud.data import PROTOCOLS
from splitleak.tools.cli.options import add_data_options

DEFAULTS = TrainConfig()


def add_arguments(parser) -> None:
    parser.add_argument("--protocol", choices=PROTOCOLS, default=PROTOCOLS[0])
    parser.add_argument("--epochs", type=int, default=DEFAULTS.epochs)
    parser.add_argument("--out", metavar="RUN_DIR",
                        help="default: runs/<protocol>, or runs/<protocol>-k<K> for another split")
    parser.add_argument("--force", action="store_true", help="replace an existing RUN_DIR")
    parser.add_argument("--split-after", type=int, choices=SPLITS, default=DEFAULTS.split_after,
                        metavar="K", help="the mobile stage is conv blocks 1..K "
                        f"(default {DEFAULTS.split_after}, the seed's 1x1x32 cut; 1 leaks the most)")
    parser.add_argument("--batch", type=int, default=DEFAULTS.batch)
    parser.add_argument("--lr", type=float, default=DEFAULTS.learning_rate, help="Adam learning rate")
    parser.add_argument("--norm", choices=NORMS,
                        help=f"default {DEFAULTS.norm}; group under --dp (batch is refused there)")
    parser.add_argument("--no-augment", action="store_true", help="train on the images as they are")
    parser.add_argument("--seed", type=int, default=DEFAULTS.seed)
    parser.add_argument("--limit", type=int, help="use only the first N train/val images (tests)")
    parser.add_argument("--leaky", action="store_true", help="seed protocol: as the seed did")
    parser.add_argument("--nopeek", type=float, default=DEFAULTS.nopeek, metavar="ALPHA",
                        help="NoPeek: add ALPHA x distance correlation(image, activation) to the "
                             "loss (default %(default)s: off)")
    dp = parser.add_argument_group("DP-SGD (cloud/dp.py, ε by cloud/privacy.py)")
    dp.add_argument("--dp", action="store_true",
                    help="train with per-example clipping and Gaussian noise; no dropout, and "
                         "no model selection on the validation set (the last epoch is saved)")
    dp.add_argument("--noise-multiplier", type=float, default=DEFAULTS.noise_multiplier,
                    metavar="Z", help="noise std / clip norm (default %(default)s)")
    dp.add_argument("--l2-clip", type=float, default=DEFAULTS.l2_clip, metavar="C",
                    help="per-example gradient norm bound (default %(default)s)")
    dp.add_argument("--sampling", choices=SAMPLINGS, default=DEFAULTS.sampling,
                    help="poisson: each example joins each step with probability B/n (ε with "
                         "amplification); shuffle: fixed batches (a larger ε that holds for them)")
    dp.add_argument("--dp-engine", choices=DP_ENGINES, default=DEFAULTS.dp_engine,
                    help="ours: per-example gradients from one forward and one backward pass; "
                         "tf-privacy: its DPModel (tf.vectorized_map), with --sampling shuffle "
                         "(default %(default)s)")
    dp.add_argument("--delta", type=float, default=DEFAULTS.delta,
                    help="δ of the reported (ε, δ), at most 1/n (default %(default)s)")
    defended = parser.add_argument_group("defences trained in (cloud/defended.py)")
    defended.add_argument("--train-noise", default="", metavar="gauss:K|laplace:K",
                          help="add noise of K x the activation's std at the cut while training, "
                               "so the head learns to classify it (Titcombe et al. 2021); the "
                               "edge adds it with --defense, as the run prints")
    defended.add_argument("--adversarial", type=float, default=0.0, metavar="ALPHA",
                          help="attacker-aware training (ResSFL): a simulated decoder trained "
                               "alongside, the stages trained to classify while it reconstructs "
                               "badly: loss - ALPHA x its MSE (default %(default)s: off)")
    defended.add_argument("--bottleneck", type=int, default=0, metavar="C",
                          help="a 1x1 convolution to C channels at the end of the mobile stage, "
                               "exported with it (default %(default)s: none)")
    add_data_options(parser)


def run(args) -> int:
    norm = args.norm or ("group" if args.dp else DEFAULTS.norm)
    cfg = TrainConfig(epochs=args.epochs, batch=args.batch, learning_rate=args.lr,
                      norm=norm, augment=not args.no_augment, seed=args.seed,
                      limit=args.limit, split_after=args.split_after, dp=args.dp,
                      nopeek=args.nopeek,
                      noise_multiplier=args.noise_multiplier, l2_clip=args.l2_clip,
                      sampling=args.sampling, delta=args.delta,
                      dp_engine=args.dp_engine).validate()
    from splitleak.cloud.data import load_protocol
    from splitleak.cloud.defended import Defence
    from splitleak.cloud.rundir import default_run_dir

    defence = Defence(args.train_noise, args.adversarial, args.bottleneck).validate(cfg.dp)
    out = args.out or str(default_run_dir(args.protocol, args.split_after)) + (
        f"-dp{args.noise_multiplier:g}" if args.dp else "") + (
        f"-nopeek{args.nopeek:g}" if args.nopeek else "") + (
        f"-noise-{args.train_noise.replace(':', '')}" if args.train_noise else "") + (
        f"-adv{args.adversarial:g}" if args.adversarial else "") + (
        f"-c{args.bottleneck}" if args.bottleneck else "")
    proto = load_protocol(args.protocol, args.omniglot_dir, leaky=args.leaky)
    if cfg.dp:  # before TensorFlow loads: a refusal is one line
        from splitleak.cloud import privacy

        privacy.check(cfg.trained_on(len(proto.train)), cfg.batch, cfg.noise_multiplier,
                      cfg.epochs, cfg.delta)
    if defence.any():
        from splitleak.cloud import train_defended

        metrics = train_defended.run(proto, cfg, defence, out, force=args.force)
    else:
        from splitleak.cloud import train

        metrics = train.run(proto, cfg, out, force=args.force)
    p = metrics["parity"]
    shape = "x".join(map(str, metrics["activation_shape"]))
    print(f"split after block {cfg.split_after}: activation {shape}")
    kept = "last" if cfg.dp else "best"
    print(f"{kept} epoch {metrics['best_epoch']}: train accuracy {metrics['train_accuracy']:.3f}, "
          f"validation {metrics['val_accuracy']:.3f}")
    if cfg.dp:
        priv = metrics["privacy"]
        print(f"DP-SGD, {priv['sampling']} sampling, n = {priv['n']:,}, {priv['steps']:,} steps: "
              f"ε = {priv['epsilon']['rdp']:.2f} (RDP), {priv['epsilon']['pld']:.2f} (PLD) at "
              f"δ = {priv['delta']:g}")
    print(f"TFLite parity on {p['images']} images: float32 max diff {p['float32_max_abs_diff']:.1e}; "
          f"int8 relative error {p['int8_relative_error']:.3f}, "
          f"top-1 agreement {p['int8_top1_agreement']:.3f}")
    if metrics.get("defence", {}).get("edge_defense"):
        print(f"the head trained on noise at {args.train_noise} x the activation's std "
              f"({metrics['defence']['activation_std']:.4g}): deploy with --defense "
              f"{metrics['defence']['edge_defense']}")
    print(f"wrote {out}")
    return 0
