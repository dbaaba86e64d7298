"""Black-box training: queries, hold-out, and that training beats an untrained decoder."""

import numpy as np
import pytest

from splitleak.attack import blackbox, decoders
from splitleak.cloud import rundir
from splitleak.edge.runtime import MobileStage


class CountingStage:
    """A fake black box: the activation is a fixed projection of the image."""

    def __init__(self):
        self.calls, self.images = 0, 0
        self.weights = np.random.default_rng(0).standard_normal((105 * 105, 32)) / 100

    def run(self, images):
        self.calls += 1
        self.images += len(images)
        flat = images.reshape(len(images), -1) @ self.weights
        return flat.reshape(len(images), 1, 1, 32).astype(np.float32)


def test_query_chunks_and_order(rng):
    stage = CountingStage()
    images = rng.random((600, 105, 105, 1), dtype=np.float32)
    out = blackbox.query(stage, images)
    assert out.shape == (600, 1, 1, 32)
    assert stage.calls == 3 and stage.images == 600
    assert np.allclose(out[-5:], stage.run(images[-5:]))
    with pytest.raises(ValueError, match="no images"):
        blackbox.query(stage, images[:0])


def test_holdout_is_by_content(lite):
    images = lite.attacker.images[:400]
    mask = blackbox.holdout_mask(images, 5)
    assert 5 <= mask.sum() <= 40
    order = np.random.default_rng(1).permutation(len(images))
    assert np.array_equal(blackbox.holdout_mask(images[order], 5), mask[order])


@pytest.mark.parametrize("bad", [dict(arch="vae"), dict(loss="l1"), dict(epochs=0),
                                 dict(patience=-1), dict(val_percent=0), dict(learning_rate=0)])
def test_config_validation(bad):
    with pytest.raises(ValueError):
        blackbox.TrainConfig(**bad).validate()


@pytest.mark.parametrize("shape", [(4, 105, 105, 1), (2, 30, 40, 3)])
def test_ssim_matches_tensorflow(rng, shape):
    import tensorflow as tf

    ink = (rng.random(shape) > 0.8).astype(np.float32)
    guess = rng.random(shape, dtype=np.float32)
    for a, b in ((ink, guess), (guess, ink), (ink, ink)):
        assert np.allclose(blackbox.ssim(tf.constant(a), tf.constant(b)),
                           tf.image.ssim(a, b, max_val=1.0), atol=1e-6)


def test_loss_choice():
    assert blackbox.TrainConfig(arch="seed").resolved_loss() == "mse"
    assert blackbox.TrainConfig().resolved_loss() == "bce+ssim"


@pytest.mark.slow
@pytest.mark.parametrize("arch", decoders.ARCHS)
def test_training_beats_untrained_decoder(arch, run_dir, lite):
    stage = MobileStage(rundir.mobile(run_dir))
    images = lite.attacker.images[:96]
    activations = stage.run(images)
    cfg = blackbox.TrainConfig(arch=arch, epochs=3, patience=0, seed=3)
    untrained = decoders.build(arch, activations, images.shape[1:])
    trained, history = blackbox.train(stage, images, cfg, progress=False)

    def mse(decoder):
        return float(np.mean((blackbox.reconstruct(decoder, activations) - images) ** 2))

    assert mse(trained) < mse(untrained)
    assert history["kept_epoch"] == 3 and len(history["epochs"]) == 3
    assert history["train_images"] + history["val_images"] == 96


@pytest.mark.slow
@pytest.mark.parametrize("augment", [False, True])
def test_the_same_seed_trains_the_same_decoder(augment, run_dir, lite):
    stage = MobileStage(rundir.mobile(run_dir))
    images = lite.attacker.images[:64]
    cfg = blackbox.TrainConfig(epochs=2, patience=0, seed=5, augment=augment)
    (a, ha), (b, hb) = (blackbox.train(stage, images, cfg, progress=False) for _ in range(2))
    assert ha == hb and len(ha["epochs"]) == 2
    assert all(np.array_equal(x, y) for x, y in zip(a.get_weights(), b.get_weights(), strict=True))
    other, _ = blackbox.train(stage, images, blackbox.TrainConfig(
        epochs=2, patience=0, seed=6, augment=augment), progress=False)
    assert not np.array_equal(other.get_weights()[0], a.get_weights()[0])
