"""Reconstruction quality: MSE, PSNR and SSIM between originals and reconstructions.

Images are (N, 105, 105, 1) float32 in [0, 1] (ink = 1), so `max_val = 1` throughout. Metrics are
computed per image and then averaged (PSNR of identical images is +inf; JSON gets null). Shared by
the black-box and white-box attacks, and by any defence that wants the same numbers.
"""

import math

import numpy as np

NAMES = ("mse", "psnr", "ssim")


def _check(originals: np.ndarray, reconstructions: np.ndarray) -> None:
    if originals.shape != reconstructions.shape or originals.ndim != 4:
        raise ValueError(f"expected two (N, H, W, C) arrays of one shape, "
                         f"got {originals.shape} and {reconstructions.shape}")
    if len(originals) == 0:
        raise ValueError("no images to compare")


def per_image(originals: np.ndarray, reconstructions: np.ndarray, batch: int = 256) -> dict:
    """{"mse", "psnr", "ssim"} -> float64 arrays of shape (N,)."""
    import tensorflow as tf

    _check(originals, reconstructions)
    x = np.asarray(originals, np.float32)
    y = np.asarray(reconstructions, np.float32)
    out = {"mse": np.mean((x.astype(np.float64) - y) ** 2, axis=(1, 2, 3))}
    psnr, ssim = [], []
    for i in range(0, len(x), batch):
        a, b = tf.constant(x[i:i + batch]), tf.constant(y[i:i + batch])
        psnr.append(tf.image.psnr(a, b, max_val=1.0).numpy())
        ssim.append(tf.image.ssim(a, b, max_val=1.0).numpy())
    out["psnr"] = np.concatenate(psnr).astype(np.float64)
    out["ssim"] = np.concatenate(ssim).astype(np.float64)
    return out


def summarise(scores: dict, mask=None) -> dict:
    """Mean of each per-image metric (over `mask` if given), plus the image count."""
    pick = slice(None) if mask is None else np.asarray(mask)
    summary = {name: _finite_or_none(np.mean(scores[name][pick])) for name in NAMES}
    return summary | {"n": len(scores["mse"][pick])}


def per_group(scores: dict, groups: np.ndarray) -> dict:
    """One summary per distinct group label (e.g. alphabet), sorted by label."""
    groups = np.asarray(groups)
    return {str(g): summarise(scores, groups == g) for g in np.unique(groups)}


def evaluate(originals: np.ndarray, reconstructions: np.ndarray, groups=None) -> dict:
    """Summary of all images, and per group when groups are given."""
    scores = per_image(originals, reconstructions)
    result = summarise(scores)
    if groups is not None:
        result["per_group"] = per_group(scores, groups)
    return result


def _finite_or_none(value) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None
