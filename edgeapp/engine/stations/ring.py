"""A fixed ring of frame slots in shared memory: one process writes, others copy frames out.

The station writes each paced frame into the next slot; the engine copies a slot out to hand
it to the Producer, and the UI tiles copy the newest one — no frame is pickled. Each slot has
a small header (a write counter, seq, capture time, height, width) before its pixels. The
write counter is odd while the writer is inside the slot (a seqlock): a reader that sees it
odd, or changed after its copy, got a torn frame and reports the slot as gone.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from multiprocessing import shared_memory

import numpy as np

from edgeapp.errors import InputError

_HEADER = np.dtype([("writes", "<i8"), ("seq", "<i8"), ("ts", "<f8"), ("h", "<i4"),
                    ("w", "<i4")])


@dataclass(frozen=True)
class RingSpec:
    """What a reader needs to attach to a ring: its name, slot count and largest frame."""

    name: str
    slots: int
    height: int
    width: int


@dataclass(frozen=True)
class SlotFrame:
    """A frame copied out of a ring slot."""

    seq: int
    capture_ts: float
    image: np.ndarray


class FrameRing:
    """``slots`` frames of at most ``height`` x ``width`` BGR in one shared-memory block."""

    def __init__(self, spec: RingSpec, *, create: bool) -> None:
        if spec.slots < 1 or spec.height < 1 or spec.width < 1:
            raise InputError(f"frame ring {spec.name}: bad geometry {spec}")
        self.spec = spec
        self._frame_bytes = spec.height * spec.width * 3
        size = spec.slots * (_HEADER.itemsize + self._frame_bytes)
        self._shm = shared_memory.SharedMemory(spec.name, create=create, size=size if create else 0)
        self._owner = create
        buf = self._shm.buf
        self._headers = np.ndarray((spec.slots,), _HEADER, buffer=buf)
        self._pixels = np.ndarray((spec.slots, self._frame_bytes), np.uint8, buffer=buf,
                                  offset=spec.slots * _HEADER.itemsize)
        if create:
            self._headers[:] = np.zeros(spec.slots, _HEADER)
            self._headers["seq"] = -1

    @classmethod
    def create(cls, prefix: str, slots: int, height: int, width: int) -> FrameRing:
        """A new ring with a unique name (``prefix`` makes it recognisable in /dev/shm)."""
        # POSIX names allow no "/"; macOS allows 31 characters.
        name = "ea-" + re.sub(r"[^A-Za-z0-9_-]", "", prefix)[:16] + "-" + secrets.token_hex(4)
        return cls(RingSpec(name, slots, height, width), create=True)

    @classmethod
    def attach(cls, spec: RingSpec) -> FrameRing:
        """The ring another process created."""
        return cls(spec, create=False)

    def fits(self, image: np.ndarray) -> bool:
        """Whether ``image`` fits a slot."""
        h, w = image.shape[:2]
        return h <= self.spec.height and w <= self.spec.width

    def write(self, slot: int, seq: int, capture_ts: float, image: np.ndarray) -> None:
        """Copy ``image`` (BGR uint8) into ``slot``; the only writer is the ring's station."""
        h, w = image.shape[:2]
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3 or not self.fits(
                image):
            raise InputError(f"frame ring {self.spec.name}: cannot hold a {image.dtype} "
                             f"{image.shape} frame")
        header = self._headers[slot:slot + 1]
        header["writes"] += 1  # odd: a reader now knows the slot is being written
        self._pixels[slot, :h * w * 3].reshape(h, w, 3)[...] = image
        header["seq"], header["ts"], header["h"], header["w"] = seq, capture_ts, h, w
        header["writes"] += 1

    def read(self, slot: int, seq: int | None = None) -> SlotFrame | None:
        """A copy of the frame in ``slot`` (only if it still holds ``seq``); None when the
        slot is empty, being written, or was overwritten meanwhile."""
        header = self._headers[slot:slot + 1]
        before = int(header["writes"][0])
        if before % 2 or int(header["seq"][0]) < 0:
            return None
        found, ts = int(header["seq"][0]), float(header["ts"][0])
        h, w = int(header["h"][0]), int(header["w"][0])
        if seq is not None and found != seq:
            return None
        image = self._pixels[slot, :h * w * 3].reshape(h, w, 3).copy()
        if int(header["writes"][0]) != before:
            return None
        return SlotFrame(found, ts, image)

    def newest(self) -> SlotFrame | None:
        """A copy of the most recently written frame, if any."""
        order = np.argsort(self._headers["seq"])[::-1]
        for slot in order:
            if int(self._headers["seq"][slot]) < 0:
                return None
            frame = self.read(int(slot))
            if frame is not None:
                return frame
        return None

    def newest_seq(self) -> int | None:
        """The sequence number of the most recently written frame (no copy), if any."""
        seq = int(self._headers["seq"].max())
        return None if seq < 0 else seq

    def holds(self, seq: int) -> bool:
        """Whether a slot holds frame ``seq`` now (no copy)."""
        return bool((self._headers["seq"] == seq).any())

    def find(self, seq: int) -> SlotFrame | None:
        """A copy of frame ``seq`` if a slot still holds it."""
        hits = np.flatnonzero(self._headers["seq"] == seq)
        return self.read(int(hits[0]), seq) if len(hits) else None

    def close(self) -> None:
        """Detach this process's view (the views above must not be used after this)."""
        del self._headers, self._pixels
        self._shm.close()

    def unlink(self) -> None:
        """Remove the block from the system once every process has closed it."""
        try:
            self._shm.unlink()
        except FileNotFoundError:
            pass
