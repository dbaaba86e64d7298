"""Metric sanity: identical images, known values, shapes, groups; identification; scoring."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from splitleak.attack import metrics, replay, scoring
from splitleak.broker.wire import Frame


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
    a = result["per_group"]["a"]
    assert (a["mse"], a["psnr"], a["ssim"], a["n"]) == (0.0, None, pytest.approx(1.0), 4)
    ident = a["identification"]  # its 4 images, each ranked among all 6 originals
    assert (ident["top1"], ident["chance_top1"], ident["chance_top5"], ident["n"]) == (1, 1 / 6, 5 / 6, 4)
    assert result["per_group"]["b"]["mse"] == pytest.approx(np.mean(x[:2] ** 2), rel=1e-5)


def test_shape_mismatch_refused():
    with pytest.raises(ValueError, match="one shape"):
        metrics.per_image(np.zeros((2, 16, 16, 1)), np.zeros((2, 16, 15, 1)))
    with pytest.raises(ValueError, match="no images"):
        metrics.per_image(np.zeros((0, 16, 16, 1)), np.zeros((0, 16, 16, 1)))


def ink(rng, n: int, size: int = 105, density: float = 0.08) -> np.ndarray:
    """Sparse binary "characters": ink = 1 on paper = 0, many with the same amount of ink."""
    return (rng.random((n, size, size, 1)) < density).astype(np.float32)


def chance(n: int) -> dict:
    return {"top1": 1 / n, "top5": min(5, n) / n, "median_rank": (n + 1) / 2}


def test_identical_images_identify_themselves(rng):
    x = ink(rng, 40)
    result = metrics.identification(x, x.copy())
    assert result == {"similarity": metrics.SIMILARITY, "top1": 1.0, "top5": 1.0, "median_rank": 1.0,
                      "chance_top1": 1 / 40, "chance_top5": 5 / 40, "n": 40}


@pytest.mark.parametrize("query", ["blank", "grey", "mean", "one original"])
def test_constant_reconstruction_is_exactly_chance(rng, query):
    x = ink(rng, 37)
    x[3] = 0  # a blank original: no NaN
    pick = {"blank": np.zeros_like(x[0]), "grey": np.full_like(x[0], 0.4), "mean": x.mean(axis=0),
            "one original": x[5]}[query]
    result = metrics.identification(x, np.broadcast_to(pick, x.shape))
    assert {k: result[k] for k in ("top1", "top5", "median_rank")} == chance(37)


def test_ties_are_broken_one_way_for_every_query():
    x = np.zeros((10, 4, 4, 1), np.float32)
    x.reshape(10, -1)[np.arange(10), np.arange(10)] = 1  # one ink pixel each, all distinct
    query = x[:5].sum(axis=0)  # ties originals 0-4 (best) and 5-9 (worst)
    ranks = metrics.ranks(x, np.broadcast_to(query, x.shape))
    assert sorted(ranks) == list(range(1, 11))
    assert set(ranks[:5]) == {1, 2, 3, 4, 5}


def test_noisy_copies_identify_far_above_chance(rng):
    x = ink(rng, 300)
    noisy = np.clip(x + 0.4 * rng.standard_normal(x.shape), 0, 1).astype(np.float32)
    result = metrics.identification(x, noisy)
    assert result["top1"] > 0.9 and result["median_rank"] == 1.0


def test_faint_copies_identify_despite_sparser_originals(rng):
    """Correlation ignores how much ink; by MSE a faint copy is nearest the sparse originals."""
    x = np.concatenate([ink(rng, 20, density=0.02), ink(rng, 20, density=0.1)])
    assert metrics.identification(x, 0.1 * x)["top1"] == 1.0


def test_ranks_match_numpy_correlation(rng, monkeypatch):
    monkeypatch.setattr(metrics, "RANK_CHUNK", 4)  # several chunks
    x = rng.random((11, 8, 8, 1), dtype=np.float32)
    y = np.clip(x + 0.5 * rng.standard_normal(x.shape), 0, 1).astype(np.float32)
    corr = np.corrcoef(y.reshape(11, -1), x.reshape(11, -1))[:11, 11:]
    expected = 1 + (corr > np.diag(corr)[:, None]).sum(axis=1)
    assert list(metrics.ranks(x, y)) == list(expected)


def test_identification_refuses_bad_shapes():
    with pytest.raises(ValueError, match="one shape"):
        metrics.identification(np.zeros((3, 8, 8, 1)), np.zeros((2, 8, 8, 1)))
    with pytest.raises(ValueError, match="no images"):
        metrics.identification(np.zeros((0, 8, 8, 1)), np.zeros((0, 8, 8, 1)))


def test_score_puts_baselines_at_chance_and_writes_nothing(rng, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    x = ink(rng, 24, size=24)
    recons = np.clip(x + 0.3 * rng.standard_normal(x.shape), 0, 1).astype(np.float32)
    groups = np.array(["a", "b"] * 12)
    result = scoring.score(x, recons, groups, ink(rng, 1, size=24)[0] * 0.5)
    assert set(result) == {"n", "reconstruction", "baselines", "per_group"}
    for name in ("blank_page", "attacker_mean_image"):
        ident = result["baselines"][name]["identification"]
        assert {k: ident[k] for k in ("top1", "top5", "median_rank")} == chance(24)
    assert result["reconstruction"]["identification"]["top1"] > 0.9
    assert sorted(result["per_group"]) == ["a", "b"]
    assert result["per_group"]["a"]["identification"]["n"] == 12
    assert list(tmp_path.iterdir()) == []


def test_captures_score_with_the_same_keys(rng):
    x = ink(rng, 6, size=24)
    frames = [Frame("pi" if i < 4 else "cam", i, 0.0, np.zeros((1, 1, 2), np.float32))
              for i in range(6)]
    scored = replay.score(frames, {}, x, "c.txt", truth=x, attacker_mean=x.mean(axis=0))
    assert set(scored) - {"capture", "frames", "rejected", "nodes"} == \
        set(scoring.score(x, x, None, x.mean(axis=0)))
    assert sorted(scored["per_group"]) == ["cam", "pi"]
    assert scored["reconstruction"]["identification"]["top1"] == 1.0
    bare = replay.score(frames, {}, x, "c.txt")
    assert set(bare) == set(scored) and bare["reconstruction"] is None and bare["n"] == 6


def test_report_shows_identification(rng, tmp_path):
    from splitleak.tools.deploy import report

    x = ink(rng, 8, size=24)
    pipeline = {"frames": 8, "predictions_received": 8, "mqtt_accuracy": 1.0,
                "offline_accuracy": 1.0}
    page = report.write(tmp_path, x, x, pipeline, {"reconstructed": 8}).read_text()
    assert "top-1 identification" in page and metrics.SIMILARITY in page and "1x1x32" not in page
    assert "1.000 (0.125; 0.125)" in page  # top-1 (chance; blank page)
    page = report.write(tmp_path, x, x, pipeline, {}, activation_shape=(1, 1, 32)).read_text()
    assert "only 1x1x32 activations" in page
