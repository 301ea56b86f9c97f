"""The Work-API on the wire: round trips without copies, and every reason a message is refused."""

from __future__ import annotations

import msgpack
import numpy as np
import pytest
import zmq

from edgeapp.engine.distributed import protocol as p
from edgeapp.errors import InputError, ProtocolError


def reason(call, *args, **kwargs) -> str:
    with pytest.raises(ProtocolError) as info:
        call(*args, **kwargs)
    return info.value.reason


def collect(*items: tuple[np.ndarray, dict]) -> list:
    parts = [p.message(p.COLLECT, worker="w1")]
    for array, meta in items:
        parts += p.array_parts(array, **meta)
    return parts


META = {"id": 7, "stream_key": "cam-1", "seq": 3}


# --- round trips ----------------------------------------------------------------------------

def test_header_round_trip_keeps_extra_fields() -> None:
    msg = p.unpack(p.message(p.GET_WORK, max_tasks=4, stats={"processed": 2}, future="x"))
    assert msg == {"type": "GET_WORK", "max_tasks": 4, "stats": {"processed": 2}, "future": "x"}


def test_seed_style_confirmation_and_change_decode() -> None:
    conf = p.decode_typed(p.confirmation({"input_size": 640}, work_type="YOLO_DETECTION",
                                         work_load=2, loading_mode=1), p.REPLY_TYPES)
    assert (conf["type"], conf["work_type"], conf["work_load"], conf["loading_mode"],
            conf["input_size"]) == ("REGISTRATION_CONFIRMATION", "YOLO_DETECTION", 2, 1, 640)
    change = p.decode_typed(p.message(p.CHANGE, CHANGE_WORK_LOAD=0), p.REPLY_TYPES)
    assert change["CHANGE_WORK_LOAD"] == 0


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float16", "float32"])
def test_task_round_trip_over_a_socket_is_zero_copy(dtype: str) -> None:
    image = (np.arange(2 * 480 * 640 * 3) % 251).astype(dtype).reshape(2, 480, 640, 3)[1]
    frames = p.inference_reply([(image, {**META, "capture_ts": 1.5})], grade=1)
    with zmq.Context() as ctx, ctx.socket(zmq.PAIR) as a, ctx.socket(zmq.PAIR) as b:
        a.linger = b.linger = 0
        a.bind("inproc://t")
        b.connect("inproc://t")
        a.send_multipart(frames, copy=False)
        parts = b.recv_multipart(copy=False)
    info = p.decode_typed(parts[0], p.REPLY_TYPES)
    [(meta, got)] = p.decode_items(parts)
    assert info["type"] == p.INFERENCE and info["grade"] == 1
    assert meta["grade"] == 1 and meta["capture_ts"] == 1.5 and meta["seq"] == 3
    assert got.dtype == np.dtype(dtype) and np.array_equal(got, image)
    assert not got.flags.writeable, "the array should be a view of the received frame"
    assert np.shares_memory(got, np.frombuffer(parts[2].buffer, dtype=got.dtype))


def test_empty_detections_and_non_contiguous_arrays_travel() -> None:
    empty = np.zeros((0, 6), np.float32)
    strided = np.arange(48, dtype=np.float32).reshape(8, 6)[::2]
    parts = collect((empty, META), (strided, {**META, "seq": 4}))
    items = p.decode_items(parts)
    assert items[0][1].shape == (0, 6)
    assert np.array_equal(items[1][1], strided)
    for _, det in items:
        p.check_detections(det)


def test_big_endian_arrays_are_sent_little_endian() -> None:
    data = np.arange(6, dtype=">f4").reshape(1, 6)
    [(_, got)] = p.decode_items(collect((data, META)))
    assert np.array_equal(got, data)


def test_check_grade_accepts_0_to_2_only() -> None:
    assert [p.check_grade(g) for g in (0, 1, 2)] == [0, 1, 2]
    for bad in (3, -1, True):
        with pytest.raises(InputError):
            p.check_grade(bad)


# --- rejections: one test per reason --------------------------------------------------------

def test_too_large_header_and_array() -> None:
    limits = p.Limits(max_header_bytes=64, max_array_bytes=100)
    assert reason(p.unpack, p.message(p.GET_WORK, pad="x" * 100), limits) == p.REJECT_TOO_LARGE
    meta = {**META, "dtype": "uint8", "shape": [11, 10]}
    assert reason(p.decode_array, meta, b"\0" * 110, limits) == p.REJECT_TOO_LARGE


@pytest.mark.parametrize("junk", [b"", b"\xc1", b"\x85\xa4ty", b"\xff" * 40,
                                  msgpack.packb({"type": "X"})[:-1] + b"\xc1\xc1",
                                  msgpack.packb(msgpack.ExtType(5, b"abc"))])
def test_bad_msgpack(junk: bytes) -> None:
    assert reason(p.unpack, junk) in (p.REJECT_BAD_MSGPACK, p.REJECT_NOT_A_MAP)
    assert reason(p.unpack, junk[:3] + b"\xc1" if junk else b"") == p.REJECT_BAD_MSGPACK


def test_msgpack_length_limits_refuse_huge_containers() -> None:
    limits = p.Limits(max_container_len=8, max_str_len=16)
    assert reason(p.unpack, p.message(p.GET_WORK, xs=list(range(9))), limits) \
        == p.REJECT_BAD_MSGPACK
    assert reason(p.unpack, p.message(p.GET_WORK, s="y" * 17), limits) == p.REJECT_BAD_MSGPACK
    assert reason(p.unpack, p.pack({"type": "A", **{f"k{i}": i for i in range(9)}}), limits) \
        == p.REJECT_BAD_MSGPACK


def test_not_a_map_missing_type_unknown_type() -> None:
    assert reason(p.unpack, msgpack.packb([1, 2, 3])) == p.REJECT_NOT_A_MAP
    assert reason(p.unpack, msgpack.packb({"kind": "GET_WORK"})) == p.REJECT_MISSING_TYPE
    assert reason(p.unpack, msgpack.packb({"type": 3})) == p.REJECT_MISSING_TYPE
    assert reason(p.decode_typed, p.message("STEAL_WORK"), p.REQUEST_TYPES) \
        == p.REJECT_UNKNOWN_TYPE
    assert reason(p.decode_typed, p.message(p.INFERENCE), p.REQUEST_TYPES) \
        == p.REJECT_UNKNOWN_TYPE, "a reply type is not a request"


@pytest.mark.parametrize("meta", [
    {"stream_key": "a", "seq": 1},                 # no id
    {"id": "7", "stream_key": "a", "seq": 1},      # id not an int
    {"id": True, "stream_key": "a", "seq": 1},     # bool is not an int
    {"id": 7, "stream_key": 5, "seq": 1},          # stream_key not a str
    {"id": 7, "stream_key": "a", "seq": -1},       # negative seq
    {"id": 7, "stream_key": "a"},                  # no seq
])
def test_bad_fields(meta: dict) -> None:
    assert reason(p.unpack_meta, msgpack.packb(meta)) == p.REJECT_BAD_FIELD
    assert reason(p.field, {"n": "x"}, "n", int) == p.REJECT_BAD_FIELD


@pytest.mark.parametrize("dtype", ["float64", "int64", "object", "<U8", None, 3, "bool"])
def test_bad_dtype(dtype: object) -> None:
    meta = {**META, "dtype": dtype, "shape": [1]}
    assert reason(p.decode_array, meta, b"\0" * 8) == p.REJECT_BAD_DTYPE
    with pytest.raises(ProtocolError):
        p.array_parts(np.zeros(1, np.float64), **META)


@pytest.mark.parametrize("shape", [[], [1, 1, 1, 1, 1], [-1], [2.0], ["2"], [1 << 20], None,
                                   [True]])
def test_bad_shape(shape: object) -> None:
    meta = {**META, "dtype": "uint8", "shape": shape}
    assert reason(p.decode_array, meta, b"\0" * 2) == p.REJECT_BAD_SHAPE


def test_size_mismatch() -> None:
    meta = {**META, "dtype": "float32", "shape": [2, 6]}
    assert reason(p.decode_array, meta, b"\0" * 47) == p.REJECT_SIZE_MISMATCH
    assert reason(p.decode_array, meta, b"\0" * 49) == p.REJECT_SIZE_MISMATCH
    assert p.decode_array(meta, b"\0" * 48).shape == (2, 6)


def test_part_counts() -> None:
    parts = collect((np.zeros((1, 6), np.float32), META))
    assert reason(p.task_pairs, parts[:-1]) == p.REJECT_BAD_PARTS
    many = parts[:1] + parts[1:] * 70
    assert reason(p.task_pairs, many) == p.REJECT_TOO_MANY_PARTS


def test_detections_must_be_float32_n_by_6() -> None:
    assert reason(p.check_detections, np.zeros((2, 6), np.float16)) == p.REJECT_BAD_DTYPE
    assert reason(p.check_detections, np.zeros((2, 5), np.float32)) == p.REJECT_BAD_SHAPE
    assert reason(p.check_detections, np.zeros(6, np.float32)) == p.REJECT_BAD_SHAPE


def test_recv_bounded_drops_overlong_messages_and_stays_in_step() -> None:
    with zmq.Context() as ctx, ctx.socket(zmq.PUSH) as push, ctx.socket(zmq.PULL) as pull:
        push.linger = pull.linger = 0
        pull.bind("inproc://b")
        push.connect("inproc://b")
        push.send_multipart([b"x"] * 500)
        push.send_multipart([b"a", b"b"])
        assert pull.poll(1000)
        assert reason(p.recv_bounded, pull, 10) == p.REJECT_TOO_MANY_PARTS
        assert [f.bytes for f in p.recv_bounded(pull, 10)] == [b"a", b"b"]
        with pytest.raises(zmq.Again):
            p.recv_bounded(pull, 10)


def test_reject_counter_counts_per_reason() -> None:
    counter = p.RejectCounter()
    for r in ("bad_dtype", "bad_dtype", "too_large"):
        counter.add(r)
    assert counter.snapshot() == {"bad_dtype": 2, "too_large": 1} and counter.total() == 3
