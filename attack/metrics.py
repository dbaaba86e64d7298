"""Reconstruction quality: MSE, PSNR, SSIM, and identification, between originals and reconstructions.

Images are (N, 105, 105, 1) float32 in [0, 1] (ink = 1), so `max_val = 1` throughout. Metrics are
computed per image and then averaged (PSNR of identical images is +inf; JSON gets null). Shared by
the black-box and white-box attacks, and by any defence that wants the same numbers.

Identification asks whether a reconstruction singles out its own original: rank all N originals
by their Pearson correlation with reconstruction i (over pixels) and find the rank of original i;
top-1 and top-5 are the fractions ranked first and among the first five, beside chance (1/N, 5/N).
Correlation rather than negative MSE: MSE favours originals with little ink, since a faint or
blurry reconstruction is near every sparse character, so a few sparse originals come first for
nearly every query; correlation compares where the ink is, not how much. A constant image
correlates 0 with everything. Rank = 1 + the originals more similar than the true one + those
exactly as similar that come before it in `originals`: a fixed order, the same for every query,
so a constant reconstruction (a blank page, one mean image for all) ranks the originals in one
order and scores exactly chance (top-1 1/N, top-5 5/N, median rank (N + 1) / 2), where counting
every tie against it would put it below chance.
"""

import hashlib
import math

import numpy as np

NAMES = ("mse", "psnr", "ssim")
SIMILARITY = "pearson"
RANK_CHUNK = 256  # reconstructions ranked per matrix product


def _check(originals: np.ndarray, reconstructions: np.ndarray) -> None:
    if originals.shape != reconstructions.shape or originals.ndim != 4:
        raise ValueError(f"expected two (N, H, W, C) arrays of one shape, "
                         f"got {originals.shape} and {reconstructions.shape}")
    if len(originals) == 0:
        raise ValueError("no images to compare")


def mse(originals: np.ndarray, reconstructions: np.ndarray) -> np.ndarray:
    """Mean squared error per image, float64 (N,)."""
    _check(originals, reconstructions)
    diff = np.asarray(originals, np.float64) - np.asarray(reconstructions, np.float32)
    return np.mean(diff ** 2, axis=(1, 2, 3))


def per_image(originals: np.ndarray, reconstructions: np.ndarray, batch: int = 256) -> dict:
    """{"mse", "psnr", "ssim", "rank"} -> arrays of shape (N,); `rank` as in `ranks`."""
    import tensorflow as tf

    out = {"mse": mse(originals, reconstructions)}
    x = np.asarray(originals, np.float32)
    y = np.asarray(reconstructions, np.float32)
    psnr, ssim = [], []
    for i in range(0, len(x), batch):
        a, b = tf.constant(x[i:i + batch]), tf.constant(y[i:i + batch])
        psnr.append(tf.image.psnr(a, b, max_val=1.0).numpy())
        ssim.append(tf.image.ssim(a, b, max_val=1.0).numpy())
    out["psnr"] = np.concatenate(psnr).astype(np.float64)
    out["ssim"] = np.concatenate(ssim).astype(np.float64)
    out["rank"] = ranks(x, y)
    return out


def _centred(images: np.ndarray) -> np.ndarray:
    """Images as rows minus their mean; constant images become exactly zero."""
    rows = np.asarray(images, np.float32).reshape(len(images), -1)
    centred = rows - rows.mean(axis=1, keepdims=True)
    centred[np.ptp(rows, axis=1) == 0] = 0.0
    return centred


def ranks(originals: np.ndarray, reconstructions: np.ndarray) -> np.ndarray:
    """For each reconstruction i, the rank (1 = best) of original i among all originals.

    Ranks are int64 (N,), with ties as in the module docstring. Identical reconstructions share
    one row of similarities: a matrix product may round a row differently at another position,
    which would break the fixed order.
    """
    _check(originals, reconstructions)
    x = _centred(originals)
    x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), np.finfo(np.float32).tiny)
    rows = np.ascontiguousarray(reconstructions, np.float32).reshape(len(x), -1)
    first, which = _distinct(rows)
    queries = rows[first]
    out = np.empty(len(x), np.int64)
    for start in range(0, len(queries), RANK_CHUNK):
        sim = _centred(queries[start:start + RANK_CHUNK]) @ x.T  # query scale leaves ranks alone
        mine = np.flatnonzero((which >= start) & (which < start + len(sim)))
        for part in (mine[i:i + RANK_CHUNK] for i in range(0, len(mine), RANK_CHUNK)):
            out[part] = _rank(sim[which[part] - start], part)
    return out


def _distinct(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The index of the first of each set of identical rows, and each row's set number."""
    seen: dict[bytes, int] = {}
    which = np.array([seen.setdefault(hashlib.blake2b(row).digest(), len(seen)) for row in rows])
    return np.unique(which, return_index=True)[1], which


def _rank(sim: np.ndarray, own: np.ndarray) -> np.ndarray:
    """Rank of column own[k] in row k of `sim`; exact ties go to the lower column."""
    mine = sim[np.arange(len(sim)), own][:, None]
    before = np.arange(sim.shape[1]) < own[:, None]
    return 1 + ((sim > mine) | ((sim == mine) & before)).sum(axis=1)


def rank_summary(ranks: np.ndarray, candidates: int) -> dict:
    """Top-1/top-5 rates and median of `ranks` among `candidates` originals, beside chance."""
    ranks = np.asarray(ranks)
    return {"similarity": SIMILARITY, "top1": float(np.mean(ranks <= 1)),
            "top5": float(np.mean(ranks <= 5)), "median_rank": float(np.median(ranks)),
            "chance_top1": 1 / candidates, "chance_top5": min(5, candidates) / candidates,
            "n": len(ranks)}


def identification(originals: np.ndarray, reconstructions: np.ndarray) -> dict:
    """How often each reconstruction picks out its own original among all N (module docstring)."""
    return rank_summary(ranks(originals, reconstructions), len(originals))


def summarise(scores: dict, mask=None) -> dict:
    """Mean of each per-image metric and identification (over `mask` if given), and the count."""
    pick = slice(None) if mask is None else np.asarray(mask)
    summary = {name: _finite_or_none(np.mean(scores[name][pick])) for name in NAMES}
    summary["identification"] = rank_summary(scores["rank"][pick], len(scores["rank"]))
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
