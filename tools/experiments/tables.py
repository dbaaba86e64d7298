"""What the privacy experiment writes from its rows, one row per (setting, seed): results.csv,
the privacy-utility plot, a grid per row and report.html (the results folder's results.md, over
seeds, is report.py's).

One set of columns serves the per-row Markdown table (`table`) and report.html. A column is left
out where it would say nothing: the cut's activation and bytes per frame when every row has the
same cut, the seed's DP figures without DP rows, an attack no row has. Attack cells are MSE / SSIM
/ **top-1** (of N).
"""

import csv
import html
import re
from collections.abc import Callable
from pathlib import Path

from splitleak.cloud.config import SEED_DP

PLOT = "privacy-utility.png"  # the plot of a results folder (and of a work folder)
# a row's attacks: its key -> the column's title
ATTACKS = {"naive": "naive black box", "adaptive": "adaptive black box",
           "blackbox_subset": "black box, white box's images",
           "whitebox": "white box (prior)", "whitebox_blank": "white box, blank start"}
def best(row: dict) -> dict:
    """The stronger black-box attacker of a row (adaptive where there is one)."""
    return row.get("adaptive") or row["naive"]


def columns(rows: list[dict]) -> list[tuple[str, Callable[[dict], str]]]:
    """(title, cell of a row) for every column the rows need."""
    cols = [("setting", setting_cell)]
    if len({r["setting"]["split_after"] for r in rows}) > 1:
        cols += [("activation", lambda r: "x".join(map(str, r["activation"]))
                  if r.get("activation") else "–"),
                 ("bytes/frame", lambda r: f"{r['bytes_per_frame']:,}"
                  if r.get("bytes_per_frame") else "–")]
    cols += [("accuracy, defended", lambda r: f"{r['accuracy']:.3f}"),
             ("ε (RDP / PLD)", lambda r: f"{r['epsilon']['rdp']:.2f} / {r['epsilon']['pld']:.2f}"
              if r["epsilon"] else "∞")]
    if any(r["epsilon"] for r in rows):
        cols.append(("the seed: ε, accuracy", lambda r: seed_cell(r["setting"])))
    cols.append(("dCor (stage)", lambda r: f"{r['dcor']:.2f}"))
    cols += [(title, lambda r, k=kind: cell(r.get(k))) for kind, title in ATTACKS.items()
             if any(r.get(kind) for r in rows)]
    return cols


def setting_cell(row: dict) -> str:
    """The setting's name, with its cut unless the name is or ends with it."""
    name, cut = row["setting"]["name"], f"K={row['setting']['split_after']}"
    seed = row["setting"].get("seed")
    named = name == cut or name.endswith(f"({cut})")
    return (name if named else f"{name} ({cut})") + (f", seed {seed}" if seed is not None else "")


def seed_cell(setting: dict) -> str:
    z = setting["noise_multiplier"]
    if not setting["dp"] or z not in SEED_DP["epsilon"]:
        return "–"
    return f"{SEED_DP['epsilon'][z]:g}, {SEED_DP['accuracy'][z]:.2f}"


def cell(s: dict | None) -> str:
    """MSE / SSIM / **top-1** (of N), or – where the row has no such attack."""
    if s is None:
        return "–"
    return f"{s['mse']:.4f} / {s['ssim']:.3f} / **{s['top1']:.3f}** (of {s['n']:,})"


def notes(rows: list[dict]) -> list[str]:
    """What the table's cells are read against."""
    out = []
    scales = {r["setting"]["split_after"]: r["activation_std"] for r in rows
              if r["setting"]["defense"]}
    if scales:
        out.append("Standard deviation of the undefended activations (validation images), the "
                   "scale a noise σ acts on: " + ", ".join(f"K={k}: {v:.2f}"
                                                          for k, v in sorted(scales.items())))
    mean = rows[0]["naive"] if rows else None
    if mean and "mean_image_mse" in mean:
        out.append(f"Baseline: the attacker set's mean image, given as the reconstruction of each "
                   f"of the {mean['n']:,} test images, has MSE {mean['mean_image_mse']:.4f} and "
                   "top-1 at chance (1/N).")
    return out


def csv_rows(rows: list[dict]) -> list[dict]:
    """One flat dict per row for results.csv."""
    flat = []
    for r in rows:
        d = {"key": r["key"], **r["setting"], "accuracy": r["accuracy"],
             "val_accuracy": r["val_accuracy"], "activation_std": r["activation_std"],
             "dcor": r["dcor"],
             "activation": "x".join(map(str, r["activation"])) if r.get("activation") else None,
             "bytes_per_frame": r.get("bytes_per_frame"),
             "epsilon_rdp": (r["epsilon"] or {}).get("rdp"),
             "epsilon_pld": (r["epsilon"] or {}).get("pld")}
        for kind in ATTACKS:
            for metric in ("mse", "ssim", "top1", "n"):
                d[f"{kind}_{metric}"] = (r.get(kind) or {}).get(metric)
        flat.append(d)
    return flat


def save_csv(out: Path, rows: list[dict]) -> Path:
    path = out / "results.csv"
    flat = csv_rows(rows)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(flat[0]))
        writer.writeheader()
        writer.writerows(flat)
    return path


def save_grid(out: Path, key: str, title: str, lines: list[tuple]) -> Path:
    """grids/<key>.png: one labelled row of images per (label, images) pair."""
    from splitleak.attack import grids

    (out / "grids").mkdir(parents=True, exist_ok=True)
    return grids.save_grid(out / "grids" / f"{key}.png", lines, title)


def save_pending(path: Path, text: str) -> Path:
    """A figure that says why there is none yet (e.g. a results folder without rows)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(8, 1.2))
    fig.text(0.5, 0.5, text, ha="center", va="center", fontsize=9, wrap=True)
    fig.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(fig)
    return path


def save_plot(out: Path, rows: list[dict]) -> Path:
    """Privacy against utility: accuracy against top-1 and SSIM of the stronger black box; for
    DP settings, top-1 and accuracy against ε (log axis); across cuts, every attack's top-1
    against bytes per frame (log axis) on the undefended rows."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dp = [r for r in rows if r["epsilon"]]
    cuts = _cuts(rows)
    panels = 2 + bool(dp) + bool(cuts)
    fig, axes = plt.subplots(1, panels, figsize=(4.5 * panels, 3.8))
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
        _epsilon_panel(axes[2], dp)
    if cuts:
        _bytes_panel(axes[-1], cuts)
    fig.tight_layout()
    path = out / PLOT
    fig.savefig(path, dpi=120, metadata={"Software": None})  # no version stamp in the file
    plt.close(fig)
    return path


def _cuts(rows: list[dict]) -> list[dict]:
    """The first row without any defence at each cut, by bytes per frame (none for one cut)."""
    plain = {}
    for r in rows:
        s = r["setting"]
        if r.get("bytes_per_frame") and not (s["defense"] or s["dp"] or s["nopeek"]):
            plain.setdefault(s["split_after"], r)
    return sorted(plain.values(), key=lambda r: r["bytes_per_frame"]) if len(plain) > 1 else []


def _epsilon_panel(ax, dp: list[dict]) -> None:
    eps = [r["epsilon"]["rdp"] for r in dp]
    ax.plot(eps, [best(r)["top1"] for r in dp], "o-", label="top-1 identification")
    ax.plot(eps, [r["accuracy"] for r in dp], "s--", label="validation accuracy")
    ax.set_xscale("log")
    ax.set_xlabel("ε (RDP, δ = 1e-5)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)


def _bytes_panel(ax, rows: list[dict]) -> None:
    sizes = [r["bytes_per_frame"] for r in rows]
    series = {"black box (stronger)": [best(r) for r in rows]}
    series |= {title: [r.get(kind) for r in rows] for kind, title in ATTACKS.items()
               if kind not in ("naive", "adaptive") and all(r.get(kind) for r in rows)}
    for title, scores in series.items():
        ax.plot(sizes, [s["top1"] for s in scores], "s--" if "black" in title else "o-",
                label=f"{title} (of {scores[0]['n']:,})")
    for r, x in zip(rows, sizes, strict=True):
        ax.annotate(f"K={r['setting']['split_after']}", (x, best(r)["top1"]),
                    textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("bytes per frame on the wire")
    ax.set_ylabel("top-1 identification among N")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)


def save_report(out: Path, preset_name: str, recipe: str, rows: list[dict], seconds: float) -> Path:
    """report.html: the network, the table, the plot and every setting's grid."""
    cols = columns(rows)
    head = "".join(f"<th>{html.escape(title)}</th>" for title, _ in cols)
    body = "".join("<tr>" + "".join(f"<td>{_html(f(r))}</td>" for _, f in cols) + "</tr>"
                   for r in rows)
    grids = "".join(f"<h3>{html.escape(setting_cell(r))}</h3><img src='grids/{r['grid']}'>"
                    for r in rows if (out / "grids" / r.get("grid", "")).is_file())
    page = (f"<!doctype html><meta charset='utf-8'><title>splitleak sweep {preset_name}</title>"
            f"<h1>splitleak experiment sweep --preset {html.escape(preset_name)}</h1>"
            f"<p>Network: {html.escape(recipe)}.</p>"
            f"<p>{len(rows)} settings, {seconds / 60:.1f} min this run. Attack cells: MSE / SSIM / "
            "<b>top-1</b> (of N): the test image's own original ranked first among the N "
            "evaluated (chance 1/N).</p>"
            f"<table border=1 cellpadding=4><tr>{head}</tr>{body}</table>"
            + "".join(f"<p>{html.escape(note)}</p>" for note in notes(rows))
            + "<h2>Privacy against utility</h2><img src='privacy-utility.png'>"
            "<h2>Reconstructions</h2>" + grids)
    path = out / "report.html"
    path.write_text(page, encoding="utf-8")
    return path


def _html(text: str) -> str:
    """A table cell as HTML: Markdown's **bold** as <b>."""
    return re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", html.escape(text))
