"""The split-depth experiment: for each cut K, what goes on the wire and what leaks.

For every K it reuses or trains the lite target cut after block K and a black-box decoder
against its TFLite stage, then measures: bytes per frame on the wire, validation accuracy,
TFLite ms per image (float32, 1 thread), and reconstruction of the lite test images (MSE, SSIM,
identification) beside the baselines by three attacks: the black-box decoder, white-box rMLE from
a blank page, and white-box rMLE from the decoder's reconstruction (a learned prior). The black
box is scored twice: on all test images, and on the white box's few, ranked among those few (top-1
among 64 is easier than among 1,000). Writes
results.json, a Markdown table, a grid of the same test images reconstructed at every K, and a
plot.
"""

from pathlib import Path

from splitleak.cloud import artifacts

GRID_IMAGES = 10
ATTACKS = {"blackbox": "black box", "blackbox_subset": "black box, white box's images",
           "whitebox": "white box, blank start", "whitebox_prior": "white box, learned prior"}


def measure_depth(k: int, proto, run: Path, attack_dir: Path, epochs: int, attack_epochs: int,
                  whitebox_limit: int, tflite_runs: int) -> dict:
    """Every figure of the table for one split depth."""
    from splitleak.attack import blackbox as decode
    from splitleak.attack import evaluate, store
    from splitleak.edge.runtime import MobileStage
    from splitleak.tools.bench import median_ms
    from splitleak.tools.cmd_demo import ensure_decoder, ensure_run
    from splitleak.tools.demo import frame_bytes

    ensure_run(run, epochs, proto, k)
    ensure_decoder(attack_dir, run, attack_epochs, proto)
    metrics = artifacts.read_json(run / "metrics.json")
    stage = MobileStage(run / "mobile.tflite")
    image = proto.test.images[0]
    blackbox = evaluate.evaluate_blackbox(attack_dir, "test")
    few = evaluate.select(proto.test, whitebox_limit)
    subset = evaluate.score(few.images, decode.reconstruct(store.load_decoder(attack_dir)[0],
                                                          stage.run(few.images)),
                            attacker_mean=proto.attacker.images.mean(axis=0))
    whitebox, _ = evaluate.evaluate_whitebox(run, "test", whitebox_limit)
    prior, _ = evaluate.evaluate_whitebox(run, "test", whitebox_limit, attack_dir=attack_dir,
                                          start_from=attack_dir)
    return {
        "split_after": k, "run": str(run), "attack_dir": str(attack_dir),
        "activation_shape": list(stage.output_shape),
        "bytes_per_frame": frame_bytes(run, "edge"),
        "val_accuracy": metrics["val_accuracy"],
        "tflite_ms": median_ms(lambda: stage.run_raw(image), runs=tflite_runs)["median_ms"],
        "blackbox": table_scores(blackbox),
        "blackbox_subset": table_scores(subset), "whitebox": table_scores(whitebox),
        "whitebox_prior": table_scores(prior),
    }


def table_scores(result: dict) -> dict:
    """The figures of one evaluation that the table shows."""
    rec, mean = result["reconstruction"], result["baselines"]["attacker_mean_image"]
    ident = rec["identification"]
    return {"n": result["n"], "mse": rec["mse"], "ssim": rec["ssim"], "top1": ident["top1"],
            "top5": ident["top5"], "median_rank": ident["median_rank"],
            "chance_top1": ident["chance_top1"], "mean_image_mse": mean["mse"],
            "mean_image_top1": mean["identification"]["top1"]}


def table(rows: list[dict]) -> str:
    """The results as a Markdown table; attack cells are MSE / SSIM / top-1 (of N images)."""
    head = ("| K | activation | bytes/frame | val. accuracy | TFLite ms | "
            + " | ".join(ATTACKS.values()) + " | mean image (MSE / top-1) |\n"
            + "|---" * (6 + len(ATTACKS)) + "|\n")
    lines = []
    for r in rows:
        b = r["blackbox"]
        lines.append(
            f"| {r['split_after']} | {'x'.join(map(str, r['activation_shape']))} | "
            f"{r['bytes_per_frame']:,} | {r['val_accuracy']:.3f} | {r['tflite_ms']:.2f} | "
            + " | ".join(_cell(r[a]) for a in ATTACKS)
            + f" | {b['mean_image_mse']:.4f} / {b['chance_top1']:.3f} |")
    return head + "\n".join(lines) + "\n"


def _cell(s: dict) -> str:
    """MSE / SSIM / top-1 (of N)."""
    return f"{s['mse']:.4f} / {s['ssim']:.3f} / **{s['top1']:.3f}** (of {s['n']:,})"


def save_grid(out: Path, proto, rows: list[dict]) -> Path:
    """The first test images, and their black-box reconstruction at every K."""
    from splitleak.attack import blackbox, grids, store
    from splitleak.edge.runtime import MobileStage

    images = proto.test.images[:GRID_IMAGES]
    lines = [("original", images)]
    for r in rows:
        decoder, _ = store.load_decoder(r["attack_dir"])
        acts = MobileStage(Path(r["run"]) / "mobile.tflite").run(images)
        lines.append((f"K={r['split_after']}", blackbox.reconstruct(decoder, acts)))
    return grids.save_grid(out / "depth-grid.png", lines,
                           "black-box reconstructions of unseen test images, by split depth")


def save_plot(out: Path, rows: list[dict]) -> Path:
    """Identification (top-1) against bytes on the wire, one point per K."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    sizes = [r["bytes_per_frame"] for r in rows]
    for attack, label in ATTACKS.items():
        ax.plot(sizes, [r[attack]["top1"] for r in rows], "o-" if "white" in attack else "s--",
                label=f"{label} (of {rows[0][attack]['n']:,})")
    for r, x in zip(rows, sizes, strict=True):
        ax.annotate(f"K={r['split_after']}", (x, r["blackbox"]["top1"]), textcoords="offset points",
                    xytext=(4, 4), fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("bytes per frame on the wire")
    ax.set_ylabel("top-1 identification among N")
    ax.set_ylim(0, 1.02)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path = out / "depth-leak.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
