"""Decoder architectures and reconstruct()."""

import numpy as np
import pytest

from splitleak.attack import decoders
from splitleak.attack.blackbox import reconstruct
from splitleak.tools import cmd_attack


@pytest.mark.parametrize("arch", decoders.ARCHS)
def test_output_shape(arch, rng):
    decoder = decoders.build(arch, rng.random((10, 1, 1, 32)))
    assert decoder.input_shape == (None, 1, 1, 32)
    assert decoder.output_shape == (None, 105, 105, 1)
    out = reconstruct(decoder, rng.random((3, 1, 1, 32)))
    assert out.shape == (3, 105, 105, 1) and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0


def test_seed_stack_is_the_seeds():
    layers = decoders.build("seed").layers[1:]
    assert [(layer.filters, layer.kernel_size, layer.strides) for layer in layers] == [
        (32, (9, 9), (1, 1)), (32, (7, 7), (2, 2)), (1, (7, 7), (2, 2)), (1, (5, 5), (2, 2))]
    assert [layer.output_shape[1:] for layer in layers] == [
        (9, 9, 32), (23, 23, 32), (51, 51, 1), (105, 105, 1)]


def test_reconstruct_accepts_flat_and_refuses_wrong_shapes(rng):
    decoder = decoders.build("upsample")
    flat = rng.random((2, 32))
    assert np.allclose(reconstruct(decoder, flat),
                       reconstruct(decoder, flat.reshape(2, 1, 1, 32)))
    assert reconstruct(decoder, np.zeros((0, 32))).shape == (0, 105, 105, 1)
    with pytest.raises(ValueError, match="shape"):
        reconstruct(decoder, np.zeros((2, 31)))


def test_unknown_arch():
    with pytest.raises(ValueError, match="unknown decoder arch"):
        decoders.build("resnet")


def test_cli_choices_match_the_package():
    assert cmd_attack.ARCHS == decoders.ARCHS


def test_default_decoder_drops_out_in_training_only(rng):
    decoder = decoders.build("upsample", rng.random((10, 1, 1, 32)))
    assert sum(type(layer).__name__ == "Dropout" for layer in decoder.layers) == 2
    acts = rng.random((4, 1, 1, 32)).astype(np.float32)
    assert not np.allclose(decoder(acts, training=True), decoder(acts, training=True))
    assert np.array_equal(reconstruct(decoder, acts), reconstruct(decoder, acts))
