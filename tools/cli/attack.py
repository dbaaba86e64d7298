"""Model inversion attacks on the mobile stage's activation.

  train     black box: query the deployed TFLite stage on the attacker's surrogate images and
            train a decoder from activations back to images (writes ATTACK_DIR)
  eval      reconstruct a split through the target, score MSE/PSNR/SSIM against baselines
  whitebox  optimisation-based inversion with the stage's weights (rMLE + total variation)
  live      reconstruct the devices' inputs from the MQTT activation topic (cmd_attack_live)
  sniff     the same off the wire, with no broker account: a capture or an interface
  guess     online password guessing against a broker on this machine (loopback only)
"""

import argparse

from splitleak.attack.config import ARCHS, LOSSES, WHITEBOX_IMAGES, TrainConfig, WhiteboxConfig
from splitleak.cloud import rundir
from splitleak.cloud.data import PROTOCOLS
from splitleak.tools.cli import attack_live as live
from splitleak.tools.cli import attack_sniff as sniff
from splitleak.tools.cli.options import add_data_options, add_defense_option, positive

DEFAULTS = TrainConfig()
WHITEBOX = WhiteboxConfig()
SPLITS = ("test", "attacker")


def add_arguments(parser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter  # keep the list above
    sub = parser.add_subparsers(dest="attack_command", required=True, metavar="SUBCOMMAND")

    p = sub.add_parser("train", help="train a decoder by querying the target (black box)")
    p.set_defaults(_attack=_train)
    p.add_argument("--target", required=True, metavar="PATH.tflite",
                   help=f"the deployed mobile stage, e.g. {rundir.mobile(rundir.default_run_dir())}")
    p.add_argument("--protocol", choices=PROTOCOLS,
                   help="whose attacker split to use (default: the target run's, else lite)")
    p.add_argument("--arch", choices=ARCHS, default=DEFAULTS.arch,
                   help=f"decoder (default {DEFAULTS.arch}: ours, shaped to the target's "
                        "activation; seed: the seed's 4 deconvs, 1x1 activations only)")
    p.add_argument("--epochs", type=int, default=DEFAULTS.epochs)
    p.add_argument("--batch", type=int, default=DEFAULTS.batch)
    p.add_argument("--lr", type=float, default=DEFAULTS.learning_rate, help="Adam learning rate")
    p.add_argument("--loss", choices=("auto", *LOSSES), default=DEFAULTS.loss,
                   help="auto: mse for seed, bce+ssim for upsample")
    p.add_argument("--patience", type=int, default=DEFAULTS.patience,
                   help=f"early stopping on the held-out {DEFAULTS.val_percent}%% "
                        "(0: train all epochs, as the seed)")
    p.add_argument("--augment", action="store_true", default=DEFAULTS.augment,
                   help="query freshly augmented surrogate images every epoch")
    p.add_argument("--seed", type=int, default=DEFAULTS.seed)
    p.add_argument("--out", metavar="ATTACK_DIR",
                   help="default: runs/attack-<protocol>-<arch>")
    p.add_argument("--force", action="store_true", help="replace an existing ATTACK_DIR")
    p.add_argument("--limit", type=int, help="use only the first N attacker images (tests)")
    add_defense_option(p, "query the target through these defences (an adaptive attacker)")
    add_data_options(p)

    p = sub.add_parser("eval", help="score a trained decoder on a split, beside baselines")
    p.set_defaults(_attack=_eval)
    p.add_argument("attack_dir", metavar="ATTACK_DIR")
    p.add_argument("--split", choices=SPLITS, default="test")
    p.add_argument("--target", metavar="PATH.tflite", help="default: the one in the manifest")
    add_defense_option(p, "the device applies these defences to the split's activations")
    p.add_argument("--force", action="store_true",
                   help="evaluate even if the target's sha256 differs from the manifest's")
    p.add_argument("--limit", type=int,
                   help="score only the first N images of the split (or frames of the capture)")
    p.add_argument("--from-capture", metavar="FILE",
                   help="reconstruct the frames in a capture file instead of querying the target "
                        "(made by `attack live --record`, or mosquitto_sub -F '%%t %%x')")
    p.add_argument("--truth", metavar="SOURCE",
                   help="with --from-capture: the images the edge streamed (an edge --source: "
                        "lite-val, lite-test, folder:DIR, zip:FILE), to score against")
    add_data_options(p)

    p = sub.add_parser("whitebox", help="invert with the mobile stage's weights (rMLE + TV)")
    p.set_defaults(_attack=_whitebox)
    p.add_argument("--run", required=True, metavar="RUN_DIR", help=f"holds {rundir.MOBILE_KERAS}")
    p.add_argument("--split", choices=SPLITS, default="test")
    p.add_argument("--limit", type=int, default=WHITEBOX_IMAGES, help="first N images of the split")
    p.add_argument("--steps", type=int, default=WHITEBOX.steps, help="Adam steps per batch")
    p.add_argument("--tv-weight", type=float, default=WHITEBOX.tv_weight,
                   help="lambda of the TV prior")
    p.add_argument("--lr", type=float, default=WHITEBOX.learning_rate, help="Adam learning rate")
    p.add_argument("--batch", type=int, default=WHITEBOX.batch)
    add_defense_option(p, "the device applies these defences to the intercepted activations")
    p.add_argument("--start-from", metavar="DECODER_DIR",
                   help="start from this black-box decoder's reconstructions (a learned prior; "
                        "default: a blank page)")
    p.add_argument("--prior-weight", type=float, default=WHITEBOX.prior_weight,
                   help="pull toward the start image (mean squared difference)")
    p.add_argument("--attack-dir", metavar="ATTACK_DIR",
                   help=f"write {rundir.EVAL} there (default: RUN_DIR/whitebox/)")
    p.add_argument("--from-capture", metavar="FILE",
                   help="invert the frames of a capture file (first --limit) instead of a split")
    add_data_options(p)

    p = sub.add_parser("live", help="reconstruct live from the activation topic",
                       description=live.__doc__)
    live.add_arguments(p)
    p.set_defaults(_attack=live.run)

    p = sub.add_parser("sniff", help="read frames and passwords off the wire (passive)",
                       description=sniff.__doc__)
    sniff.add_arguments(p)
    p.set_defaults(_attack=sniff.run)

    p = sub.add_parser("guess", help="guess a user's password from a word list (local broker only)")
    p.set_defaults(_attack=_guess)
    p.add_argument("--broker", required=True, metavar="URL",
                   help="mqtt://host:port of a broker on this machine (others are refused)")
    p.add_argument("--user", required=True, help="the user name to guess for, e.g. a node id")
    p.add_argument("--wordlist", required=True, metavar="FILE", help="one candidate per line")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace) -> int:
    return args._attack(args)


def _train(args) -> int:
    positive(epochs=args.epochs, batch=args.batch, limit=args.limit)
    from splitleak.attack.train import train_against

    cfg = TrainConfig(arch=args.arch, epochs=args.epochs, batch=args.batch, learning_rate=args.lr,
                      loss=args.loss, augment=args.augment, patience=args.patience,
                      seed=args.seed)
    train_against(args.target, cfg, args.out, args.protocol, args.force, args.limit, args.defense,
                  args.omniglot_dir)
    return 0


def _eval(args) -> int:
    positive(limit=args.limit)
    from splitleak.attack import evaluate

    if args.from_capture:
        return _eval_capture(args)
    if args.truth:
        raise ValueError("--truth goes with --from-capture")
    e = evaluate.score_blackbox(args.attack_dir, args.split, args.target, args.force,
                                args.omniglot_dir, args.limit, args.defense)
    e.result["frames_per_s"] = evaluate.speed(args.attack_dir, e.activations)
    path = evaluate.save(args.attack_dir, e)
    result = e.result
    defended = f" through {result['defense']} ({result['attacker']} attacker)" \
        if result["defense"] else ""
    _print_scores(result, f"black box on {args.split}{defended}")
    own = result["training_images"]
    print(f"  MSE on its {own['n']} training images: {own['mse']:.4f} "
          f"(the seed's final training loss: {own['seed_final_training_loss']})")
    fps = result["frames_per_s"]
    print(f"  reconstruction speed: {fps['value']:.0f} frames/s (batch {fps['batch']})")
    print(f"wrote {path}")
    return 0


def _eval_capture(args) -> int:
    from splitleak.attack import evaluate
    from splitleak.cloud.data import load_source

    truth = load_source(args.truth, args.omniglot_dir) if args.truth else None
    e = evaluate.score_capture(args.attack_dir, args.from_capture, truth, args.omniglot_dir,
                               args.limit)
    path = evaluate.save(args.attack_dir, e)
    print(f"capture {args.from_capture}: {e.result['frames']} frames reconstructed from "
          f"{len(e.result['nodes'])} node(s), rejected {e.result['rejected'] or 'none'}")
    if truth is not None:
        _print_scores(e.result, "black box on the captured frames")
    print(f"wrote PNGs under {path.parent / e.name} and {path}")
    return 0


def _whitebox(args) -> int:
    positive(limit=args.limit, steps=args.steps, batch=args.batch)
    from splitleak.attack import evaluate

    cfg = WhiteboxConfig(steps=args.steps, learning_rate=args.lr, tv_weight=args.tv_weight,
                         prior_weight=args.prior_weight, batch=args.batch)
    folder = evaluate.whitebox_dir(args.run, args.attack_dir)
    e = evaluate.score_whitebox(args.run, args.split, args.limit, cfg, args.omniglot_dir,
                                args.from_capture, args.start_from, args.defense)
    path = evaluate.save(folder, e)
    _print_scores(e.result, "white box on " + ("the captured frames" if args.from_capture
                                               else args.split))
    t = e.result["trace"]
    print(f"  activation loss {t['initial']['activation']:.4f} -> {t['final']['activation']:.4f}")
    print(f"wrote {path}")
    return 0


def _print_scores(result: dict, title: str) -> None:
    if result["reconstruction"] is None:
        print(f"{title}: {result['n']} images, not scored (no true images to compare with)")
        return
    print(f"{title} ({result['n']} images)")
    print(f"  {'':<30} {'MSE':>6}  {'PSNR':>6}  {'SSIM':>6}  top-1  top-5  median rank")
    rows = [("reconstruction", result["reconstruction"])]
    rows += [(f"baseline: {k.replace('_', ' ')}", v) for k, v in result["baselines"].items()]
    rows += [(f"  {k}", v) for k, v in result["per_group"].items()]
    for name, s in rows:
        psnr = f"{s['psnr']:6.2f}" if s["psnr"] is not None else "   inf"
        i = s["identification"]
        print(f"  {name:<30} {s['mse']:.4f}  {psnr}  {s['ssim']:6.3f}  {i['top1']:.3f}  "
              f"{i['top5']:.3f}  {i['median_rank']:11g}")
    i = result["reconstruction"]["identification"]
    print(f"  top-1/top-5: own original first/in the first 5 of all {i['n']} by "
          f"{i['similarity']} similarity; chance {i['chance_top1']:.3g} (1/N), "
          f"{i['chance_top5']:.3g} (5/N)")


def _guess(args) -> int:
    import json

    from splitleak.attack.guess import guess, read_words

    r = guess(args.broker, args.user, read_words(args.wordlist))
    if args.json:
        print(json.dumps(r))
    elif r["found"]:
        print(f"found {r['user']}'s password {r['password']!r} after {r['tried']} of "
              f"{r['candidates']} guesses ({r['seconds']:.1f} s, {r['guesses_per_s']} guesses/s)")
    else:
        print(f"not found: none of {r['candidates']} candidates is {r['user']}'s password "
              f"({r['seconds']:.1f} s)")
    return 0 if r["found"] else 1
