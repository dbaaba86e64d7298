"""The main job, end to end on one machine: train (or reuse) the lite target and a black-box
decoder; run the broker, the cloud head, an eavesdropper and an edge node; check the accuracy
measured over MQTT against the same images classified offline; write a report of what leaked."""

from pathlib import Path

from splitleak.attack.config import TrainConfig as DecoderConfig
from splitleak.broker.profiles import ENGINES
from splitleak.cloud.config import TrainConfig
from splitleak.edge.defences import SPECS as DEFENSE_SPECS
from splitleak.tools.cmd_data import add_data_options
from splitleak.tools.cmd_train import add_run_options, default_run_dir, pick_run

# The demo's decoder stops here at the latest, so that `make demo` stays within 5 minutes on
# 2 cores. On seed 1, early stopping alone ran 37 epochs and kept the 29th: validation loss
# 0.3202 against 0.3204 at epoch 25.
DEMO_ATTACK_EPOCHS = 25


def add_arguments(parser) -> None:
    add_run_options(parser, "the lite run to reuse, or to train if missing")
    parser.add_argument("--epochs", type=int, default=TrainConfig.epochs,
                        help="target epochs if training is needed")
    parser.add_argument("--attack-dir", type=Path,
                        help="the decoder to reuse, or to train if missing or stale "
                             "(default: runs/attack-lite, or runs/attack-lite-k<K>)")
    parser.add_argument("--attack-epochs", type=int, default=DEMO_ATTACK_EPOCHS,
                        help=f"decoder epochs at most if training is needed (default: "
                             f"{DEMO_ATTACK_EPOCHS}; `attack train`: {DecoderConfig.epochs})")
    parser.add_argument("--no-attack", action="store_true", help="run the pipeline only")
    parser.add_argument("--web", default="127.0.0.1:8088", metavar="HOST:PORT",
                        help="the eavesdropper's live page (port 0 picks a free one)")
    parser.add_argument("--rate", type=float, default=50.0, metavar="HZ",
                        help="edge frames per second, slow enough to watch (0 = as fast as possible)")
    parser.add_argument("--count", type=int, help="frames to stream (default: all 409 validation)")
    parser.add_argument("--engine", choices=ENGINES, default="amqtt")
    parser.add_argument("--defense", metavar="SPEC",
                        help=f"defences the node applies to each activation: {DEFENSE_SPECS}")
    parser.add_argument("--out", default="runs/demo", help="report folder (default: runs/demo)")
    add_data_options(parser)


def ensure_run(run: Path, epochs: int, proto, split_after: int) -> None:
    """Reuse a finished lite run, or train one cut after block `split_after`."""
    from splitleak.cloud import train

    if (run / "manifest.json").is_file():
        print(f"reusing {run} (delete it to retrain)")
    else:
        print(f"training the lite target, split after block {split_after}, into {run} "
              f"({epochs} epochs)")
        train.run(proto, TrainConfig(epochs=epochs, split_after=split_after), run)


def ensure_decoder(attack_dir: Path, run: Path, epochs: int, proto) -> None:
    """Reuse a decoder trained against this run's mobile.tflite, or train one (black box)."""
    from splitleak.attack import store
    from splitleak.tools.cmd_attack import train_decoder

    target = store.target_info(run / "mobile.tflite")
    if (attack_dir / "manifest.json").is_file():
        if store.load_manifest(attack_dir)["target"]["sha256"] == target["sha256"]:
            print(f"reusing the decoder in {attack_dir}")
            return
        print(f"{attack_dir} was trained against another target: retraining it")
    print(f"training a black-box decoder into {attack_dir} (up to {epochs} epochs)")
    train_decoder(target, proto, DecoderConfig(epochs=epochs), attack_dir, force=True)


def run(args) -> int:
    from splitleak.cloud import artifacts
    from splitleak.cloud.data import load_protocol
    from splitleak.edge.defences import parse
    from splitleak.tools.demo import run_pipeline

    if args.epochs < 1 or args.attack_epochs < 1:
        raise ValueError("--epochs and --attack-epochs must be positive integers")
    parse(args.defense)  # refused before anything trains
    run_dir, split_after = pick_run(args.run, args.split_after)
    attack_dir = args.attack_dir or Path(default_run_dir("lite", split_after, "attack-"))
    proto = load_protocol("lite", args.omniglot_dir)
    ensure_run(run_dir, args.epochs, proto, split_after)
    metrics = artifacts.read_json(run_dir / "metrics.json")
    shape = artifacts.read_json(run_dir / "manifest.json")["activation"]["shape"]
    print(f"lite target, split after block {split_after} (activation {'x'.join(map(str, shape))}): "
          f"validation accuracy {metrics['val_accuracy']:.3f} "
          f"(train {metrics['train_accuracy']:.3f}, best epoch {metrics['best_epoch']})")
    if not args.no_attack:
        ensure_decoder(attack_dir, run_dir, args.attack_epochs, proto)
    result = run_pipeline(run_dir, proto, args.count, args.engine, rate=args.rate,
                          attack_dir=None if args.no_attack else attack_dir, web=args.web,
                          out=Path(args.out), defense=args.defense)
    if result["defense"]:
        print(f"defence on the edge: {result['defense']} (seeded; the offline check draws the "
              "same noise)")
    print(f"over MQTT: {result['predictions_received']}/{result['frames']} predictions, accuracy "
          f"{result['mqtt_accuracy']:.4f}; offline on the same images {result['offline_accuracy']:.4f}"
          f"; agreement {result['agreement']:.4f}")
    if "attacker" in result:
        a = result["attacker"]
        print(f"eavesdropper: {a['reconstructed']} of {a['seen']} frames reconstructed")
        print(f"report: {result['report']}")
    ok = result["complete"] and result["agreement"] == 1.0
    print("demo: OK, the deployment answers exactly as the offline model" if ok else
          "demo: MISMATCH between the deployment and the offline model")
    return 0 if ok else 1
