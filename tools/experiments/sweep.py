"""The privacy experiment: per setting and seed, train the target, attack it, measure what leaks;
resumable, and shardable across machines.

Per setting (tools/experiments/settings.py): train (or reuse) the lite target and a black-box
decoder on clean queries (the naive attacker) and, with an edge defence, one on defended queries
(the adaptive attacker); score both on the defended test activations. The white box inverts the
first test images from the stronger attacker's reconstruction (a learned prior), and the stronger
black box is scored again on those images, ranked among them as the white box is. Also per
setting: the deployment's accuracy, the activation's shape, bytes per frame, scale and distance
correlation with the images.

Each (setting, seed) is one job and one row file in the results folder (tools/experiments/
results.py), written when the job ends, with its provenance; a rerun skips the rows there. Models,
grids and the work folder's results.json/csv/md, plot and report.html stay in the work folder. No
eval.json is written: decoders are shared between settings, so one file would hold whichever
setting ran last.
"""

import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from splitleak.cloud import artifacts, rundir
from splitleak.tools.experiments import provenance, report, results, settings, tables

RESULTS = "results.json"  # the work folder's rows, by key, as one file (lab 4's check reads it)
CODE_FILE = "code.json"  # the work folder's code hash (provenance.code_hash) its models came from


@dataclass
class Sweep:
    """A sweep's run: its folders, network, rows (every row of the results folder), table, the
    files written, and how long this run took."""

    out: Path
    results: Path
    recipe: str
    rows: list[dict]
    table: str
    written: list[Path]
    seconds: float


def run_sweep(preset_name: str, out: Path | None = None, config: Path | None = None,
              protocol: str = "lite", omniglot_dir=None, seeds=None, shard=None,
              results_dir: Path | None = None, dry_run: bool = False) -> Sweep:
    """Run every job (setting x seed) of a preset, or of shard (I, N) of it, whose row is not in
    the results folder yet (default OUT/results), then write the report there and the work
    folder's files. dry_run: print the plan and the estimate only."""
    chosen = settings.with_config(settings.preset(preset_name), config)
    network = settings.recipe(chosen)
    seeds = settings.seeds_for(preset_name, chosen, seeds)
    every = settings.jobs(chosen, seeds)
    mine = settings.shard(every, *shard) if shard else every
    out = Path(out or f"runs/experiment-{preset_name}")
    folder = Path(results_dir or out / "results")
    overrides = artifacts.read_json(config) if config else None
    cfg = results.config(preset_name, network, protocol, [asdict(s) for s in chosen], seeds,
                         overrides, folder, config)
    done = results.row_keys(folder) if (folder / results.CONFIG).is_file() else set()
    if not dry_run:
        _prepare(out, folder, cfg)
    print(plan(preset_name, chosen, seeds, every, mine, shard, done, out, network, folder),
          flush=True)
    if dry_run:
        return Sweep(out, folder, network, [], "", [], 0.0)
    from splitleak.cloud.data import load_protocol

    proto = load_protocol(protocol, omniglot_dir)
    stamp = provenance.stamp() | {"shard": f"{shard[0]}/{shard[1]}" if shard else None}
    start = time.monotonic()
    for i, s in enumerate(mine, 1):
        label = f"[{i}/{len(mine)}] {s.name}" + (f", seed {s.seed}" if s.seed is not None else "")
        if s.key() in done:
            print(f"{label}: done before, skipped", flush=True)
            continue
        began = time.monotonic()
        print(f"{label} ({s.key()})", flush=True)
        row = run_setting(s, proto, out)
        seconds = round(time.monotonic() - began, 1)
        results.write_row(folder, row | {"provenance": stamp | {"date": provenance.now(),
                                                                 "seconds": seconds}})
        _write_view(out, folder)
        print(f"{label}: {seconds / 60:.1f} min", flush=True)
    return _finish(out, folder, preset_name, network, time.monotonic() - start)


def plan(preset_name, chosen, seeds, every, mine, shard, done, out, network, folder) -> str:
    """What the sweep will do and the estimated wall time, whole and what is left."""
    said = ", ".join("default" if s is None else str(s) for s in seeds)
    part = f"; shard {shard[0]}/{shard[1]}: {len(mine)} jobs" if shard else ""
    left = sum(s.key() in done for s in mine)
    return (f"preset {preset_name}: {len(chosen)} settings x {len(seeds)} seed(s) ({said}) = "
            f"{len(every)} jobs{part}, {left} already done\n"
            f"network: {network}\nresults: {folder} (rows); work: {out} (models)\n"
            f"estimated on a 2-core CPU: the whole sweep from scratch "
            f"{duration(settings.estimate_seconds(every, set()))}; "
            f"left for this run {duration(settings.estimate_seconds(mine, done, out))}")


def duration(seconds: float) -> str:
    return f"about {seconds / 3600:.1f} h" if seconds >= 7200 else f"about {seconds / 60:.0f} min"


def _write_view(out: Path, folder: Path) -> list[dict]:
    """The work folder's results.json: the results folder's rows by key."""
    cfg, rows = results.read(folder)
    artifacts.write_json(out / RESULTS, {"preset": cfg["preset"], "recipe": cfg["recipe"],
                                         "results": str(folder),
                                         "settings": {r["key"]: r for r in rows}})
    return rows


def _prepare(out: Path, folder: Path, cfg: dict) -> None:
    """Refuse a results folder of another sweep or other code, and a work folder whose models
    other code trained (CODE_FILE: reusing them would credit their rows to this code); then
    write both folders' records, keeping a results.json from before results folders aside."""
    code, marker = cfg["code"]["sha256"], out / CODE_FILE
    if marker.is_file() and artifacts.read_json(marker)["sha256"] != code:
        raise ValueError(f"{out} holds models trained by other code (sha256 "
                         f"{artifacts.read_json(marker)['sha256'][:12]}, now {code[:12]}); the "
                         "sweep would reuse them: pass another --out, or remove that folder")
    results.open_folder(folder, cfg)
    if not marker.is_file() and (out / settings.TARGETS).is_dir():
        print(f"warning: {out} holds models from before code hashes were recorded; they are "
              "reused and their rows credited to this code: pass a fresh --out to retrain",
              flush=True)
    out.mkdir(parents=True, exist_ok=True)
    artifacts.write_json(marker, {"sha256": code, "files": list(provenance.CODE)})
    path = out / RESULTS
    if path.is_file() and "results" not in artifacts.read_json(path):
        path.replace(out / "results-legacy.json")
        print(f"kept the earlier {path} as results-legacy.json", flush=True)


def _finish(out: Path, folder: Path, preset_name: str, network: str, seconds: float) -> Sweep:
    """The report in the results folder; the work folder's results.json/csv/md, plot, report."""
    rows = _write_view(out, folder)
    done = report.write(folder)
    written = [out / RESULTS]
    if rows:
        written.append(tables.save_csv(out, rows))
    for path in done.written:
        if path.parent.resolve() != out.resolve():
            written.append(Path(shutil.copy(path, out / path.name)))
    written.append(tables.save_report(out, preset_name, network, rows, seconds))
    return Sweep(out, folder, network, rows, done.text, written + done.written, seconds)


def run_setting(s: settings.Setting, proto, out: Path) -> dict:
    """Train what is missing, attack, score: one row (without its provenance)."""
    from splitleak.attack import evaluate, scoring, store
    from splitleak.attack.train import train_decoder
    from splitleak.cloud import train
    from splitleak.tools.deploy.demo import frame_bytes

    target = settings.target_dir(out, s)
    if not rundir.finished(target):
        train.run(proto, s.train_config(), target, force=True)
    info = store.target_info(rundir.mobile(target))
    decoders = {}
    for kind, defense in (("naive", ""), ("adaptive", s.defense)) if s.defense else (("naive", ""),):
        folder = settings.decoder_dir(out, s, defense)
        if not rundir.finished(folder):
            train_decoder(info, proto, s.decoder_config(), folder, True, limit=s.limit,
                          defense=defense or None)
        decoders[kind] = folder
    defense = s.defense or None
    black = {kind: evaluate.score_blackbox(folder, "test", defense=defense, proto=proto)
             for kind, folder in decoders.items()}
    attacker = decoders.get("adaptive", decoders["naive"])
    white = evaluate.score_whitebox(target, "test", s.whitebox_limit, start_from=attacker,
                                    defense=defense, proto=proto)
    strong, n = black.get("adaptive", black["naive"]), white.result["n"]
    subset = scoring.score(strong.originals[:n], strong.recons[:n],
                           attacker_mean=proto.attacker.images.mean(axis=0))
    metrics = rundir.read_metrics(target)
    row = {"key": s.key(), "setting": asdict(s), "target": str(target),
           "classes": len(proto.classes),
           "val_accuracy": metrics["val_accuracy"], **deployment(target, proto, s.defense),
           "epsilon": metrics["privacy"]["epsilon"] if s.dp else None,
           "activation": list(rundir.activation_shape(target)),
           "bytes_per_frame": frame_bytes(target, "edge")}
    row |= {kind: tables.figures(e.result) for kind, e in black.items()}
    row |= {"blackbox_subset": tables.figures(subset), "whitebox": tables.figures(white.result)}
    k = tables.GRID_IMAGES
    lines = [("original", strong.originals[:k])]
    lines += [(f"{kind} attacker", e.recons[:k]) for kind, e in black.items()]
    lines.append(("white box", white.recons[:k]))
    row["grid"] = tables.save_grid(out, s.key(), s.name, lines).name
    return row


def deployment(target: Path, proto, defense: str) -> dict:
    """Validation accuracy of the deployment: what the device publishes (TFLite stage and the
    defence), classified by the cloud head; an edge defence's cost shows here, not in training.
    Also, of the undefended activations: their standard deviation (the scale a noise σ acts
    on) and their distance correlation with the images (what NoPeek lowers)."""
    import numpy as np
    import tensorflow as tf

    from splitleak.attack.evaluate import EVAL_NOISE_SEED

    head = tf.keras.models.load_model(target / rundir.HEAD_KERAS, compile=False)
    acts = rundir.device(target, defense, EVAL_NOISE_SEED).run(proto.val.images)
    accuracy = np.mean(head.predict(acts, verbose=0).argmax(1) == proto.labels(proto.val))
    clean = acts if not defense else rundir.device(target).run(proto.val.images)
    return {"accuracy": float(accuracy), "activation_std": float(clean.std()),
            "dcor": mean_dcor(proto.val.images, clean)}


def mean_dcor(images, acts, batch: int = 32) -> float:
    """Distance correlation of images and their activations, averaged over batches of `batch`
    (the estimate NoPeek trains against: it depends on the batch size)."""
    from splitleak.cloud.nopeek import distance_correlation

    values = [float(distance_correlation(images[i:i + batch], acts[i:i + batch]))
              for i in range(0, len(images) - batch + 1, batch)]
    return sum(values) / len(values)
