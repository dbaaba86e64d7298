"""The demo's report: one self-contained HTML page, what the device saw beside what leaked."""

import base64
import html
import time
from pathlib import Path

import numpy as np

from splitleak.attack import evaluate, scoring
from splitleak.cloud import artifacts

SUMMARY = "report.json"  # the report's figures, for `bench all` and other readers


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(path.stem)}">'


def _table(rows: list[tuple[str, str]]) -> str:
    body = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def _rows(scores: dict) -> list[tuple[str, str]]:
    """Reconstruction metrics beside the blank page (and chance for identification)."""
    leak, blank = scores["reconstruction"], scores["baselines"]["blank_page"]
    ident, blank_id = leak["identification"], blank["identification"]
    psnr = "inf" if leak["psnr"] is None else f"{leak['psnr']:.2f}"
    return [
        ("reconstruction MSE (blank page baseline)", f"{leak['mse']:.4f} ({blank['mse']:.4f})"),
        ("reconstruction SSIM (blank page baseline)", f"{leak['ssim']:.3f} ({blank['ssim']:.3f})"),
        ("reconstruction PSNR, dB", psnr),
        ("top-1 identification (chance; blank page)",
         f"{ident['top1']:.3f} ({ident['chance_top1']:.3g}; {blank_id['top1']:.3f})"),
        ("top-5 identification (chance; blank page)",
         f"{ident['top5']:.3f} ({ident['chance_top5']:.3g}; {blank_id['top5']:.3f})"),
        ("median rank of the true image (blank page)",
         f"{ident['median_rank']:g} ({blank_id['median_rank']:g}) of {ident['n']}"),
    ]


def write(folder, originals: np.ndarray, recons: np.ndarray, pipeline: dict, attack: dict,
          activation_shape=None) -> Path:
    """Grids, reconstruction metrics and the cloud's accuracy into folder/report.html, and its
    figures into folder/report.json (SUMMARY).

    `activation_shape` (e.g. (1, 1, 32)), if given, is named in the text.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    scores = scoring.score(originals, recons)
    pngs = evaluate.write_grids(folder, "live", recons, originals)
    rows = [
        ("frames streamed by the edge node", str(pipeline["frames"])),
        ("predictions received over MQTT", str(pipeline["predictions_received"])),
        *([("cloud accuracy over MQTT", f"{pipeline['mqtt_accuracy']:.4f}"),
           ("same images classified offline", f"{pipeline['offline_accuracy']:.4f}")]
          if "mqtt_accuracy" in pipeline else  # a camera: no labels, the head offline instead
          [("predictions equal to the head's, offline, on what the device saw",
            f"{pipeline['agreement']:.4f}")]),
        ("frames reconstructed by the eavesdropper", str(attack.get("reconstructed", 0))),
        *_rows(scores),
    ]
    shape = f" {'x'.join(map(str, activation_shape))}" if activation_shape else ""
    similarity = scores["reconstruction"]["identification"]["similarity"]
    page = f"""<!doctype html><html><head><meta charset="utf-8">
<title>splitleak demo report</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:70em}} th{{text-align:left;padding-right:1em}}
img{{max-width:100%}}</style></head><body>
<h1>splitleak demo report</h1>
<p>{time.strftime('%Y-%m-%d %H:%M:%S')}. The edge node sent only{shape} activations over MQTT; an
eavesdropper subscribed to the same topic reconstructed the images below from them, live.</p>
{_table(rows)}
<p>Identification: each reconstruction ranks all {len(originals)} streamed images by {similarity}
similarity; top-k is the fraction whose own image comes among the first k.</p>
<h2>What the device saw, and what leaked</h2>{_img(folder / pngs[0])}
<h2>Best and worst reconstructions</h2>{_img(folder / pngs[1])}
</body></html>"""
    out = folder / "report.html"
    out.write_text(page)
    artifacts.write_json(folder / SUMMARY, {
        **{k: pipeline[k] for k in ("frames", "predictions_received", "mqtt_accuracy",
                                    "offline_accuracy", "agreement") if k in pipeline},
        "reconstructed": attack.get("reconstructed", 0),
        "reconstruction": scores["reconstruction"], "baselines": scores["baselines"]})
    return out
