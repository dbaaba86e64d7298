"""Offline replay: reconstruct the frames in a capture file (see broker/capture.py).

A capture is what the eavesdropper recorded (`attack live --record`) or what
`mosquitto_sub -t 'splitleak/+/activations' -F '%t %x'` printed. Frames are decoded with the
shared wire module (bad ones are counted, not fatal) and reconstructed by a black-box decoder or
by white-box inversion. With the true images (`truth`, indexed by sequence number, as the
edge node streams them) the reconstructions are scored like any evaluation, per node. `score`
measures and writes nothing; `save_pngs` writes the frames' reconstructions.
"""

import logging
from collections import Counter
from pathlib import Path

import numpy as np

from splitleak.attack import live, scoring
from splitleak.broker import capture
from splitleak.broker.inbox import FrameInbox
from splitleak.edge.omniglot import to_png

log = logging.getLogger("splitleak.attack")


def read_frames(path, expect_shape, limit: int | None = None) -> tuple[list, dict]:
    """The valid frames of a capture file (the first `limit`), and rejections by reason."""
    inbox = FrameInbox(expect_shape, log)
    frames = [f for f in (inbox.decode(t, p) for t, p in capture.read(path)) if f is not None]
    if not frames:
        raise ValueError(f"{path} holds no valid activation frame "
                         f"(rejected: {dict(inbox.rejected) or 'none'})")
    return frames[:limit], dict(inbox.rejected)


def originals(frames, truth: np.ndarray | None) -> np.ndarray | None:
    """The true image of each frame (`truth` indexed by sequence number), or None."""
    if truth is None:
        return None
    return truth[np.array([f.seq for f in frames]) % len(truth)]


def score(frames, rejected: dict, recons: np.ndarray, capture_path,
          truth: np.ndarray | None = None, attacker_mean=None) -> dict:
    """What the capture held, and the scores per node against `truth` if given; writes nothing."""
    result = {"capture": str(capture_path), "frames": len(frames), "rejected": rejected,
              "nodes": dict(Counter(f.node_id for f in frames))}
    if truth is None:
        return result | scoring.unscored(len(frames))
    groups = np.array([f.node_id for f in frames])
    return result | scoring.score(originals(frames, truth), recons, groups, attacker_mean)


def save_pngs(folder, prefix: str, frames, recons: np.ndarray) -> None:
    """One PNG per frame: folder/prefix/<node>/<seq>.png."""
    for frame, image in zip(frames, recons, strict=True):
        live.save_png(Path(folder) / prefix, frame, to_png(image))
