"""Decoder architectures and reconstruct(), for every activation shape the target can publish."""

import numpy as np
import pytest

from splitleak.attack import blackbox, config, decoders
from splitleak.attack.blackbox import reconstruct
from splitleak.tools.cli import attack as cmd_attack

IMAGE = (105, 105, 1)
SHAPES = [(33, 33, 32), (13, 13, 32), (4, 4, 32), (1, 1, 32)]  # cut after block 1, 2, 3, 4


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_default_decoder_fits_every_cut(shape, rng):
    decoder = decoders.build("upsample", rng.random((10, *shape)), IMAGE)
    assert decoder.input_shape == (None, *shape)
    assert decoder.output_shape == (None, *IMAGE)
    out = reconstruct(decoder, rng.random((3, *shape)))
    assert out.shape == (3, *IMAGE) and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0


def test_image_shape_comes_from_the_caller(rng):
    decoder = decoders.build("upsample", rng.random((4, 6, 6, 8)), (60, 45, 1))
    assert decoder.output_shape == (None, 60, 45, 1)


def test_seed_stack_is_the_seeds(rng):
    layers = decoders.build("seed", rng.random((4, 1, 1, 32)), IMAGE).layers[1:]
    assert [(layer.filters, layer.kernel_size, layer.strides) for layer in layers] == [
        (32, (9, 9), (1, 1)), (32, (7, 7), (2, 2)), (1, (7, 7), (2, 2)), (1, (5, 5), (2, 2))]
    assert [layer.output_shape[1:] for layer in layers] == [
        (9, 9, 32), (23, 23, 32), (51, 51, 1), (105, 105, 1)]


@pytest.mark.parametrize("shape", SHAPES[:3], ids=lambda s: "x".join(map(str, s)))
def test_seed_refuses_a_spatial_activation(shape, rng):
    got = "x".join(map(str, shape))
    with pytest.raises(ValueError, match=f"1x1x32 activation .* got {got} ->"):
        decoders.build("seed", rng.random((4, *shape)), IMAGE)


def test_reconstruct_accepts_flat_and_refuses_wrong_shapes(rng):
    decoder = decoders.build("upsample", rng.random((4, 1, 1, 32)), IMAGE)
    flat = rng.random((2, 32))
    assert np.allclose(reconstruct(decoder, flat),
                       reconstruct(decoder, flat.reshape(2, 1, 1, 32)))
    assert reconstruct(decoder, np.zeros((0, 32))).shape == (0, *IMAGE)
    with pytest.raises(ValueError, match=r"\(N, 1, 1, 32\), got \(2, 31\)"):
        reconstruct(decoder, np.zeros((2, 31)))


def test_reconstruct_refuses_another_cuts_activation(rng):
    decoder = decoders.build("upsample", rng.random((4, 13, 13, 32)), IMAGE)
    with pytest.raises(ValueError, match=r"\(N, 13, 13, 32\), got \(2, 4, 4, 32\)"):
        reconstruct(decoder, rng.random((2, 4, 4, 32)))


def test_unknown_arch_and_bad_activations(rng):
    with pytest.raises(ValueError, match="unknown decoder arch"):
        decoders.build("resnet", rng.random((4, 1, 1, 32)), IMAGE)
    with pytest.raises(ValueError, match=r"\(N, H, W, C\)"):
        decoders.build("upsample", rng.random((4, 32)), IMAGE)


def test_settings_have_one_source():
    assert decoders.ARCHS is config.ARCHS and blackbox.TrainConfig is config.TrainConfig
    actions = {a.dest: a for a in cmd_attack_train_parser()._actions}
    assert tuple(actions["arch"].choices) == config.ARCHS
    assert actions["arch"].default == config.DEFAULT_ARCH
    assert tuple(actions["loss"].choices) == ("auto", *config.LOSSES)
    defaults = config.TrainConfig()
    assert (actions["epochs"].default, actions["batch"].default, actions["lr"].default,
            actions["patience"].default) == (defaults.epochs, defaults.batch,
                                             defaults.learning_rate, defaults.patience)


def cmd_attack_train_parser():
    import argparse

    parser = argparse.ArgumentParser()
    cmd_attack.add_arguments(parser)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices["train"]


def test_default_1x1_decoder_drops_out_in_training_only(rng):
    decoder = decoders.build("upsample", rng.random((10, 1, 1, 32)), IMAGE)
    assert sum(type(layer).__name__ == "Dropout" for layer in decoder.layers) == 2
    acts = rng.random((4, 1, 1, 32)).astype(np.float32)
    assert not np.allclose(decoder(acts, training=True), decoder(acts, training=True))
    assert np.array_equal(reconstruct(decoder, acts), reconstruct(decoder, acts))


class PoolingStage:
    """A fake black box that publishes a 13x13x4 map: block averages of the image."""

    def run(self, images):
        crop = images[:, :104, :104, 0].reshape(len(images), 13, 8, 13, 8)
        pooled = crop.mean(axis=(2, 4))[..., None]
        return np.concatenate([pooled, pooled ** 2, 1 - pooled, pooled * 0.5], axis=-1)


def test_training_on_a_spatial_map_lowers_the_loss(lite):
    images = lite.attacker.images[:48]
    cfg = config.TrainConfig(epochs=2, batch=16, patience=0, seed=2)
    decoder, history = blackbox.train(PoolingStage(), images, cfg, progress=False)
    assert decoder.input_shape == (None, 13, 13, 4)
    assert history["epochs"][1]["loss"] < history["epochs"][0]["loss"]
    assert reconstruct(decoder, PoolingStage().run(images[:2])).shape == (2, *IMAGE)
