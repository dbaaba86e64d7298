"""Edge defences: specs, what each does to an activation, the device that applies them."""

import numpy as np
import pytest

from splitleak.broker import wire
from splitleak.edge import defences
from tests.conftest import splitleak


class FakeStage:
    """A stage whose activation is the image's first 32 pixels (float32)."""
    output_shape, output_quant, sha256 = (32,), (0.0, 0), "0" * 64

    def run_raw(self, image):
        return image.reshape(-1)[:32].astype(np.float32)

    def run(self, images):
        return np.stack([self.run_raw(i) for i in images])


def test_specs_parse_chain_and_describe_themselves():
    chain = defences.parse("noise:gauss:0.5, quant:int8,noise:laplace:2")
    assert [type(d).__name__ for d in chain] == ["Noise", "QuantInt8", "Noise"]
    assert defences.describe(chain) == "noise:gauss:0.5,quant:int8,noise:laplace:2"
    assert defences.parse(None) == () == defences.parse("")


@pytest.mark.parametrize("spec, message", [
    ("noise:uniform:1", "unknown defence 'noise:uniform:1'"),
    ("quant:int4", "unknown defence 'quant:int4'"),
    ("noise:gauss:-1", "must be a positive number"),
    ("noise:gauss:abc", "must be a positive number"),
    ("noise:gauss:nan", "must be a positive number"),
])
def test_bad_specs_are_refused_naming_them(spec, message):
    with pytest.raises(ValueError, match=message):
        defences.parse(spec)


def test_noise_has_the_configured_scale_and_quantisation_255_levels():
    rng = np.random.default_rng(0)
    x = rng.normal(0, 3, (200, 32)).astype(np.float32)
    gauss = defences.Device(FakeStage(), "noise:gauss:0.5", seed=1).run(x)
    laplace = defences.Device(FakeStage(), "noise:laplace:0.5", seed=1).run(x)
    assert np.std(gauss - x[:, :32]) == pytest.approx(0.5, rel=0.05)
    assert np.mean(np.abs(laplace - x[:, :32])) == pytest.approx(0.5, rel=0.05)  # E|L| = b
    quant = defences.Device(FakeStage(), "quant:int8").run(x)
    for frame, clean in zip(quant, x[:, :32], strict=True):
        step = np.abs(clean).max() / 127
        assert len(np.unique(frame)) <= 255 and np.abs(frame - clean).max() <= step / 2 + 1e-6


def test_the_device_publishes_float32_only_with_a_defence_and_seeds_repeat():
    image = np.arange(64, dtype=np.float32).reshape(8, 8, 1)
    clean = defences.Device(FakeStage())
    assert not clean.random and clean.spec == ""
    np.testing.assert_array_equal(clean.publish_raw(image)[0], image.reshape(-1)[:32])
    a = defences.Device(FakeStage(), "noise:gauss:1", seed=5)
    b = defences.Device(FakeStage(), "noise:gauss:1", seed=5)
    np.testing.assert_array_equal(a.run(image[None]), b.run(image[None]))
    assert a.random and a.publish_raw(image)[1:] == (0.0, 0)


def test_the_node_status_carries_its_defence():
    status = wire.decode_status(wire.encode_status("online", "a" * 64, 1.0, "quant:int8"))
    assert status["defense"] == "quant:int8"
    older = b'{"state":"online","model_sha256":"' + b"a" * 64 + b'","wire_version":1,' \
        b'"started_at":1.0}'
    assert wire.decode_status(older)["defense"] == ""
    with pytest.raises(wire.WireError, match="defense must be a string"):
        wire.decode_status(older[:-1] + b',"defense":7}')


def test_the_edge_refuses_a_bad_defence_in_one_line(tmp_path):
    result = splitleak("edge", "--model", tmp_path / "none.tflite", "--broker",
                       "mqtt://127.0.0.1:1", "--defense", "noise:pink:1")
    assert result.returncode == 2 and "unknown defence 'noise:pink:1'" in result.stderr
    assert result.stderr.count("\n") == 1
