"""The main job: train (or reuse) the `lite` target and export its mobile stage to TFLite."""

from pathlib import Path

from splitleak.tools.cmd_data import add_data_options


def add_arguments(parser) -> None:
    parser.add_argument("--run", metavar="RUN_DIR", default="runs/lite",
                        help="the lite run to reuse, or to train if missing (default: runs/lite)")
    parser.add_argument("--epochs", type=int, default=20, help="epochs if training is needed")
    add_data_options(parser)


def ensure_run(run: Path, epochs: int, omniglot_dir=None) -> dict:
    """Reuse a finished lite run, or train one; return its manifest."""
    from splitleak.cloud import artifacts, train
    from splitleak.cloud.data import load_protocol

    if (run / "manifest.json").is_file():
        print(f"reusing {run} (delete it to retrain)")
    else:
        print(f"training the lite target into {run} ({epochs} epochs)")
        train.run(load_protocol("lite", omniglot_dir), train.TrainConfig(epochs=epochs), run)
    return artifacts.read_json(run / "manifest.json")


def run(args) -> int:
    from splitleak.cloud import artifacts

    run_dir = Path(args.run)
    ensure_run(run_dir, args.epochs, args.omniglot_dir)
    metrics = artifacts.read_json(run_dir / "metrics.json")
    p = metrics["parity"]
    print(f"lite target: validation accuracy {metrics['val_accuracy']:.3f} "
          f"(train {metrics['train_accuracy']:.3f}, best epoch {metrics['best_epoch']})")
    print(f"mobile stage for the edge: {run_dir / 'mobile.tflite'} "
          f"(float32, max diff vs Keras {p['float32_max_abs_diff']:.1e}) and "
          f"{run_dir / 'mobile_int8.tflite'} (int8, top-1 agreement {p['int8_top1_agreement']:.3f})")
    return 0
