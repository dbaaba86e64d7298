"""A photo of ink on paper as the model's input: what the Omniglot training images look like.

The steps: grayscale; a 3x3 blur against the sensor's grain; ink separated from paper by an
adaptive threshold (a pixel is ink when it is darker than the mean of its neighbourhood by more
than `contrast` grey levels, so shadows and uneven light do not matter); lone specks dropped; the
ink's bounding box cropped with a margin, padded square with paper and resized to the model's
input; ink = 1.0, paper = 0.0. A frame with too little ink gives None: nothing is written there,
and the edge skips it.

numpy and Pillow only: the Pi's camera path needs no OpenCV.
"""

from dataclasses import dataclass

import numpy as np
from PIL import Image

# ITU-R BT.601 luma weights, for frames in RGB order
LUMA = np.array([0.299, 0.587, 0.114], np.float32)
# a resized pixel a third covered by ink is ink: a thin pen stroke, shrunk, stays a line
STROKE = 1 / 3


@dataclass(frozen=True)
class Paper:
    """How ink is told from paper, and how much of the input the ink's box fills."""

    block: float = 1 / 8  # the neighbourhood's side, as a fraction of the frame's shorter side
    contrast: float = 24.0  # grey levels darker than the neighbourhood's mean that count as ink
    min_ink: float = 0.002  # the fraction of the frame that must be ink, or it is blank
    margin: float = 0.12  # paper around the ink's box, as a fraction of the box's longer side
    size: int = 105  # the model's input side

    def __post_init__(self):
        if not 0 < self.block <= 1 or self.contrast <= 0 or not 0 <= self.margin < 1:
            raise ValueError(f"bad paper settings: {self}")


def grayscale(frame: np.ndarray, order: str = "RGB") -> np.ndarray:
    """(H, W), (H, W, 1), (H, W, 3) or (H, W, 4) 8-bit frame -> (H, W) float32 in 0..255.
    `order` names the channels of a colour frame: "RGB", or "BGR" (OpenCV's)."""
    frame = np.asarray(frame)
    if frame.ndim == 3 and frame.shape[2] == 1:
        frame = frame[..., 0]
    if frame.ndim == 2:
        return frame.astype(np.float32)
    if frame.ndim != 3 or frame.shape[2] not in (3, 4):
        raise ValueError(f"expected a grey or colour frame (H, W[, 1|3|4]), got shape {frame.shape}")
    weights = LUMA if order == "RGB" else LUMA[::-1]
    return frame[..., :3].astype(np.float32) @ weights


def box_mean(image: np.ndarray, side: int) -> np.ndarray:
    """The mean over a side x side box around each pixel (edges: the box is clipped)."""
    h, w = image.shape
    r = side // 2
    sums = np.zeros((h + 1, w + 1), np.float64)
    sums[1:, 1:] = image.cumsum(0).cumsum(1)
    top, bottom = np.clip(np.arange(h) - r, 0, h), np.clip(np.arange(h) + r + 1, 0, h)
    left, right = np.clip(np.arange(w) - r, 0, w), np.clip(np.arange(w) + r + 1, 0, w)
    total = (sums[bottom][:, right] - sums[top][:, right] - sums[bottom][:, left]
             + sums[top][:, left])
    area = np.outer(bottom - top, right - left)
    return (total / area).astype(np.float32)


def ink_mask(gray: np.ndarray, paper: Paper = Paper()) -> np.ndarray:
    """Boolean (H, W): the pixels that are ink."""
    side = max(3, int(min(gray.shape) * paper.block) | 1)
    smooth = box_mean(gray, 3)  # the sensor's grain averaged out, a pen stroke kept
    ink = smooth < box_mean(gray, side) - paper.contrast
    neighbours = box_mean(ink.astype(np.float32), 3) * 9  # itself included
    return ink & (neighbours >= 3)  # a speck of paper texture has no inked neighbours


def fit(mask: np.ndarray, paper: Paper = Paper()) -> np.ndarray:
    """The ink's bounding box with its margin, padded square, resized: (size, size, 1) float32,
    ink = 1. The mask must hold some ink."""
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    top, bottom, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    side = max(bottom - top, right - left)
    side += 2 * int(round(side * paper.margin))
    square = np.zeros((side, side), np.float32)
    y, x = (side - (bottom - top)) // 2, (side - (right - left)) // 2
    square[y:y + bottom - top, x:x + right - left] = mask[top:bottom, left:right]
    small = Image.fromarray(square, mode="F").resize((paper.size, paper.size), Image.BOX)
    return (np.asarray(small) >= STROKE).astype(np.float32)[..., None]


def to_input(frame: np.ndarray, paper: Paper = Paper(), order: str = "RGB") -> np.ndarray | None:
    """One camera or video frame -> the model's input (size, size, 1), or None if it has no ink."""
    mask = ink_mask(grayscale(frame, order), paper)
    if mask.mean() < paper.min_ink:
        return None
    return fit(mask, paper)
