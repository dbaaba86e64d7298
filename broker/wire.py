"""The one wire format for activations (edge -> cloud) and predictions (cloud -> edge).

Depends on numpy and the standard library only, so edge, cloud and attacker share it.

Activation frame, version 1, all integers little-endian:

    offset  size    type     field
    0       4       bytes    magic b"SLAK"
    4       1       u8       version (1)
    5       1       u8       dtype code: 1 = float32, 2 = int8
    6       1       u8       ndim (1..8)
    7       1       u8       flags (reserved, must be 0)
    8       8       u64      sequence number
    16      8       f64      capture time (unix seconds)
    24      4       f32      int8 scale (0 for float32)
    28      4       i32      int8 zero point (0 for float32)
    32      2       u16      node id length N (1..64)
    34      N       bytes    node id, UTF-8
    34+N    4*ndim  u32      shape, one u32 per dimension
    34+N+4*ndim     ...      activation values, C order, little-endian (1 or 4 bytes each)

No message is longer than MAX_PAYLOAD; a subscriber that knows the model's activation shape
also refuses any frame longer than that activation needs (`frame_limit`). `decode` checks every
field and raises a
`WireError` subclass whose `reason` ("magic", "version", "truncated", ...) is a short
counter key. Predictions and node status are small JSON objects (`encode_prediction`,
`decode_prediction`, `encode_status`, `decode_status`).
"""

import json
import math
import numbers
import struct
from dataclasses import dataclass

import numpy as np

from splitleak.broker.topics import MAX_NODE_ID_BYTES, check_node_id

MAGIC = b"SLAK"
VERSION = 1
MAX_PAYLOAD = 1 << 20  # any message; a frame is further bounded by its model (frame_limit)
MAX_JSON = 64 * 1024  # predictions and status
MAX_NDIM = 8
HEADER = struct.Struct("<4sBBBBQdfiH")  # magic .. node id length: 34 bytes
DTYPES = {1: np.dtype("<f4"), 2: np.dtype("i1")}
DTYPE_CODES = {"float32": 1, "int8": 2}
DTYPE_NAMES = {code: name for name, code in DTYPE_CODES.items()}


class WireError(ValueError):
    """A message that is not a valid splitleak frame; `reason` is a short counter key."""

    reason = "invalid"


class TooLarge(WireError):
    reason = "too_large"


class BadMagic(WireError):
    reason = "magic"


class VersionMismatch(WireError):
    reason = "version"


class Truncated(WireError):
    reason = "truncated"


class BadFlags(WireError):
    reason = "flags"


class BadDtype(WireError):
    reason = "dtype"


class BadSize(WireError):
    reason = "size"


class BadShape(WireError):
    reason = "shape"


class NonFinite(WireError):
    reason = "nonfinite"


class BadQuantization(WireError):
    reason = "quant"


class BadNodeId(WireError):
    reason = "node_id"


class BadSequence(WireError):
    reason = "seq"


class BadTimestamp(WireError):
    reason = "timestamp"


class BadPrediction(WireError):
    reason = "prediction"


class BadStatus(WireError):
    reason = "status"


@dataclass(frozen=True, eq=False)  # eq=False: numpy arrays do not compare to a single bool
class Frame:
    """One activation tensor captured on `node_id`; int8 frames carry scale and zero point."""

    node_id: str
    seq: int
    captured_at: float
    activation: np.ndarray
    scale: float = 0.0
    zero_point: int = 0

    @property
    def dtype(self) -> str:
        """'float32' or 'int8'."""
        return str(self.activation.dtype)

    def as_float32(self) -> np.ndarray:
        """The activation as float32: int8 is dequantized as (q - zero_point) * scale."""
        if self.activation.dtype == np.int8:
            q = self.activation.astype(np.float32) - np.float32(self.zero_point)
            return q * np.float32(self.scale)
        return self.activation.astype(np.float32, copy=False)


def _check_frame_fields(node_id, seq, captured_at, dtype_code, scale, zero_point) -> None:
    """Checks shared by encode and decode."""
    try:
        check_node_id(node_id)
    except ValueError as exc:
        raise BadNodeId(str(exc)) from None
    if not isinstance(seq, int) or isinstance(seq, bool) or not 0 <= seq < 2**64:
        raise BadSequence(f"sequence number must be an integer in [0, 2**64), got {seq!r}")
    if not math.isfinite(captured_at) or captured_at < 0:
        raise BadTimestamp(f"capture time must be finite and >= 0, got {captured_at!r}")
    if dtype_code == DTYPE_CODES["float32"] and (scale != 0 or zero_point != 0):
        raise BadQuantization("a float32 frame must have scale 0 and zero point 0")
    if dtype_code == DTYPE_CODES["int8"]:
        if not (math.isfinite(scale) and scale > 0):
            raise BadQuantization(f"an int8 frame needs a finite scale > 0, got {scale!r}")
        if not -128 <= zero_point <= 127:
            raise BadQuantization(f"int8 zero point must be in [-128, 127], got {zero_point!r}")


def _check_values(values: np.ndarray) -> None:
    if values.dtype.kind == "f" and not np.isfinite(values).all():
        raise NonFinite("activation contains NaN or infinity")


def encode(frame: Frame) -> bytes:
    """Serialize `frame`; raises WireError if the frame would not decode."""
    arr = np.asarray(frame.activation)
    code = DTYPE_CODES.get(str(arr.dtype))
    if code is None:
        raise BadDtype(f"activation dtype {arr.dtype} is not supported: use float32 or int8")
    if not 1 <= arr.ndim <= MAX_NDIM or arr.size == 0:
        raise BadShape(f"activation shape {arr.shape} must have 1..{MAX_NDIM} non-zero dimensions")
    with np.errstate(over="ignore", under="ignore"):
        scale = float(np.float32(frame.scale))  # stored as f32: check the value that is sent
    zero_point = int(frame.zero_point)
    seq = frame.seq
    if isinstance(seq, numbers.Integral) and not isinstance(seq, bool):
        seq = int(seq)  # accept numpy integers
    _check_frame_fields(frame.node_id, seq, float(frame.captured_at), code, scale, zero_point)
    _check_values(arr)
    node = frame.node_id.encode("utf-8")
    header = HEADER.pack(MAGIC, VERSION, code, arr.ndim, 0, seq, float(frame.captured_at),
                         scale, zero_point, len(node))
    shape = struct.pack(f"<{arr.ndim}I", *arr.shape)
    payload = b"".join([header, node, shape, arr.astype(DTYPES[code], copy=False).tobytes("C")])
    if len(payload) > MAX_PAYLOAD:
        raise TooLarge(f"frame is {len(payload)} bytes, the limit is {MAX_PAYLOAD}")
    return payload


def frame_limit(shape, dtype: str = "float32") -> int:
    """The longest valid frame carrying an activation of `shape` (longest node id allowed)."""
    values = math.prod(shape) * np.dtype(dtype).itemsize
    return HEADER.size + MAX_NODE_ID_BYTES + 4 * len(shape) + values


def _read_header(payload: bytes, limit: int = MAX_PAYLOAD) -> tuple:
    if len(payload) > limit:
        raise TooLarge(f"message is {len(payload)} bytes, the limit is {limit}"
                       + ("" if limit == MAX_PAYLOAD else " for this model's activation"))
    if len(payload) < 4 or payload[:4] != MAGIC:
        raise BadMagic(f"message does not start with {MAGIC!r}: not a splitleak frame")
    if len(payload) >= 5 and payload[4] != VERSION:
        raise VersionMismatch(f"frame is wire version {payload[4]}, this decoder reads "
                              f"version {VERSION}: update the older side")
    if len(payload) < HEADER.size:
        raise Truncated(f"message is {len(payload)} bytes, shorter than the "
                        f"{HEADER.size}-byte header")
    return HEADER.unpack_from(payload)


def decode(payload: bytes, expect_shape: tuple | None = None,
           expect_dtype: str | None = None) -> Frame:
    """Parse and check a frame; optionally require a shape and dtype ('float32'/'int8')."""
    payload = bytes(payload)
    limit = frame_limit(expect_shape) if expect_shape is not None else MAX_PAYLOAD
    _, _, code, ndim, flags, seq, captured_at, scale, zero_point, n = _read_header(payload, limit)
    if flags != 0:
        raise BadFlags(f"reserved flags byte is {flags:#04x}, expected 0")
    if code not in DTYPES:
        raise BadDtype(f"unknown dtype code {code}: 1 = float32, 2 = int8")
    if not 1 <= ndim <= MAX_NDIM:
        raise BadShape(f"frame has {ndim} dimensions, expected 1..{MAX_NDIM}")
    data_at = HEADER.size + n + 4 * ndim
    if len(payload) < data_at:
        raise Truncated(f"message ends inside the node id or shape ({len(payload)} < {data_at})")
    try:
        node_id = payload[HEADER.size:HEADER.size + n].decode("utf-8")
    except UnicodeDecodeError:
        raise BadNodeId("node id is not valid UTF-8") from None
    _check_frame_fields(node_id, seq, captured_at, code, scale, zero_point)
    shape = struct.unpack_from(f"<{ndim}I", payload, HEADER.size + n)
    if 0 in shape:
        raise BadShape(f"frame shape {shape} has a zero dimension")
    dtype = DTYPES[code]
    expected_bytes = math.prod(shape) * dtype.itemsize
    if len(payload) - data_at != expected_bytes:
        raise BadSize(f"shape {shape} of {DTYPE_NAMES[code]} needs {expected_bytes} bytes, "
                      f"frame carries {len(payload) - data_at}")
    if expect_dtype is not None and DTYPE_NAMES[code] != expect_dtype:
        raise BadDtype(f"expected {expect_dtype} from the loaded model, frame has "
                       f"{DTYPE_NAMES[code]}")
    if expect_shape is not None and tuple(expect_shape) != shape:
        raise BadShape(f"expected shape {tuple(expect_shape)} from the loaded model, "
                       f"frame has {shape}")
    values = np.frombuffer(payload, dtype=dtype, offset=data_at).reshape(shape)
    _check_values(values)
    return Frame(node_id, seq, captured_at, values, float(scale), int(zero_point))


# --- predictions: cloud -> edge, small JSON objects ---------------------------------------

PREDICTION_KEYS = ("node_id", "seq", "label", "probs", "captured_at", "published_at")


def _is_number(x) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def _check_prediction(p: dict) -> dict:
    missing = [k for k in PREDICTION_KEYS if k not in p]
    if missing:
        raise BadPrediction(f"prediction lacks {', '.join(missing)}")
    if p.get("v", VERSION) != VERSION:
        raise VersionMismatch(f"prediction is version {p.get('v')!r}, this decoder reads "
                              f"version {VERSION}")
    try:
        check_node_id(p["node_id"])
    except ValueError as exc:
        raise BadNodeId(str(exc)) from None
    probs = p["probs"]
    if not isinstance(probs, list) or not all(_is_number(x) for x in probs):
        raise BadPrediction("prediction probs must be a list of finite numbers")
    for key in ("seq", "label"):
        if not isinstance(p[key], int) or isinstance(p[key], bool) or p[key] < 0:
            raise BadPrediction(f"prediction {key} must be an integer >= 0, got {p[key]!r}")
    if probs and p["label"] >= len(probs):
        raise BadPrediction(f"label {p['label']} is outside the {len(probs)} probabilities")
    for key in ("captured_at", "published_at"):
        if not _is_number(p[key]):
            raise BadTimestamp(f"prediction {key} must be a finite number, got {p[key]!r}")
    return {k: p[k] for k in PREDICTION_KEYS}


def encode_prediction(node_id: str, seq: int, label: int, probs: list[float],
                      captured_at: float, published_at: float) -> bytes:
    """A prediction as compact UTF-8 JSON; raises WireError on invalid values."""
    msg = {"v": VERSION, "node_id": node_id, "seq": int(seq), "label": int(label),
           "probs": [float(x) for x in probs], "captured_at": float(captured_at),
           "published_at": float(published_at)}
    _check_prediction(msg)
    return json.dumps(msg, separators=(",", ":")).encode("utf-8")


def _json_object(payload: bytes, what: str, error: type[WireError]) -> dict:
    """Parse a small JSON object (no NaN/Infinity); `error` says what is wrong."""
    if len(payload) > MAX_JSON:
        raise TooLarge(f"{what} is {len(payload)} bytes, the limit is {MAX_JSON}")

    def reject_constant(name: str):
        raise error(f"{what} contains {name}, which is not valid JSON")

    try:
        msg = json.loads(bytes(payload).decode("utf-8"), parse_constant=reject_constant)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise error(f"{what} is not valid JSON: {exc}") from None
    if not isinstance(msg, dict):
        raise error(f"{what} must be a JSON object")
    return msg


def decode_prediction(payload: bytes) -> dict:
    """Parse a prediction into a dict with the keys in PREDICTION_KEYS."""
    return _check_prediction(_json_object(payload, "prediction", BadPrediction))


# --- node status: edge -> cloud, retained on splitleak/<node>/status -----------------------

STATES = ("online", "offline")
MAX_DEFENSE = 200  # characters of a defence spec in a status message


def _check_status(s: dict) -> dict:
    if s.get("state") not in STATES:
        raise BadStatus(f"status state must be one of {', '.join(STATES)}, got {s.get('state')!r}")
    if s["state"] == "offline":
        return {"state": "offline"}
    sha, version, started = s.get("model_sha256"), s.get("wire_version"), s.get("started_at")
    if not (isinstance(sha, str) and len(sha) == 64
            and all(c in "0123456789abcdef" for c in sha)):
        raise BadStatus(f"status model_sha256 must be 64 lowercase hex digits, got {sha!r}")
    if not isinstance(version, int) or isinstance(version, bool):
        raise BadStatus(f"status wire_version must be an integer, got {version!r}")
    if not _is_number(started):
        raise BadTimestamp(f"status started_at must be a finite number, got {started!r}")
    defense = s.get("defense", "")
    if not isinstance(defense, str) or len(defense) > MAX_DEFENSE:
        raise BadStatus(f"status defense must be a string of at most {MAX_DEFENSE} characters")
    return {"state": "online", "model_sha256": sha, "wire_version": version,
            "started_at": float(started), "defense": defense}


def encode_status(state: str, model_sha256: str | None = None,
                  started_at: float | None = None, defense: str = "") -> bytes:
    """A node's status as JSON: "online" carries the model hash, the wire version, the
    time the node started streaming (a new start restarts its sequence numbers) and the defence
    applied to its activations (edge/defences.py spec; "" for none)."""
    msg = {"state": state}
    if state == "online":
        msg.update(model_sha256=model_sha256, wire_version=VERSION, started_at=started_at,
                   defense=defense)
    _check_status(msg)
    return json.dumps(msg, separators=(",", ":")).encode("utf-8")


def decode_status(payload: bytes) -> dict:
    """Parse a status message: {"state": "offline"} or "online" with model_sha256,
    wire_version, started_at and defense ("" when an older node sent none). The wire version
    is returned, not checked."""
    return _check_status(_json_object(payload, "status", BadStatus))
