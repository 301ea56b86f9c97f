"""The Work-API on the wire: message types, encoding, and decoders that validate and reject.

Wire-compatible with the seed (``seeds/distributed-elastic-pipeline.md``): every message part
that is not array data is a msgpack map with a ``type``; arrays travel as a metadata map
(``id, dtype, shape, ...``) followed by one frame holding the raw buffer, sent with
``copy=False`` and read back with ``np.frombuffer`` (no extra copy, never pickle). Extra fields
are allowed and ignored. Every decoder raises :class:`ProtocolError` whose ``reason`` is one of
the ``REJECT_*`` names, so servers can count bad input per reason and drop it.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgpack
import numpy as np
import zmq

from edgeapp.errors import InputError, ProtocolError

# Message types (``type`` field). Strings, as in the seed.
REGISTER = "REGISTER"
REGISTRATION_CONFIRMATION = "REGISTRATION_CONFIRMATION"
GET_WORK = "GET_WORK"
HEARTBEAT = "HEARTBEAT"
INFERENCE = "INFERENCE"
CHANGE = "CHANGE"
NO_WORK = "NO_WORK"
END = "END"
ERROR = "ERROR"
COLLECT = "COLLECT"
#: The thesis code's name for a reply with tasks, and for a push of results (see dialects.py).
WORK = "WORK"

#: What a worker may ask the Producer.
REQUEST_TYPES = frozenset({REGISTER, GET_WORK, HEARTBEAT})
#: What the Producer may answer.
REPLY_TYPES = frozenset(
    {REGISTRATION_CONFIRMATION, INFERENCE, CHANGE, NO_WORK, END, ERROR, HEARTBEAT}
)

# Reasons a message is rejected; servers count drops under these names.
REJECT_TOO_LARGE = "too_large"
REJECT_TOO_MANY_PARTS = "too_many_parts"
REJECT_BAD_PARTS = "bad_parts"
REJECT_BAD_MSGPACK = "bad_msgpack"
REJECT_NOT_A_MAP = "not_a_map"
REJECT_MISSING_TYPE = "missing_type"
REJECT_UNKNOWN_TYPE = "unknown_type"
REJECT_BAD_FIELD = "bad_field"
REJECT_BAD_DTYPE = "bad_dtype"
REJECT_BAD_SHAPE = "bad_shape"
REJECT_SIZE_MISMATCH = "size_mismatch"
REJECT_NOT_REQ = "not_req"
REJECT_NOT_REGISTERED = "not_registered"
REJECT_NON_FINITE = "non_finite"  # detections holding NaN or infinity
REJECT_REVOKED = "revoked"  # the sender's CURVE key is no longer authorised
# A well-formed result that does not answer a task out right now (see WorkerBook.claim):
REJECT_NOT_LEASED = "not_leased"  # no task with this id is leased (never, or not any more)
REJECT_WRONG_STREAM = "wrong_stream"  # the task was handed out for another stream
REJECT_WRONG_SEQ = "wrong_seq"  # ... or with another sequence number
REJECT_WRONG_WORKER = "wrong_worker"  # ... or to another worker
REJECT_STREAM_ENDED = "stream_ended"  # its stream was forgotten while the task was out
REJECT_TOO_MANY_STREAMS = "too_many_streams"  # no stream slot was free for its frames
REJECT_REASONS = (
    REJECT_TOO_LARGE, REJECT_TOO_MANY_PARTS, REJECT_BAD_PARTS, REJECT_BAD_MSGPACK,
    REJECT_NOT_A_MAP, REJECT_MISSING_TYPE, REJECT_UNKNOWN_TYPE, REJECT_BAD_FIELD,
    REJECT_BAD_DTYPE, REJECT_BAD_SHAPE, REJECT_SIZE_MISMATCH, REJECT_NOT_REQ,
    REJECT_NOT_REGISTERED, REJECT_NON_FINITE, REJECT_REVOKED, REJECT_NOT_LEASED,
    REJECT_WRONG_STREAM, REJECT_WRONG_SEQ, REJECT_WRONG_WORKER, REJECT_STREAM_ENDED,
    REJECT_TOO_MANY_STREAMS,
)


class WorkType(str, enum.Enum):
    """What the workers compute (``work_type`` in REGISTRATION_CONFIRMATION)."""

    NONE = "NONE"
    YOLO_DETECTION = "YOLO_DETECTION"
    YOLO_OBB = "YOLO_OBB"


class WorkLoad(enum.IntEnum):
    """Model grade (``work_load`` / ``CHANGE_WORK_LOAD``): YOLO11 n / s / m."""

    LOW = 0
    MEDIUM = 1
    HIGH = 2


class LoadingMode(enum.IntEnum):
    """Load models when first needed (LAZY) or all at registration (EAGER)."""

    LAZY = 0
    EAGER = 1


def check_grade(grade: int) -> int:
    """``grade`` as an int in 0..2, or InputError."""
    if isinstance(grade, bool) or int(grade) not in tuple(WorkLoad):
        raise InputError(f"grade must be 0, 1 or 2 (LOW/MEDIUM/HIGH), got {grade!r}")
    return int(grade)


#: dtype names allowed on the wire, mapped to explicit little-endian numpy dtypes.
ALLOWED_DTYPES: dict[str, np.dtype] = {
    "uint8": np.dtype("u1"),
    "uint16": np.dtype("<u2"),
    "float16": np.dtype("<f2"),
    "float32": np.dtype("<f4"),
}


@dataclass(frozen=True)
class Limits:
    """Bounds on what a decoder accepts; anything beyond is rejected, never allocated."""

    max_header_bytes: int = 64 * 1024
    max_str_len: int = 4096
    max_container_len: int = 256
    max_parts: int = 1 + 2 * 64
    max_rank: int = 4
    max_dim: int = 1 << 16
    max_array_bytes: int = 128 * 1024 * 1024

    @property
    def max_batch(self) -> int:
        """Most (metadata, data) pairs in one message."""
        return (self.max_parts - 1) // 2


DEFAULT_LIMITS = Limits()


class RejectCounter:
    """Counts rejected messages per reason; one thread adds, any thread may read."""

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}

    def add(self, reason: str) -> None:
        """Count one message rejected for ``reason``."""
        self._counts[reason] = self._counts.get(reason, 0) + 1

    def total(self) -> int:
        """All rejected messages."""
        return sum(self.snapshot().values())

    def snapshot(self) -> dict[str, int]:
        """Counts per reason (``dict(d)`` copies under the GIL in one step)."""
        return dict(self._counts)


# --------------------------------------------------------------------------- headers


def pack(msg: Mapping[str, Any]) -> bytes:
    """Encode one header map (must contain ``type``) to msgpack bytes."""
    return msgpack.packb(dict(msg), use_bin_type=True)


def _load_map(buf: bytes | memoryview | zmq.Frame, limits: Limits, what: str) -> dict:
    """msgpack-decode one map with every length bounded; ProtocolError on anything else."""
    data = buf.buffer if isinstance(buf, zmq.Frame) else buf
    if len(data) > limits.max_header_bytes:
        raise ProtocolError(REJECT_TOO_LARGE, f"{what} of {len(data)} bytes")
    try:
        obj = msgpack.unpackb(
            data, raw=False, strict_map_key=True,
            max_str_len=limits.max_str_len,
            max_bin_len=limits.max_str_len, max_array_len=limits.max_container_len,
            max_map_len=limits.max_container_len, max_ext_len=0,
        )
    except Exception as exc:  # msgpack raises several unrelated types on garbage
        raise ProtocolError(REJECT_BAD_MSGPACK, type(exc).__name__) from None
    if not isinstance(obj, dict):
        raise ProtocolError(REJECT_NOT_A_MAP, type(obj).__name__)
    return obj


def unpack(buf: bytes | memoryview | zmq.Frame, limits: Limits = DEFAULT_LIMITS) -> dict:
    """Decode one header map and require a string ``type``; ProtocolError on anything odd."""
    obj = _load_map(buf, limits, "header")
    if not isinstance(obj.get("type"), str):
        raise ProtocolError(REJECT_MISSING_TYPE)
    return obj


def decode_typed(buf: bytes | memoryview | zmq.Frame, allowed: frozenset[str],
                 limits: Limits = DEFAULT_LIMITS) -> dict:
    """:func:`unpack` and require ``type`` to be one of ``allowed``."""
    msg = unpack(buf, limits)
    if msg["type"] not in allowed:
        raise ProtocolError(REJECT_UNKNOWN_TYPE, repr(msg["type"])[:64])
    return msg


def field(msg: Mapping[str, Any], name: str, kind: type | tuple[type, ...], default: Any = None,
          *, required: bool = False) -> Any:
    """``msg[name]`` checked to be of ``kind`` (bool is never an int here)."""
    if name not in msg:
        if required:
            raise ProtocolError(REJECT_BAD_FIELD, f"{name} missing")
        return default
    value = msg[name]
    if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise ProtocolError(REJECT_BAD_FIELD, f"{name} is a bool")
    if not isinstance(value, kind):
        raise ProtocolError(REJECT_BAD_FIELD, f"{name} is {type(value).__name__}")
    return value


# --------------------------------------------------------------------------- arrays


def array_meta(array: np.ndarray, **meta: Any) -> dict:
    """Metadata map of ``array`` (``dtype``, ``shape``) plus ``meta``."""
    return {**meta, "dtype": array.dtype.name, "shape": list(array.shape)}


def array_parts(array: np.ndarray, **meta: Any) -> list[Any]:
    """``[metadata bytes, raw buffer]`` for one array; the buffer is not copied."""
    if array.dtype.name not in ALLOWED_DTYPES:
        raise ProtocolError(REJECT_BAD_DTYPE, array.dtype.name)
    if array.dtype.byteorder == ">":
        array = array.astype(array.dtype.newbyteorder("<"))
    if not array.flags.c_contiguous:
        array = np.ascontiguousarray(array)
    return [pack(array_meta(array, **meta)), array.reshape(-1).view(np.uint8).data]


def check_shape(shape: Any, limits: Limits) -> tuple[int, ...]:
    """A shape from the wire as a tuple, or ProtocolError(bad_shape)."""
    if not isinstance(shape, (list, tuple)) or not 1 <= len(shape) <= limits.max_rank:
        raise ProtocolError(REJECT_BAD_SHAPE, "rank")
    for dim in shape:
        if isinstance(dim, bool) or not isinstance(dim, int) or not 0 <= dim <= limits.max_dim:
            raise ProtocolError(REJECT_BAD_SHAPE, f"dimension {dim!r}")
    return tuple(shape)


def decode_array(meta: Mapping[str, Any], data: bytes | memoryview | zmq.Frame,
                 limits: Limits = DEFAULT_LIMITS) -> np.ndarray:
    """The read-only array ``data`` holds, checked against ``meta`` (no copy)."""
    name = meta.get("dtype")
    dtype = ALLOWED_DTYPES.get(name) if isinstance(name, str) else None
    if dtype is None:
        raise ProtocolError(REJECT_BAD_DTYPE, repr(meta.get("dtype"))[:32])
    shape = check_shape(meta.get("shape"), limits)
    expected = math.prod(shape) * dtype.itemsize
    buf = data.buffer if isinstance(data, zmq.Frame) else memoryview(data)
    if expected > limits.max_array_bytes:
        raise ProtocolError(REJECT_TOO_LARGE, f"array of {expected} bytes")
    if buf.nbytes != expected:
        raise ProtocolError(REJECT_SIZE_MISMATCH, f"{buf.nbytes} bytes for {shape} {dtype}")
    array = np.frombuffer(buf, dtype=dtype).reshape(shape)
    array.flags.writeable = False  # a view of the received message: copy before changing it
    return array


def task_pairs(parts: Sequence[Any], limits: Limits = DEFAULT_LIMITS) -> list[tuple[dict, Any]]:
    """Split ``[info, meta, data, meta, data, ...]`` into undecoded (meta map, data) pairs."""
    if len(parts) > limits.max_parts:
        raise ProtocolError(REJECT_TOO_MANY_PARTS, str(len(parts)))
    if len(parts) % 2 != 1:
        raise ProtocolError(REJECT_BAD_PARTS, f"{len(parts)} parts")
    return [(unpack_meta(parts[i], limits), parts[i + 1]) for i in range(1, len(parts), 2)]


def unpack_meta(buf: bytes | memoryview | zmq.Frame, limits: Limits = DEFAULT_LIMITS) -> dict:
    """Decode an array metadata map (no ``type`` needed) and check ``id``/``stream_key``/``seq``."""
    meta = _load_map(buf, limits, "metadata")
    field(meta, "id", int, required=True)
    field(meta, "stream_key", str, required=True)
    if field(meta, "seq", int, required=True) < 0:
        raise ProtocolError(REJECT_BAD_FIELD, "seq < 0")
    return meta


def decode_items(parts: Sequence[Any], limits: Limits = DEFAULT_LIMITS,
                 ) -> list[tuple[dict, np.ndarray]]:
    """All (metadata, array) pairs after the info part, each validated; all or nothing."""
    return [(meta, decode_array(meta, data, limits)) for meta, data in task_pairs(parts, limits)]


def unpack_result_meta(buf: bytes | memoryview | zmq.Frame,
                       limits: Limits = DEFAULT_LIMITS) -> dict:
    """A result's metadata map: an int ``id``; ``stream_key`` (str or int) and ``seq`` (int
    >= 0) only where the dialect sends them (the thesis code sends no ``seq``)."""
    meta = _load_map(buf, limits, "metadata")
    field(meta, "id", int, required=True)
    field(meta, "stream_key", (str, int))
    if field(meta, "seq", int, 0) < 0:
        raise ProtocolError(REJECT_BAD_FIELD, "seq < 0")
    return meta


def decode_results(parts: Sequence[Any], limits: Limits = DEFAULT_LIMITS,
                   ) -> list[tuple[dict, np.ndarray]]:
    """The (metadata, array) pairs of a result message, each validated; all or nothing.

    An array is either detections (see :func:`check_detections`) or a processed frame
    (uint8, ``(H, W)`` or ``(H, W, C)``), as the thesis code sends back.
    """
    if len(parts) > limits.max_parts:
        raise ProtocolError(REJECT_TOO_MANY_PARTS, str(len(parts)))
    if len(parts) % 2 != 1:
        raise ProtocolError(REJECT_BAD_PARTS, f"{len(parts)} parts")
    items = []
    for i in range(1, len(parts), 2):
        meta = unpack_result_meta(parts[i], limits)
        array = decode_array(meta, parts[i + 1], limits)
        if not is_frame(array):
            check_detections(array)
        items.append((meta, array))
    return items


def is_frame(array: np.ndarray) -> bool:
    """True for a processed image (uint8, rank 2 or 3) rather than detections."""
    return array.dtype == np.uint8 and array.ndim in (2, 3)


def check_task(stream_key: Any, seq: Any, image: Any, meta: Mapping[str, Any]) -> None:
    """What ``Producer.submit`` accepts; InputError (the caller's bug) otherwise."""
    if not isinstance(image, np.ndarray) or image.dtype.name not in ALLOWED_DTYPES:
        raise InputError(f"submit: image must be a numpy array of {sorted(ALLOWED_DTYPES)}")
    if not isinstance(stream_key, str) or not 0 < len(stream_key) <= 256:
        raise InputError("submit: stream_key must be a string of 1..256 characters")
    if isinstance(seq, bool) or not isinstance(seq, (int, np.integer)) or seq < 0:
        raise InputError(f"submit: seq must be an int >= 0, got {seq!r}")
    try:
        pack(meta)
    except Exception as exc:  # msgpack: TypeError/ValueError/OverflowError
        raise InputError(f"submit: extra fields must be plain data (msgpack): {exc}") from None


def check_detections(array: np.ndarray) -> None:
    """Detections are finite float32 ``(N, 6)`` (``x1,y1,x2,y2,score,class``; OBB may add
    columns)."""
    if array.dtype != np.float32:
        raise ProtocolError(REJECT_BAD_DTYPE, f"detections are {array.dtype}")
    if array.ndim != 2 or not 6 <= array.shape[1] <= 8:
        raise ProtocolError(REJECT_BAD_SHAPE, f"detections of shape {array.shape}")
    if not np.isfinite(array).all():
        raise ProtocolError(REJECT_NON_FINITE, "NaN or infinity in detections")


def message(kind: str, **fields: Any) -> bytes:
    """One packed header map of type ``kind``."""
    return pack({"type": kind, **fields})


def confirmation(extra: Mapping[str, Any], **fields: Any) -> bytes:
    """REGISTRATION_CONFIRMATION: ``work_type, work_load, loading_mode`` and the settings."""
    return pack({**extra, **fields, "type": REGISTRATION_CONFIRMATION})


def inference_reply(items: Sequence[tuple[np.ndarray, dict]], grade: int,
                    kind: str = INFERENCE) -> list[Any]:
    """``[info, meta, data, ...]`` for tasks handed out at ``grade`` (buffers not copied).

    ``kind`` is the reply's type (``WORK`` for the thesis code); each task's metadata says
    ``type: INFERENCE``, which the thesis code needs and others ignore.
    """
    frames: list[Any] = [message(kind, n=len(items), grade=grade)]
    for image, meta in items:
        frames += array_parts(image, **meta, grade=grade, type=INFERENCE)
    return frames


def error_reply(reason: str, detail: str = "") -> bytes:
    """The ERROR reply a REQ peer gets for a request that was rejected."""
    return message(ERROR, reason=reason, detail=detail[:200])


def recv_bounded(socket: zmq.Socket, max_parts: int) -> list[zmq.Frame]:
    """Receive one multipart message without copying, never keeping more than ``max_parts``.

    Parts beyond the cap are read and thrown away one by one (memory stays bounded) and the
    message is rejected with ``too_many_parts``. Raises ``zmq.Again`` when nothing is waiting.
    """
    parts = [socket.recv(zmq.NOBLOCK, copy=False)]
    while parts[-1].more:
        if len(parts) >= max_parts:
            while socket.recv(copy=False).more:
                pass
            raise ProtocolError(REJECT_TOO_MANY_PARTS, f"more than {max_parts}")
        parts.append(socket.recv(copy=False))
    return parts
