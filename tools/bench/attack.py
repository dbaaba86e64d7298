"""`bench attack`: frames per second a trained decoder reconstructs, alone and as the live
eavesdropper behind a fresh broker."""

import platform
import tempfile
from pathlib import Path

from splitleak.cloud import rundir
from splitleak.tools.bench.target import ENGINE

DECODER = rundir.default_attack_dir()  # the demo's black-box decoder for the default run
FRAMES = 5000  # frames streamed through the broker
GOAL = 1000  # frames per second the attacker should keep up with (a 2-core CPU)


def run(decoder: Path = DECODER, *, engine: str = ENGINE, frames: int = FRAMES) -> dict:
    """The decoder alone (attack/evaluate.throughput on random activations), then `frames`
    frames published through a fresh broker while the eavesdropper reconstructs them, timed from
    the first publish to the last reconstruction."""
    import numpy as np

    from splitleak.attack.evaluate import throughput
    from splitleak.attack.store import load_decoder
    from splitleak.tools.bench.timing import live_attack

    if frames < 1:
        raise ValueError("--frames must be a positive integer")
    model, _ = load_decoder(decoder)
    acts = np.random.default_rng(0).random((256, *model.input_shape[1:]), np.float32)
    with tempfile.TemporaryDirectory(prefix="splitleak-bench-") as folder:
        live = live_attack(model, engine, frames, Path(folder) / "broker")
    return {"bench": "attack", "decoder": str(decoder), "machine": platform.machine(),
            "goal_frames_per_second": GOAL,
            "decoder_frames_per_second": round(throughput(model, acts), 1), "live": live}


def describe(r: dict) -> str:
    live = r["live"]
    return (f"decoder alone: {r['decoder_frames_per_second']:,.0f} frames/s\n"
            f"live ({live['engine']}): {live['reconstructed']} of {live['frames']} frames "
            f"reconstructed at {live['frames_per_second']:,.0f} frames/s; goal "
            f"{r['goal_frames_per_second']:,}")
