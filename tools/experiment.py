"""The privacy experiment: per setting, train the target, attack it, measure what leaks.

A setting is a full configuration (`Setting`); its key is a hash of it, so a rerun skips the
settings already in results.json. Per setting: train (or reuse) the lite target, train (or reuse)
a black-box decoder on clean queries (the naive attacker) and, with an edge defence, one on
defended queries (the adaptive attacker); score both and the white box (rMLE from the
attacker's reconstruction) on the defended test activations. Targets and decoders are stored by
the hash of what they depend on, so settings share them.
"""

import hashlib
import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from splitleak.cloud.config import DEFAULT_SPLIT, SEED_DP, TrainConfig

DEFENCE_SPLIT = 2  # the defences preset cuts where the undefended leak is total (top-1 1.0)
GRID_IMAGES = 8
# rough seconds on our 2-core machines (2026-11-25) for the estimate printed before a sweep:
# a 20-epoch target, the same under DP-SGD, a 40-epoch decoder, one setting's evaluations
SECONDS = {"train": 170, "train_dp": 360, "decoder": 360, "evaluate": 120}
LITE_IMAGES = 1700  # about the lite protocol's train and attacker split: what --limit scales


@dataclass(frozen=True)
class Setting:
    """Everything a row depends on."""

    name: str
    split_after: int = DEFAULT_SPLIT
    norm: str = "group"  # the same network with and without DP: GroupNorm, no dropout
    dropout: float = 0.0
    dp: bool = False
    noise_multiplier: float = 0.0
    nopeek: float = 0.0
    defense: str = ""
    epochs: int = TrainConfig.epochs
    attack_epochs: int = 40
    whitebox_limit: int = 64
    limit: int | None = None  # the target and the attacker train on the first N images (labs)
    seed: int | None = None  # the target's and the attacker's seed (default: their configs')

    def key(self) -> str:  # fields left at None stay out: keys from before they existed hold
        return _hash({k: v for k, v in asdict(self).items() if v is not None})

    def train_config(self) -> TrainConfig:
        return TrainConfig(epochs=self.epochs, split_after=self.split_after, norm=self.norm,
                           dropout=self.dropout, dp=self.dp, nopeek=self.nopeek,
                           noise_multiplier=self.noise_multiplier or 1.0, limit=self.limit,
                           **({"seed": self.seed} if self.seed is not None else {}))

    def decoder_config(self):
        from splitleak.attack.config import TrainConfig as DecoderConfig

        return DecoderConfig(epochs=self.attack_epochs,
                             **({"seed": self.seed} if self.seed is not None else {}))

    def target_key(self) -> str:
        return _hash(asdict(self.train_config()))


def _hash(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:12]


def preset(name: str) -> list[Setting]:
    """The settings of a preset."""
    base = Setting("non-private")
    if name == "seed-dp":
        out = [base] + [replace(base, name=f"DP z={z}", dp=True, noise_multiplier=z)
                        for z in SEED_DP["epsilon"]]
    elif name == "defences":
        cut = replace(base, name="none", split_after=DEFENCE_SPLIT)
        out = [cut] + [replace(cut, name=spec, defense=spec) for spec in (
            "noise:gauss:4", "noise:gauss:16", "quant:int8")] + [
            replace(cut, name=f"NoPeek α={a:g}", nopeek=a) for a in (1.0, 5.0)]
    elif name == "depth":
        out = [replace(base, name=f"K={k}", split_after=k) for k in (1, 2, 3, 4)]
    elif name == "lab":  # lab 4: one of each kind of defence, where the undefended leak is total
        cut = replace(base, name="none", split_after=DEFENCE_SPLIT)
        out = [cut, replace(cut, name="DP-SGD z=0.7", dp=True, noise_multiplier=0.7),
               replace(cut, name="noise:gauss:4", defense="noise:gauss:4"),
               replace(cut, name="NoPeek α=5", nopeek=5.0)]
    elif name == "all":
        out = list({s.key(): s for p in ("seed-dp", "defences", "depth")
                    for s in preset(p)}.values())
    else:
        raise ValueError(f"unknown preset '{name}'; expected one of {', '.join(PRESETS)}")
    return out


PRESETS = ("seed-dp", "defences", "depth", "all", "lab")


def estimate_seconds(settings: list[Setting], done: set, out: Path | None = None) -> float:
    """A rough duration of the settings not yet done, from SECONDS scaled by epochs and --limit:
    each target and decoder counted once, and not at all when `out` already holds it."""
    todo = [s for s in settings if s.key() not in done]
    targets = {s.target_key(): s for s in todo}
    decoders = {decoder_dir(out or Path(), s, d): s for s in todo for d in {"", s.defense}}
    if out is not None:
        targets = {k: s for k, s in targets.items() if not _saved(target_dir(out, s))}
        decoders = {d: s for d, s in decoders.items() if not _saved(d)}
    return (sum(SECONDS["train_dp" if s.dp else "train"] * s.epochs / TrainConfig.epochs
                * _data(s) for s in targets.values())
            + sum(SECONDS["decoder"] * s.attack_epochs / Setting.attack_epochs * _data(s)
                  for s in decoders.values())
            + len(todo) * SECONDS["evaluate"])


def _data(s: Setting) -> float:
    """The share of the lite training images a setting's runs use."""
    return min(1.0, s.limit / LITE_IMAGES) if s.limit else 1.0


def target_dir(out: Path, s: Setting) -> Path:
    return out / "targets" / s.target_key()


def decoder_dir(out: Path, s: Setting, defense: str) -> Path:
    """A decoder trained on queries through `defense` ("" = clean) against s's target."""
    return out / "attacks" / f"{s.target_key()}-{_hash([defense, s.attack_epochs])}"


def _saved(folder: Path) -> bool:
    return (folder / "manifest.json").is_file()


def run_setting(s: Setting, proto, out: Path) -> dict:
    """Train what is missing, attack, score: one row of results.json."""
    from splitleak.attack import evaluate, store
    from splitleak.cloud import artifacts, train
    from splitleak.tools.cmd_attack import train_decoder
    from splitleak.tools.sweep import table_scores

    target = target_dir(out, s)
    if not _saved(target):
        train.run(proto, s.train_config(), target, force=True)
    metrics = artifacts.read_json(target / "metrics.json")
    info = store.target_info(target / "mobile.tflite")
    decoders = {}
    for kind, defense in (("naive", ""), ("adaptive", s.defense)) if s.defense else (("naive", ""),):
        folder = decoder_dir(out, s, defense)
        if not _saved(folder):
            train_decoder(info, proto, s.decoder_config(), folder, True, limit=s.limit,
                          defense=defense or None)
        decoders[kind] = folder
    row = {"key": s.key(), "setting": asdict(s), "target": str(target),
           "val_accuracy": metrics["val_accuracy"],
           **deployment(target, proto, s.defense),
           "epsilon": metrics["privacy"]["epsilon"] if s.dp else None}
    for kind, folder in decoders.items():
        row[kind] = table_scores(evaluate.evaluate_blackbox(folder, "test", defense=s.defense or None))
    attacker = decoders.get("adaptive", decoders["naive"])
    whitebox, _ = evaluate.evaluate_whitebox(target, "test", s.whitebox_limit, attack_dir=attacker,
                                             start_from=attacker, defense=s.defense or None)
    row["whitebox"] = table_scores(whitebox)
    row["grid"] = save_grid(out, s, proto, target, decoders).name
    return row


def deployment(target: Path, proto, defense: str) -> dict:
    """Validation accuracy of the deployment: what the device publishes (TFLite stage and the
    defence), classified by the cloud head; an edge defence's cost shows here, not in training.
    Also, of the undefended activations: their standard deviation (the scale a noise σ acts
    on) and their distance correlation with the images (what NoPeek lowers)."""
    import numpy as np
    import tensorflow as tf

    from splitleak.attack.evaluate import EVAL_NOISE_SEED
    from splitleak.edge.defences import Device
    from splitleak.edge.runtime import MobileStage

    head = tf.keras.models.load_model(target / "head.keras", compile=False)
    stage = MobileStage(target / "mobile.tflite")
    acts = Device(stage, defense, EVAL_NOISE_SEED).run(proto.val.images)
    accuracy = np.mean(head.predict(acts, verbose=0).argmax(1) == proto.labels(proto.val))
    clean = acts if not defense else Device(stage, "", EVAL_NOISE_SEED).run(proto.val.images)
    return {"accuracy": float(accuracy), "activation_std": float(clean.std()),
            "dcor": mean_dcor(proto.val.images, clean)}


def mean_dcor(images, acts, batch: int = 32) -> float:
    """Distance correlation of images and their activations, averaged over batches of `batch`
    (the estimate NoPeek trains against: it depends on the batch size)."""
    from splitleak.cloud.nopeek import distance_correlation

    values = [float(distance_correlation(images[i:i + batch], acts[i:i + batch]))
              for i in range(0, len(images) - batch + 1, batch)]
    return sum(values) / len(values)


def save_grid(out: Path, s: Setting, proto, target: Path, decoders: dict) -> Path:
    """The first test images, what the device published for them, reconstructed by each attacker."""
    from splitleak.attack import blackbox, grids, store
    from splitleak.attack.evaluate import EVAL_NOISE_SEED
    from splitleak.edge.defences import Device
    from splitleak.edge.runtime import MobileStage

    images = proto.test.images[:GRID_IMAGES]
    acts = Device(MobileStage(target / "mobile.tflite"), s.defense, EVAL_NOISE_SEED).run(images)
    lines = [("original", images)] + [
        (f"{kind} attacker", blackbox.reconstruct(store.load_decoder(folder)[0], acts))
        for kind, folder in decoders.items()]
    (out / "grids").mkdir(parents=True, exist_ok=True)
    return grids.save_grid(out / "grids" / f"{s.key()}.png", lines, s.name)


def best(row: dict) -> dict:
    """The stronger black-box attacker of a row (adaptive where there is one)."""
    return row.get("adaptive") or row["naive"]


def csv_rows(rows: list[dict]) -> list[dict]:
    """One flat dict per row for results.csv."""
    flat = []
    for r in rows:
        d = {"key": r["key"], **r["setting"], "accuracy": r["accuracy"],
             "val_accuracy": r["val_accuracy"], "activation_std": r["activation_std"],
             "dcor": r["dcor"],
             "epsilon_rdp": (r["epsilon"] or {}).get("rdp"),
             "epsilon_pld": (r["epsilon"] or {}).get("pld")}
        for kind in ("naive", "adaptive", "whitebox"):
            for metric in ("mse", "ssim", "top1", "n"):
                d[f"{kind}_{metric}"] = (r.get(kind) or {}).get(metric)
        flat.append(d)
    return flat


def table(rows: list[dict]) -> str:
    """Markdown: accuracy, ε, dCor and each attack's MSE / SSIM / top-1 per setting; with DP rows,
    the seed's ε and accuracy at the same noise multiplier beside ours."""
    seed = any(r["epsilon"] for r in rows)
    lines = ["| setting | accuracy, defended | ε (RDP / PLD) | " + ("the seed: ε, accuracy | " * seed)
             + "dCor (stage) | naive black box | adaptive black box | white box (prior) |",
             "|---|---|---|" + "---|" * seed + "---|---|---|---|"]
    for r in rows:
        eps = f"{r['epsilon']['rdp']:.2f} / {r['epsilon']['pld']:.2f}" if r["epsilon"] else "∞"
        cells = [f"{r['dcor']:.2f}"] + [_cell(r.get(k)) for k in ("naive", "adaptive", "whitebox")]
        if seed:
            cells.insert(0, _seed_cell(r["setting"]))
        lines.append(f"| {r['setting']['name']} (K={r['setting']['split_after']}) | "
                     f"{r['accuracy']:.3f} | {eps} | " + " | ".join(cells) + " |")
    scales = {r["setting"]["split_after"]: r["activation_std"] for r in rows
              if r["setting"]["defense"]}
    if scales:
        lines.append("\nStandard deviation of the undefended activations (validation images), the "
                     "scale a noise σ acts on: " + ", ".join(f"K={k}: {v:.2f}"
                                                             for k, v in sorted(scales.items())))
    return "\n".join(lines) + "\n"


def _seed_cell(setting: dict) -> str:
    z = setting["noise_multiplier"]
    if not setting["dp"] or z not in SEED_DP["epsilon"]:
        return "–"
    return f"{SEED_DP['epsilon'][z]:g}, {SEED_DP['accuracy'][z]:.2f}"


def _cell(s: dict | None) -> str:
    if s is None:
        return "–"
    return f"{s['mse']:.4f} / {s['ssim']:.3f} / **{s['top1']:.3f}** (of {s['n']:,})"


def save_plot(out: Path, rows: list[dict]) -> Path:
    """Privacy against utility: accuracy against top-1 and SSIM of the stronger black box; and
    for DP settings, top-1 and accuracy against ε (log axis)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dp = [r for r in rows if r["epsilon"]]
    fig, axes = plt.subplots(1, 3 if dp else 2, figsize=(13 if dp else 9, 3.8))
    for ax, metric, label in ((axes[0], "top1", "top-1 identification"),
                              (axes[1], "ssim", "SSIM")):
        for i, r in enumerate(rows):  # markers and a legend: close points stay readable
            ax.scatter(best(r)[metric], r["accuracy"], marker="osD^vP*X"[i % 8], s=40,
                       alpha=0.8, label=r["setting"]["name"])
        ax.set_xlim(-0.03, 1.03)  # the whole scale: a zoomed axis makes noise look like an effect
        ax.set_xlabel(f"{label} (stronger black box)")
        ax.set_ylabel("validation accuracy")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    if dp:
        eps = [r["epsilon"]["rdp"] for r in dp]
        axes[2].plot(eps, [best(r)["top1"] for r in dp], "o-", label="top-1 identification")
        axes[2].plot(eps, [r["accuracy"] for r in dp], "s--", label="validation accuracy")
        axes[2].set_xscale("log")
        axes[2].set_xlabel("ε (RDP, δ = 1e-5)")
        axes[2].legend(fontsize=8)
        axes[2].grid(alpha=0.3)
    fig.tight_layout()
    path = out / "privacy-utility.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def save_report(out: Path, preset_name: str, rows: list[dict], seconds: float) -> Path:
    """report.html: the table, the plot and every setting's grid."""
    import html

    head = ["setting", "K", "accuracy", "ε RDP", "naive top-1", "adaptive top-1",
            "white box top-1", "naive SSIM", "adaptive SSIM"]
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in (
            r["setting"]["name"], r["setting"]["split_after"], f"{r['accuracy']:.3f}",
            f"{r['epsilon']['rdp']:.2f}" if r["epsilon"] else "∞", f"{r['naive']['top1']:.3f}",
            f"{r['adaptive']['top1']:.3f}" if r.get("adaptive") else "–",
            f"{r['whitebox']['top1']:.3f} (of {r['whitebox']['n']})",
            f"{r['naive']['ssim']:.3f}",
            f"{r['adaptive']['ssim']:.3f}" if r.get("adaptive") else "–")) + "</tr>"
        for r in rows)
    grids = "".join(f"<h3>{html.escape(r['setting']['name'])}</h3><img src='grids/{r['grid']}'>"
                    for r in rows)
    page = (f"<!doctype html><meta charset='utf-8'><title>splitleak sweep {preset_name}</title>"
            f"<h1>splitleak experiment sweep --preset {html.escape(preset_name)}</h1>"
            f"<p>{len(rows)} settings, {seconds / 60:.1f} min this run. Top-1: the test image's own "
            "original ranked first among the N evaluated (chance 1/N).</p>"
            "<table border=1 cellpadding=4><tr>" + "".join(f"<th>{h}</th>" for h in head)
            + f"</tr>{body}</table><h2>Privacy against utility</h2>"
            "<img src='privacy-utility.png'><h2>Reconstructions</h2>" + grids)
    path = out / "report.html"
    path.write_text(page, encoding="utf-8")
    return path
