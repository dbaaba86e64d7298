"""The main job, end to end on one machine: train (or reuse) the lite target and a black-box
decoder; run the broker, the cloud head, an eavesdropper and an edge node; check the accuracy
measured over MQTT against the same images classified offline; write a report of what leaked.
With `--source camera` (or camera:N, video:FILE) the node streams what its camera sees, and the
check is the deployment against the head offline on what the model received."""

from pathlib import Path

from splitleak.attack.config import TrainConfig as DecoderConfig
from splitleak.broker.profiles import ENGINES
from splitleak.cloud.config import TrainConfig
from splitleak.cloud.data import DEFAULT_SOURCE
from splitleak.cloud.rundir import default_attack_dir
from splitleak.edge.camera import LIVE_SOURCES, is_live
from splitleak.tools.cli.options import add_data_options, add_defense_option, add_run_options
from splitleak.tools.deploy.settings import DEMO_ATTACK_EPOCHS, DEMO_OUT, DEMO_RATE, DEMO_WEB


def add_arguments(parser) -> None:
    add_run_options(parser, "the lite run to reuse, or to train if missing")
    parser.add_argument("--epochs", type=int, default=TrainConfig.epochs,
                        help="target epochs if training is needed")
    parser.add_argument("--attack-dir", type=Path,
                        help="the decoder to reuse, or to train if missing or stale "
                             f"(default: {default_attack_dir()}, or {default_attack_dir()}-k<K>)")
    parser.add_argument("--attack-epochs", type=int, default=DEMO_ATTACK_EPOCHS,
                        help=f"decoder epochs at most if training is needed (default: "
                             f"{DEMO_ATTACK_EPOCHS}; `attack train`: {DecoderConfig.epochs})")
    parser.add_argument("--no-attack", action="store_true", help="run the pipeline only")
    parser.add_argument("--web", default=DEMO_WEB, metavar="HOST:PORT",
                        help="the eavesdropper's live page (port 0 picks a free one)")
    parser.add_argument("--rate", type=float, default=DEMO_RATE, metavar="HZ",
                        help="edge frames per second, slow enough to watch (0 = as fast as possible)")
    parser.add_argument("--count", type=int, help="frames to stream (default: all 409 validation; "
                                                  "a camera: until Ctrl-C)")
    parser.add_argument("--source", default=DEFAULT_SOURCE, metavar="SOURCE",
                        help=f"what the device streams: {DEFAULT_SOURCE} (default), or live: "
                             f"{LIVE_SOURCES}")
    parser.add_argument("--engine", choices=ENGINES, default="amqtt")
    add_defense_option(parser, "defences the node applies to each activation")
    parser.add_argument("--out", default=DEMO_OUT, help=f"report folder (default: {DEMO_OUT})")
    add_data_options(parser)


def run(args) -> int:
    from splitleak.attack.train import ensure_decoder
    from splitleak.cloud import rundir
    from splitleak.cloud.data import load_protocol
    from splitleak.cloud.train import ensure_run
    from splitleak.edge.defences import parse
    from splitleak.tools.deploy.demo import run_pipeline

    if args.epochs < 1 or args.attack_epochs < 1:
        raise ValueError("--epochs and --attack-epochs must be positive integers")
    parse(args.defense)  # refused before anything trains
    if args.source != DEFAULT_SOURCE and not is_live(args.source):
        raise ValueError(f"--source {args.source!r}: the demo streams {DEFAULT_SOURCE} or, live, "
                         f"{LIVE_SOURCES}")
    run_dir, split_after = rundir.pick_run(args.run, args.split_after)
    attack_dir = args.attack_dir or rundir.default_attack_dir(split_after)
    proto = load_protocol(rundir.DEFAULT_PROTOCOL, args.omniglot_dir)
    ensure_run(run_dir, args.epochs, proto, split_after)
    metrics = rundir.read_metrics(run_dir)
    shape = rundir.activation_shape(run_dir)
    print(f"lite target, split after block {split_after} (activation {'x'.join(map(str, shape))}): "
          f"validation accuracy {metrics['val_accuracy']:.3f} "
          f"(train {metrics['train_accuracy']:.3f}, best epoch {metrics['best_epoch']})")
    if not args.no_attack:
        ensure_decoder(attack_dir, run_dir, args.attack_epochs, proto)
    if is_live(args.source):
        return _live(args, run_dir, None if args.no_attack else attack_dir)
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


def _live(args, run_dir, attack_dir) -> int:
    from splitleak.tools.deploy.camera import run_live

    result = run_live(run_dir, args.source, args.count, args.engine, rate=args.rate,
                      attack_dir=attack_dir, web=args.web, out=Path(args.out),
                      defense=args.defense)
    edge = result["edge"]
    if not edge["sent"]:
        print(f"demo: none of the {edge['frames_seen']} frames had ink: nothing was sent")
        return 1
    print(f"edge: {edge['sent']} frames with ink sent, {edge['skipped_no_ink']} of "
          f"{edge['frames_seen']} frames skipped (no ink); inputs as the model saw them in "
          f"{Path(args.out) / 'inputs'}")
    print(f"over MQTT: {result['predictions_received']}/{result['frames']} predictions; equal to "
          f"the head's offline on the same inputs: {result['agreement']:.4f}")
    if "attacker" in result:
        print(f"eavesdropper: {result['attacker']['reconstructed']} of {result['frames']} frames "
              f"reconstructed; report: {result['report']}")
    ok = result["complete"] and result["agreement"] == 1.0
    print("demo: OK, the deployment answers exactly as the offline model" if ok else
          "demo: MISMATCH between the deployment and the offline model")
    return 0 if ok else 1
