"""The main job: train (or reuse) the lite target, then run broker, cloud head and edge node,
and check the accuracy measured over MQTT against the same images classified offline."""

from pathlib import Path

from splitleak.tools.cmd_data import add_data_options


def add_arguments(parser) -> None:
    parser.add_argument("--run", metavar="RUN_DIR", default="runs/lite",
                        help="the lite run to reuse, or to train if missing (default: runs/lite)")
    parser.add_argument("--epochs", type=int, default=20, help="epochs if training is needed")
    parser.add_argument("--count", type=int, help="frames to stream (default: all 409 validation)")
    parser.add_argument("--engine", choices=("amqtt", "mosquitto"), default="amqtt")
    add_data_options(parser)


def ensure_run(run: Path, epochs: int, proto) -> None:
    """Reuse a finished lite run, or train one."""
    from splitleak.cloud import train

    if (run / "manifest.json").is_file():
        print(f"reusing {run} (delete it to retrain)")
    else:
        print(f"training the lite target into {run} ({epochs} epochs)")
        train.run(proto, train.TrainConfig(epochs=epochs), run)


def run(args) -> int:
    from splitleak.cloud import artifacts
    from splitleak.cloud.data import load_protocol
    from splitleak.tools.demo import run_pipeline

    run_dir = Path(args.run)
    proto = load_protocol("lite", args.omniglot_dir)
    ensure_run(run_dir, args.epochs, proto)
    metrics = artifacts.read_json(run_dir / "metrics.json")
    print(f"lite target: validation accuracy {metrics['val_accuracy']:.3f} "
          f"(train {metrics['train_accuracy']:.3f}, best epoch {metrics['best_epoch']})")
    result = run_pipeline(run_dir, proto, args.count, args.engine)
    print(f"over MQTT: {result['predictions_received']}/{result['frames']} predictions, accuracy "
          f"{result['mqtt_accuracy']:.4f}; offline on the same images {result['offline_accuracy']:.4f}"
          f"; agreement {result['agreement']:.4f}")
    ok = result["complete"] and result["agreement"] == 1.0
    print("demo: OK, the deployment answers exactly as the offline model" if ok else
          "demo: MISMATCH between the deployment and the offline model")
    return 0 if ok else 1
