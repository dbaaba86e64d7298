"""Camera frames without a camera: glyphs drawn on noisy, unevenly lit paper, and videos of them."""

import numpy as np

from splitleak.edge import paper

FRAME = (480, 640)  # rows, columns: a VGA camera frame


def paper_frame(glyph: np.ndarray | None, rng, scale: int = 3, colour: bool = True) -> np.ndarray:
    """An 8-bit frame (H, W, 3 BGR, or H, W) of paper lit from one corner, a shadow across it,
    grain, and the glyph (105, 105, 1), ink = 1, drawn `scale` times larger in dark ink."""
    h, w = FRAME
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    light = 235 - 90 * (0.6 * x / w + 0.4 * y / h)  # bright corner to dim corner
    light -= 40 / (1 + np.exp(-(x - 0.7 * y - 200) / 25))  # the soft shadow of a hand
    page = light + rng.normal(0, 10, FRAME)
    if glyph is not None:
        ink = np.kron(glyph[..., 0] > 0.5, np.ones((scale, scale), bool))
        top = rng.integers(10, h - ink.shape[0] - 10)
        left = rng.integers(10, w - ink.shape[1] - 10)
        region = page[top:top + ink.shape[0], left:left + ink.shape[1]]
        region[ink] = 55 + rng.normal(0, 8, int(ink.sum()))
    gray = np.clip(page, 0, 255).astype(np.uint8)
    if not colour:
        return gray
    tint = np.array([0.92, 1.0, 1.04], np.float32)  # a warm lamp: B, G, R
    return np.clip(gray[..., None] * tint, 0, 255).astype(np.uint8)


def write_video(path, frames, fps: float = 10.0) -> None:
    """BGR frames as a Motion-JPEG AVI (lossy, as a webcam's), through OpenCV."""
    import cv2

    h, w = frames[0].shape[:2]
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    assert out.isOpened(), "OpenCV cannot write MJPG/AVI here"
    for frame in frames:
        out.write(frame)
    out.release()


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two images' pixels."""
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def drawn(glyph: np.ndarray, scale: int = 3) -> np.ndarray:
    """The glyph as `paper_frame` draws it, aligned the way the edge aligns ink."""
    return paper.fit(np.kron(glyph[..., 0] > 0.5, np.ones((scale, scale), bool)))
