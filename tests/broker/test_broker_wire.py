"""The wire format: round trips, every decoder error, and fuzzing of `decode`."""

import json
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from splitleak.broker import wire

RNG = np.random.default_rng(0)


def float_frame(shape=(1, 1, 32), node="edge-01", seq=7):
    values = RNG.standard_normal(shape).astype(np.float32)
    return wire.Frame(node, seq, 1_700_000_000.25, values)


def int8_frame(shape=(1, 4, 4, 8)):
    values = RNG.integers(-128, 128, size=shape, dtype=np.int8)
    return wire.Frame("edge", 2**64 - 1, 12.5, values, scale=0.05, zero_point=-3)


def test_float32_round_trip():
    frame = float_frame()
    got = wire.decode(wire.encode(frame), expect_shape=(1, 1, 32), expect_dtype="float32")
    assert (got.node_id, got.seq, got.captured_at) == ("edge-01", 7, 1_700_000_000.25)
    assert got.dtype == "float32" and got.activation.shape == (1, 1, 32)
    np.testing.assert_array_equal(got.activation, frame.activation)
    np.testing.assert_array_equal(got.as_float32(), frame.activation)


def test_int8_round_trip_and_dequantize():
    frame = int8_frame()
    got = wire.decode(wire.encode(frame), expect_dtype="int8")
    np.testing.assert_array_equal(got.activation, frame.activation)
    assert got.seq == 2**64 - 1 and got.zero_point == -3
    assert got.scale == pytest.approx(0.05)
    expected = (frame.activation.astype(np.float32) + 3) * np.float32(got.scale)
    np.testing.assert_allclose(got.as_float32(), expected)
    assert got.as_float32().dtype == np.float32


SPLIT_ACTIVATIONS = [(33, 33, 32), (13, 13, 32), (4, 4, 32), (1, 1, 32)]  # K = 1..4


@pytest.mark.parametrize("shape", SPLIT_ACTIVATIONS)
@pytest.mark.parametrize("maker", [float_frame, int8_frame])
def test_round_trip_at_every_split_depth(shape, maker):
    frame = maker(shape=shape)
    payload = wire.encode(frame)
    assert len(payload) <= wire.frame_limit(shape)
    got = wire.decode(payload, expect_shape=shape, expect_dtype=frame.dtype)
    np.testing.assert_array_equal(got.activation, frame.activation)


def test_a_frame_larger_than_the_models_activation_is_refused_by_size():
    big = wire.encode(float_frame(shape=(33, 33, 32)))  # 139 KB: block 1's activation
    assert wire.frame_limit((33, 33, 32)) >= len(big) > 139_000
    with pytest.raises(wire.TooLarge, match=r"limit is \d+ for this model's activation"):
        wire.decode(big, expect_shape=(13, 13, 32))
    with pytest.raises(wire.BadShape, match=r"expected shape \(33, 33, 32\)"):
        wire.decode(wire.encode(float_frame(shape=(13, 13, 32))), expect_shape=(33, 33, 32))
    longest = wire.encode(wire.Frame("n" * 64, 0, 0.0, np.zeros((4, 4, 32), np.float32)))
    assert len(longest) == wire.frame_limit((4, 4, 32))


def test_header_layout_matches_the_documented_table():
    payload = wire.encode(wire.Frame("ab", 5, 2.0, np.zeros((2, 3), np.float32)))
    assert payload[:4] == b"SLAK" and payload[4:8] == bytes([1, 1, 2, 0])
    assert struct.unpack_from("<QdfiH", payload, 8) == (5, 2.0, 0.0, 0, 2)
    assert payload[34:36] == b"ab"
    assert struct.unpack_from("<2I", payload, 36) == (2, 3)
    assert len(payload) == 34 + 2 + 8 + 6 * 4


def patched(payload: bytes, offset: int, fmt: str, value) -> bytes:
    out = bytearray(payload)
    struct.pack_into(fmt, out, offset, value)
    return bytes(out)


GOOD = wire.encode(float_frame(shape=(1, 1, 16), node="edge", seq=3))
NAN = np.full((1, 1, 16), np.nan, np.float32).tobytes()

BAD_PAYLOADS = {
    "too_large": b"SLAK" + bytes(wire.MAX_PAYLOAD),
    "magic": b"JUNK" + GOOD[4:],
    "version": patched(GOOD, 4, "<B", 2),
    "truncated": GOOD[:20],
    "flags": patched(GOOD, 7, "<B", 1),
    "dtype": patched(GOOD, 5, "<B", 9),
    "shape": patched(GOOD, 6, "<B", 0),
    "size": GOOD[:-4],
    "nonfinite": GOOD[:-64] + NAN,
    "quant": patched(GOOD, 24, "<f", 0.5),
    "node_id": patched(GOOD, 34, "<B", ord("/")),
    "timestamp": patched(GOOD, 16, "<d", float("inf")),
}


@pytest.mark.parametrize("reason", sorted(BAD_PAYLOADS))
def test_decoder_errors_have_reasons(reason):
    with pytest.raises(wire.WireError) as info:
        wire.decode(BAD_PAYLOADS[reason])
    assert info.value.reason == reason
    assert isinstance(info.value, ValueError)


def test_error_messages_name_the_problem():
    with pytest.raises(wire.BadShape, match=r"expected shape \(1, 1, 32\) from the loaded "
                                            r"model, frame has \(1, 1, 16\)"):
        wire.decode(GOOD, expect_shape=(1, 1, 32))
    with pytest.raises(wire.BadDtype, match="expected int8 .* frame has float32"):
        wire.decode(GOOD, expect_dtype="int8")
    with pytest.raises(wire.VersionMismatch, match="version 2.*version 1"):
        wire.decode(BAD_PAYLOADS["version"])
    with pytest.raises(wire.Truncated):
        wire.decode(b"SLAK")


def test_int8_quantization_is_checked():
    good = wire.encode(int8_frame(shape=(4,)))
    with pytest.raises(wire.BadQuantization):
        wire.decode(patched(good, 24, "<f", 0.0))
    with pytest.raises(wire.BadQuantization):
        wire.decode(patched(good, 28, "<i", 300))


@pytest.mark.parametrize("node", ["", "a/b", "a+b", "a#", "a b", "x" * 65, "tab\t"])
def test_encode_rejects_bad_node_ids(node):
    with pytest.raises(wire.BadNodeId):
        wire.encode(wire.Frame(node, 0, 0.0, np.zeros(3, np.float32)))


@pytest.mark.parametrize("frame, error", [
    (wire.Frame("e", -1, 0.0, np.zeros(3, np.float32)), wire.BadSequence),
    (wire.Frame("e", 0, float("nan"), np.zeros(3, np.float32)), wire.BadTimestamp),
    (wire.Frame("e", 0, 0.0, np.array([1.0, np.inf], np.float32)), wire.NonFinite),
    (wire.Frame("e", 0, 0.0, np.zeros(3, np.float64)), wire.BadDtype),
    (wire.Frame("e", 0, 0.0, np.zeros((), np.float32)), wire.BadShape),
    (wire.Frame("e", 0, 0.0, np.zeros(wire.MAX_PAYLOAD // 4, np.float32)), wire.TooLarge),
    (wire.Frame("e", 0, 0.0, np.zeros(3, np.int8)), wire.BadQuantization),
    (wire.Frame("e", 0, 0.0, np.zeros(3, np.int8), scale=1e300), wire.BadQuantization),
    (wire.Frame("e", 0, 0.0, np.zeros(3, np.float32), scale=0.1), wire.BadQuantization),
])
def test_encode_validates(frame, error):
    with pytest.raises(error):
        wire.encode(frame)


def test_prediction_round_trip():
    payload = wire.encode_prediction("edge", 4, 2, [0.1, 0.2, 0.7], 10.0, 10.5)
    assert wire.decode_prediction(payload) == {
        "node_id": "edge", "seq": 4, "label": 2, "probs": [0.1, 0.2, 0.7],
        "captured_at": 10.0, "published_at": 10.5}


@pytest.mark.parametrize("payload", [
    b"not json", b"\xff\xfe", b"[1, 2]", b'{"node_id": "edge"}',
    json.dumps({"node_id": "e", "seq": 1, "label": 5, "probs": [0.5, 0.5],
                "captured_at": 1, "published_at": 2}).encode(),
    b'{"node_id":"e","seq":1,"label":0,"probs":[NaN],"captured_at":1,"published_at":2}',
    json.dumps({"v": 9, "node_id": "e", "seq": 1, "label": 0, "probs": [1.0],
                "captured_at": 1, "published_at": 2}).encode(),
])
def test_prediction_decoder_is_strict(payload):
    with pytest.raises(wire.WireError):
        wire.decode_prediction(payload)


def test_encode_prediction_rejects_nan():
    with pytest.raises(wire.WireError):
        wire.encode_prediction("edge", 1, 0, [float("nan")], 1.0, 2.0)


def decode_or_wire_error(payload: bytes):
    try:
        frame = wire.decode(payload)
    except wire.WireError as exc:
        assert exc.reason and str(exc)
        return None
    assert wire.decode(wire.encode(frame)).activation.tobytes() == frame.activation.tobytes()
    return frame


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.binary(max_size=300))
def test_fuzz_arbitrary_bytes(payload):
    decode_or_wire_error(payload)
    decode_or_wire_error(b"SLAK\x01" + payload)


@settings(max_examples=400, deadline=None, derandomize=True)
@given(st.lists(st.tuples(st.integers(0, len(GOOD) - 1), st.integers(0, 255)), max_size=6),
       st.integers(0, len(GOOD)))
def test_fuzz_mutated_frames(edits, cut):
    payload = bytearray(GOOD)
    for offset, value in edits:
        payload[offset] = value
    decode_or_wire_error(bytes(payload[:cut]))
    decode_or_wire_error(bytes(payload))


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.binary(max_size=200))
def test_fuzz_prediction_decoder(payload):
    try:
        wire.decode_prediction(payload)
    except wire.WireError:
        pass
