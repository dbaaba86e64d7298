"""Benchmarks (JSON with --json).

`tflite`: ms per image for Keras, TFLite float32 and int8.
`pipeline`: a broker, the cloud head and edge node(s) on this machine; frames per second,
lost frames and latency from capture on the edge to the prediction published by the cloud.
`attack`: frames per second a trained decoder reconstructs, alone and as the live eavesdropper
behind a fresh broker (goal: 1,000 frames/s on a 2-core CPU).
`dp`: seconds per epoch of DP-SGD training against non-private training of the same network
(ours on Poisson batches; ours and tensorflow-privacy's on shuffled batches).
`flood`: fake node ids without end against the subscribers' per-node state.
`all`: every benchmark in one JSON; `docs` rewrites the figures README.md and docs/ quote from it.
"""

import json
import sys
from pathlib import Path

from splitleak.broker.profiles import ENGINES
from splitleak.cloud.config import SPLITS
from splitleak.cloud.service import BATCH
from splitleak.tools.bench import (
    attack,
    docs,
    dp,
    faults,
    flood,
    fuzz,
    pipeline,
    soak,
    suite,
    tflite,
)
from splitleak.tools.bench.target import ENGINE
from splitleak.tools.cli.options import add_data_options, add_run_options


def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="bench", required=True, metavar="BENCH")
    p = _bench(sub, "tflite", _tflite, tflite.describe,
               "ms per image of the mobile stage: Keras vs TFLite",
               "Median ms per single image after warm-up, batch size 1; the TFLite stages on "
               "each --threads count, with the runtime named, and the int8 stage once more on "
               "TFLite's built-in kernels instead of XNNPACK (the edge runs XNNPACK); "
               "int8_over_float32 compares their best thread counts.")
    p.add_argument("run_dir", metavar="RUN_DIR", type=Path)
    p.add_argument("--runs", type=int, default=tflite.RUNS, help="timed runs per engine")
    p.add_argument("--threads", type=int, nargs="+", default=list(tflite.THREADS), metavar="N",
                   help=f"TFLite interpreter threads to time (default: {_listed(tflite.THREADS)})")
    p = _bench(sub, "pipeline", _pipeline, pipeline.describe,
               "broker + cloud head + edge nodes: frames/s, loss, latency",
               "Streams the lite validation images (cycled) from --fleet edge nodes through a fresh "
               "broker to the cloud head. Lost = frames sent minus predictions back at the edge; "
               "latency = capture on the edge -> prediction published (cloud head).")
    add_run_options(p, "a `splitleak train` run")
    _stream_options(p, "frames per node", pipeline.FRAMES)
    p.add_argument("--fleet", type=int, default=pipeline.FLEET, metavar="K",
                   help=f"edge nodes (default: {pipeline.FLEET})")
    p.add_argument("--heads", type=int, default=pipeline.HEADS, metavar="N",
                   help="cloud heads; more than 1 share the stream (MQTT 5 shared subscription)")
    p.add_argument("--rate", type=float, default=pipeline.RATE, metavar="HZ",
                   help="frames per second per node (default: unpaced)")
    p.add_argument("--batch", type=int, default=BATCH, help="cloud head batch size, at most")
    add_data_options(p)
    p = _bench(sub, "attack", _attack, attack.describe,
               "decoder and live eavesdropper: frames/s reconstructed",
               "Decoder alone: best of 3 passes over 2,048 frames in batches of 256. Live: --frames "
               "frames published through a fresh broker while the eavesdropper reconstructs them, "
               "timed from the first publish to the last reconstruction.")
    p.add_argument("--decoder", type=Path, default=attack.DECODER, metavar="ATTACK_DIR",
                   help=f"a `splitleak attack train` folder (default: {attack.DECODER})")
    _stream_options(p, "frames to stream", attack.FRAMES)
    p = _bench(sub, "fuzz", _fuzz, fuzz.describe,
               "generated malformed messages at a running cloud head and eavesdropper",
               "Publishes --messages generated messages (valid frames with odd values, damaged "
               "and cut frames, random bytes, junk statuses, bad topics; seeded) through a fresh "
               "broker, then a probe frame. Both subscribers must stay up, answer the probe and "
               "count every message under the reason the wire decoder gives; exit 1 otherwise.")
    _deployment_options(p)
    p.add_argument("--messages", type=int, default=fuzz.MESSAGES,
                   help=f"how many (default: {fuzz.MESSAGES})")
    p.add_argument("--seed", type=int, default=fuzz.SEED,
                   help=f"generator seed (default: {fuzz.SEED})")
    p = _bench(sub, "soak", _soak, soak.describe,
               "an emulated fleet at a fixed rate for a while: loss and memory growth",
               "Streams --nodes emulated nodes at --rate frames/s each for --seconds through a "
               "fresh broker, with the cloud head and the eavesdropper attached. Passes (exit 0) "
               "when nothing is lost (every frame answered, counted by the eavesdropper, no "
               "sequence gap) and every process's resident memory stays within "
               f"{soak.FLAT * 100:g} % from the end of the warm-up to the end.")
    _deployment_options(p)
    p.add_argument("--nodes", type=int, default=soak.NODES,
                   help=f"emulated nodes (default: {soak.NODES})")
    p.add_argument("--rate", type=float, default=soak.RATE,
                   help=f"frames/s per node (default: {soak.RATE:g})")
    p.add_argument("--seconds", type=float, default=soak.SECONDS,
                   help=f"how long (default: {soak.SECONDS:g})")
    add_data_options(p)
    p = _bench(sub, "flood", _flood, flood.describe,
               "fake node ids without end: do the subscribers' memory and a real node hold?",
               "Publishes one valid frame from each of --nodes fake node ids through a fresh "
               "broker (paced by the cloud head's answers), with the cloud head and the "
               "eavesdropper each keeping at most --max-nodes nodes, then streams a real node. "
               f"Passes (exit 0) when neither subscriber's resident memory grew more than "
               f"{flood.FLAT * 100:g} % after the first {flood.WARMUP * 100:g} % of the flood and "
               "every real frame was answered.")
    _deployment_options(p)
    p.add_argument("--nodes", type=int, default=flood.NODES,
                   help=f"fake node ids (default: {flood.NODES})")
    p.add_argument("--max-nodes", type=int, metavar="N",
                   help="nodes each subscriber keeps (default: theirs)")
    add_data_options(p)
    p = _bench(sub, "faults", _faults, faults.describe,
               "crashes mid-stream: broker twice, cloud head, an edge node; what is lost, and why",
               "Mosquitto only (amqtt keeps nothing across a restart). Two nodes stream at QoS 1 "
               "with the cloud head attached; a third node is killed (its retained status must "
               "turn offline: the last will); the broker is killed (SIGKILL) after a save and "
               "restarted, twice; the cloud head is killed and restarted with its session. Each "
               "missing frame is lost by design (acknowledged after the broker's last save "
               "before a kill) or unexplained; exit 1 if any is unexplained, a process did not "
               "recover or the status is wrong.")
    _deployment_options(p)
    p.add_argument("--frames", type=int, default=faults.FRAMES,
                   help=f"frames per node (default: {faults.FRAMES})")
    p.add_argument("--rate", type=float, default=faults.RATE, metavar="HZ",
                   help=f"frames/s per node (default: {faults.RATE:g})")
    add_data_options(p)
    p = _bench(sub, "dp", _dp, dp.describe,
               "DP-SGD against non-private training: seconds per epoch",
               "Trains the lite target four times in one process, the same network (GroupNorm, "
               "no dropout, no augmentation) and batch size: non-private (shuffled batches), "
               f"DP-SGD (Poisson batches, noise {dp.NOISE}), and on shuffled batches DP-SGD by "
               "ours and by tensorflow-privacy's DPModel. Seconds per epoch = median over the "
               "epochs after the first (which traces the graphs). Bar: ratio <= "
               f"{dp.BAR:g}; goal <= {dp.GOAL:g}.")
    p.add_argument("--epochs", type=int, default=dp.EPOCHS,
                   help=f"epochs of each (default: {dp.EPOCHS})")
    p.add_argument("--limit", type=int, help="train on the first N images (default: all)")
    p.add_argument("--batch", type=int, default=dp.BATCH)
    add_data_options(p)
    _all_parser(sub)
    _docs_parser(sub)


def _all_parser(sub) -> None:
    """`bench all` (tools/bench/suite.py): its own --json FILE, and the markdown table printed."""
    p = sub.add_parser("all", help="every benchmark in one run, one JSON",
                       description=suite.__doc__.split("\n\n")[1].replace("\n", " "))
    p.set_defaults(_bench=_all, _describe=suite.describe, json=False)
    p.add_argument("--json", dest="json_file", metavar="FILE", type=Path,
                   help=f"also write the report to FILE (then `{docs.DOCS_COMMAND} --json FILE` "
                   "rewrites the figures in README.md and docs/ from it)")
    p.add_argument("--splits", type=int, nargs="+", default=list(SPLITS), metavar="K",
                   help=f"split depths for the TFLite part (default: {_listed(SPLITS)})")
    p.add_argument("--run", type=Path, metavar="RUN_DIR",
                   help="one run for every part instead of runs/lite(-kK) (tests, other runs)")
    p.add_argument("--decoder", type=Path, default=attack.DECODER, metavar="ATTACK_DIR")
    p.add_argument("--skip", nargs="+", choices=suite.PARTS, default=[], metavar="PART",
                   help=f"leave parts out: {_listed(suite.PARTS)}")
    p.add_argument("--quick", action="store_true",
                   help="small sizes (seconds, for CI): the numbers are not comparable")


def _docs_parser(sub) -> None:
    """`bench docs` (tools/bench/suite.py): the marked blocks of README.md and docs/ rewritten."""
    p = sub.add_parser("docs", help="rewrite the benchmark figures in README.md and docs/ from "
                       "the `bench all` report",
                       description="Rewrites every block between `bench:NAME` markers in "
                       "README.md and docs/**/*.md with what generator NAME makes of the report "
                       f"(default: {docs.REPORT} in this checkout). --check writes nothing and "
                       "exits 1 when a block is out of date.")
    p.set_defaults(_bench=_docs, _describe=docs.describe_docs, json=False)
    p.add_argument("--json", dest="json_file", metavar="FILE", type=Path,
                   help=f"the `bench all` report (default: {docs.REPORT})")
    p.add_argument("--check", action="store_true",
                   help="write nothing; exit 1 if a block differs from its generator's output")


def _bench(sub, name: str, bench, describe, help: str, description: str):
    """A benchmark's sub-parser: `bench(args)` returns the report, `describe(report)` its text."""
    p = sub.add_parser(name, help=help, description=description)
    p.set_defaults(_bench=bench, _describe=describe)
    p.add_argument("--json", action="store_true", help="print JSON only")
    return p


def _listed(values) -> str:
    return " ".join(map(str, values))


def _deployment_options(p) -> None:
    """--run / --split-after and --engine: a run deployed behind a fresh broker."""
    add_run_options(p, "a `splitleak train` run")
    p.add_argument("--engine", choices=ENGINES, default=ENGINE, help=f"broker (default: {ENGINE})")


def _stream_options(p, frames: str, default: int) -> None:
    p.add_argument("--engine", choices=ENGINES, default=ENGINE, help=f"broker (default: {ENGINE})")
    p.add_argument("--frames", type=int, default=default, help=f"{frames} (default: {default})")


def _tflite(args) -> dict:
    return tflite.run(args.run_dir, runs=args.runs, threads=args.threads)


def _pipeline(args) -> dict:
    return pipeline.run(args.run, split_after=args.split_after, engine=args.engine,
                        frames=args.frames, fleet=args.fleet, heads=args.heads, rate=args.rate,
                        batch=args.batch, omniglot_dir=args.omniglot_dir)


def _attack(args) -> dict:
    return attack.run(args.decoder, engine=args.engine, frames=args.frames)


def _fuzz(args) -> dict:
    return fuzz.run(args.run, split_after=args.split_after, engine=args.engine, n=args.messages,
                    seed=args.seed)


def _soak(args) -> dict:
    return soak.run(args.run, split_after=args.split_after, engine=args.engine, nodes=args.nodes,
                    rate=args.rate, seconds=args.seconds, omniglot_dir=args.omniglot_dir)


def _flood(args) -> dict:
    return flood.run(args.run, split_after=args.split_after, engine=args.engine, nodes=args.nodes,
                     max_nodes=args.max_nodes, omniglot_dir=args.omniglot_dir,
                     progress=not args.json)


def _faults(args) -> dict:
    return faults.run(args.run, split_after=args.split_after, engine=args.engine,
                      frames=args.frames, rate=args.rate, omniglot_dir=args.omniglot_dir)


def _dp(args) -> dict:
    return dp.run(epochs=args.epochs, batch=args.batch, limit=args.limit,
                  omniglot_dir=args.omniglot_dir)


def _all(args) -> dict:
    report = suite.run(splits=args.splits, run_dir=args.run, decoder=args.decoder,
                       skip=args.skip, quick=args.quick, json_file=args.json_file)
    if args.json_file:
        print(f"wrote {args.json_file}; `{docs.DOCS_COMMAND} --json {args.json_file}` rewrites "
              "the figures in README.md and docs/ from it", file=sys.stderr)
    return report


def _docs(args) -> dict:
    return docs.render_files(args.json_file, check=args.check)


def run(args) -> int:
    report = args._bench(args)
    print(json.dumps(report, indent=2) if args.json else args._describe(report))
    return 0 if report.get("passed", True) else 1
