"""The privacy experiment: per setting, train the target, attack it, measure what leaks; resumable.

Per setting (tools/experiments/settings.py): train (or reuse) the lite target and a black-box
decoder on clean queries (the naive attacker) and, with an edge defence, one on defended queries
(the adaptive attacker); score both on the defended test activations. The white box inverts the
first test images from the stronger attacker's reconstruction (a learned prior), and the stronger
black box is scored again on those images, ranked among them as the white box is. Also per
setting: the deployment's accuracy, the activation's shape, bytes per frame, scale and distance
correlation with the images. results.json is written after every setting, keyed by the
setting's hash, so a rerun skips the settings done. No eval.json is written: decoders are shared
between settings, so one file would hold whichever setting ran last.
"""

import time
from dataclasses import asdict, dataclass
from pathlib import Path

from splitleak.cloud import artifacts, rundir
from splitleak.tools.experiments import settings, tables

RESULTS = "results.json"


@dataclass
class Sweep:
    """A finished sweep: its folder, network, rows in preset order, table, and the files written."""

    out: Path
    recipe: str
    rows: list[dict]
    table: str
    written: list[Path]
    seconds: float


def run_sweep(preset_name: str, out: Path | None = None, config: Path | None = None,
              protocol: str = "lite", omniglot_dir=None) -> Sweep:
    """Run every setting of a preset not yet in out/results.json (with --config's fields), then
    write results.csv, results.md, the plot and report.html."""
    from splitleak.cloud.data import load_protocol

    chosen = settings.with_config(settings.preset(preset_name), config)
    network = settings.recipe(chosen)
    out = Path(out or f"runs/experiment-{preset_name}")
    path = out / RESULTS
    done = artifacts.read_json(path)["settings"] if path.is_file() else {}
    foreign = set(done) - {s.key() for s in chosen}
    if foreign:
        raise ValueError(f"{out} holds {len(foreign)} setting(s) of another sweep; "
                         "use another --out")
    estimate = settings.estimate_seconds(chosen, set(done), out)
    print(f"preset {preset_name}: {len(chosen)} settings, {len(done)} already done; "
          f"about {estimate / 60:.0f} min on a 2-core CPU\nnetwork: {network}", flush=True)
    proto = load_protocol(protocol, omniglot_dir)
    start = time.monotonic()
    for i, s in enumerate(chosen, 1):
        if s.key() in done:
            print(f"[{i}/{len(chosen)}] {s.name}: done before, skipped", flush=True)
            continue
        began = time.monotonic()
        print(f"[{i}/{len(chosen)}] {s.name} ({s.key()})", flush=True)
        done[s.key()] = run_setting(s, proto, out)
        artifacts.write_json(path, {"preset": preset_name, "recipe": network,
                                    "settings": done})  # resumable
        print(f"[{i}/{len(chosen)}] {s.name}: {(time.monotonic() - began) / 60:.1f} min",
              flush=True)
    rows = [done[s.key()] for s in chosen]
    text = f"Network: {network}.\n\n" + tables.table(rows)
    (out / "results.md").write_text(text)
    written = [path, tables.save_csv(out, rows), out / "results.md", tables.save_plot(out, rows)]
    seconds = time.monotonic() - start
    written.append(tables.save_report(out, preset_name, network, rows, seconds))
    return Sweep(out, network, rows, text, written, seconds)


def run_setting(s: settings.Setting, proto, out: Path) -> dict:
    """Train what is missing, attack, score: one row of results.json."""
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
