"""The demo's report: one self-contained HTML page, what the device saw beside what leaked."""

import base64
import html
import time
from pathlib import Path

import numpy as np

from splitleak.attack import grids, metrics


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(path.stem)}">'


def _table(rows: list[tuple[str, str]]) -> str:
    body = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def write(folder, originals: np.ndarray, recons: np.ndarray, pipeline: dict, attack: dict) -> Path:
    """Grids, reconstruction metrics and the cloud's accuracy into folder/report.html."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    scores = metrics.per_image(originals, recons)
    leak = metrics.summarise(scores)
    blank = metrics.evaluate(originals, np.zeros_like(originals))
    pngs = grids.first_and_extremes(folder, "live", originals, recons, scores["mse"])
    rows = [
        ("frames streamed by the edge node", str(pipeline["frames"])),
        ("predictions received over MQTT", str(pipeline["predictions_received"])),
        ("cloud accuracy over MQTT", f"{pipeline['mqtt_accuracy']:.4f}"),
        ("same images classified offline", f"{pipeline['offline_accuracy']:.4f}"),
        ("frames reconstructed by the eavesdropper", str(attack.get("reconstructed", 0))),
        ("reconstruction MSE (blank page baseline)", f"{leak['mse']:.4f} ({blank['mse']:.4f})"),
        ("reconstruction SSIM (blank page baseline)", f"{leak['ssim']:.3f} ({blank['ssim']:.3f})"),
        ("reconstruction PSNR, dB", f"{leak['psnr']:.2f}"),
    ]
    page = f"""<!doctype html><html><head><meta charset="utf-8">
<title>splitleak demo report</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:70em}} th{{text-align:left;padding-right:1em}}
img{{max-width:100%}}</style></head><body>
<h1>splitleak demo report</h1>
<p>{time.strftime('%Y-%m-%d %H:%M:%S')}. The edge node sent only 1x1x32 activations over MQTT; an
eavesdropper subscribed to the same topic reconstructed the images below from them, live.</p>
{_table(rows)}
<h2>What the device saw, and what leaked</h2>{_img(folder / pngs[0])}
<h2>Best and worst reconstructions</h2>{_img(folder / pngs[1])}
</body></html>"""
    out = folder / "report.html"
    out.write_text(page)
    return out
