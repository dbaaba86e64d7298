"""The demo with a camera or a video: the same deployment, streaming what the device sees.

Hold a letter written on paper up to the camera and the eavesdropper's live page redraws it a
moment later. A camera streams until Ctrl-C (or --count frames); a video until it ends. There are
no labels for a letter a person wrote, so the check is the deployment against the head run
offline on exactly what the model received (the edge's --preview images).
"""

import time
from pathlib import Path

import numpy as np

from splitleak.cloud import rundir
from splitleak.cloud.service import describe
from splitleak.edge.omniglot import ink_from_png
from splitleak.tools.deploy.demo import (
    DEFENSE_SEED,
    Deployment,
    offline_labels,
    saved_reconstructions,
    start_listeners,
)

NODE = "demo-camera"


def run_live(run_dir: Path, source: str, count: int | None = None, engine: str = "amqtt",
             rate: float = 0.0, attack_dir=None, web: str = "127.0.0.1:0",
             out: Path = Path("runs/demo"), defense: str | None = None,
             defense_seed: int = DEFENSE_SEED) -> dict:
    """Stream `source` (camera, camera:N, video:FILE) through MQTT until it ends, `count` frames
    are sent, or Ctrl-C; the predictions, checked against the head offline, and the summaries."""
    out, seen = Path(out), Path(out) / "inputs"
    with Deployment(run_dir, engine) as dep:
        cloud, spy, predictions = start_listeners(dep, attack_dir and (
            attack_dir, web, out / "reconstructions", None))
        extra = (("--count", count) if count else ()) + (
            ("--defense", defense, "--defense-seed", defense_seed) if defense else ())
        edge = dep.start_edge("--node-id", NODE, "--source", source, "--preview", seen,
                              "--rate", rate, "--json", *extra)
        print(f"edge node: streaming {source}" + (f" at most {rate:g} frames/s" if rate else "")
              + ("; Ctrl-C stops it" if source.startswith("camera") else ""), flush=True)
        try:
            code = edge.wait()
        except KeyboardInterrupt:  # the edge stops between frames and reports
            code = edge.stop(timeout=150)
        if code != 0:
            raise RuntimeError(f"the edge node failed:\n{edge.tail()}")
        sent = edge.json()["sent"]
        complete = predictions.wait_for(sent, timeout=60)
        cloud.stop()
        if spy is not None:  # its last batch may still be drawing
            _wait_saved(out / "reconstructions" / NODE, sent, timeout=30)
            spy.stop()
        cloud_summary, edge_summary = cloud.json(), edge.json()
        print(describe(cloud_summary))
    received = _inputs(seen, sent)
    expected = offline_labels(run_dir, received, defense, defense_seed) if sent else []
    got = np.array([predictions.labels.get(i, -1) for i in range(sent)])
    result = {"frames": sent, "predictions_received": len(predictions.labels),
              "complete": complete, "agreement": float(np.mean(got == expected)) if sent else 0.0,
              "defense": edge_summary.get("defense", ""), "cloud": cloud_summary,
              "edge": edge_summary}
    if spy is not None and sent:
        from splitleak.tools.deploy import report

        result["attacker"] = spy.json()
        done = result["attacker"]["reconstructed"]
        recons = saved_reconstructions(out / "reconstructions", NODE, done)
        result["report"] = str(report.write(out, received[:done], recons, result,
                                            result["attacker"],
                                            activation_shape=rundir.activation_shape(run_dir)))
    return result


def _wait_saved(folder: Path, n: int, timeout: float) -> None:
    """Wait until the eavesdropper has saved n reconstructions in `folder` (or `timeout` s)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and len(list(folder.glob("*.png"))) < n:
        time.sleep(0.1)


def _inputs(folder: Path, n: int) -> np.ndarray:
    """The n images the model received, from the edge's preview folder."""
    if not n:
        return np.zeros((0, 105, 105, 1), np.float32)
    return np.stack([ink_from_png((folder / f"{seq:06d}.png").read_bytes()) for seq in range(n)])
