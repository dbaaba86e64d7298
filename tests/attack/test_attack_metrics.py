"""Metric sanity: identical images, known values, shapes, groups."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from splitleak.attack import metrics


def test_identical_images_are_perfect(rng):
    x = rng.random((5, 105, 105, 1), dtype=np.float32)
    scores = metrics.per_image(x, x.copy())
    assert np.all(scores["mse"] == 0)
    assert np.allclose(scores["ssim"], 1.0, atol=1e-5)
    assert np.all(np.isinf(scores["psnr"]))
    summary = metrics.summarise(scores)
    assert summary["mse"] == 0 and summary["psnr"] is None and summary["n"] == 5


def test_opposite_images():
    zeros, ones = np.zeros((2, 16, 16, 1), np.float32), np.ones((2, 16, 16, 1), np.float32)
    summary = metrics.evaluate(zeros, ones)
    assert summary["mse"] == pytest.approx(1.0)
    assert summary["psnr"] == pytest.approx(0.0, abs=1e-4)
    assert summary["ssim"] < 0.01


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 2**31 - 1), st.floats(0.01, 0.5))
def test_psnr_follows_mse(seed, noise):
    rng = np.random.default_rng(seed)
    x = rng.random((3, 16, 16, 1), dtype=np.float32)
    y = np.clip(x + noise * rng.standard_normal(x.shape), 0, 1).astype(np.float32)
    scores = metrics.per_image(x, y)
    mse = np.mean((x.astype(np.float64) - y) ** 2, axis=(1, 2, 3))
    assert np.allclose(scores["mse"], mse)
    expected = [10 * math.log10(1 / m) if m > 0 else math.inf for m in mse]
    assert np.allclose(scores["psnr"], expected, rtol=1e-3)
    assert np.all(scores["ssim"] <= 1.0 + 1e-6)


def test_per_group(rng):
    x = rng.random((6, 16, 16, 1), dtype=np.float32)
    y = x.copy()
    y[:2] = 0
    groups = np.array(["b", "b", "a", "a", "a", "a"])
    result = metrics.evaluate(x, y, groups)
    assert list(result["per_group"]) == ["a", "b"]
    assert result["per_group"]["a"] == {"mse": 0.0, "psnr": None, "ssim": pytest.approx(1.0),
                                        "n": 4}
    assert result["per_group"]["b"]["mse"] == pytest.approx(np.mean(x[:2] ** 2), rel=1e-5)


def test_shape_mismatch_refused():
    with pytest.raises(ValueError, match="one shape"):
        metrics.per_image(np.zeros((2, 16, 16, 1)), np.zeros((2, 16, 15, 1)))
    with pytest.raises(ValueError, match="no images"):
        metrics.per_image(np.zeros((0, 16, 16, 1)), np.zeros((0, 16, 16, 1)))
