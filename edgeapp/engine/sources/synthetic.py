"""The synthetic order-station camera: a counter seen from above where orders are packed.

Each order: a bag and a printed ticket ``ORDER #NNN`` appear, the order's items are put into
the bag one by one (now and then by a visible hand), a pause, then the bag is taken away and
the counter stays empty for a moment. A share of orders is packed wrong. The scene knows the
truth of every frame and every order, and is deterministic for a given seed: ``skip()`` and
``render()`` advance the same timeline, so a paced stream sees the same orders as a full one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from edgeapp.engine.orders.catalog import TICKET_CLASS, Catalog
from edgeapp.engine.sources.sprites import Sprite, draw_hand, draw_product, draw_ticket

ERROR_KINDS = ("missing", "extra", "quantity")


@dataclass(frozen=True)
class FrameTruth:
    """What one frame shows: item/ticket boxes (xyxy pixels) and classes, and the order on it."""

    frame_index: int
    order_id: str | None
    boxes: np.ndarray
    classes: np.ndarray
    hand: bool = False


@dataclass(frozen=True)
class OrderTruth:
    """What one order really was: expected items, packed items and the right verdict."""

    order_id: str
    station_id: str
    expected: dict[str, int]
    packed: dict[str, int]
    error: str | None
    start_frame: int
    end_frame: int

    @property
    def verdict(self) -> str:
        """``validated`` when the bag holds exactly the order, else ``mismatch``."""
        return "validated" if self.packed == self.expected else "mismatch"


@dataclass
class _Placed:
    sprite: Sprite
    x: int
    y: int
    cls: int
    at_frame: int
    hand: Sprite | None


@dataclass
class _Order:
    truth: OrderTruth
    ticket: Sprite
    ticket_xy: tuple[int, int]
    bag: tuple[int, int, int, int]
    items: list[_Placed]
    remove_frame: int  # first frame without the bag
    next_frame: int  # first frame of the next order
    gain: float
    offset: float
    hand_out: Sprite | None = None
    cache: dict[str, object] = field(default_factory=dict)


def pack_order(
    expected: dict[str, int], names: tuple[str, ...], rng: np.random.Generator, wrong: bool
) -> tuple[dict[str, int], str | None]:
    """What is really put in the bag: the order, or the order with one packing error."""
    packed = dict(expected)
    if not wrong:
        return packed, None
    kinds = list(ERROR_KINDS)
    if len(packed) < 2:
        kinds.remove("missing")
    if len(packed) == len(names):
        kinds.remove("extra")
    kind = str(rng.choice(kinds))
    if kind == "missing":
        del packed[str(rng.choice(sorted(packed)))]
    elif kind == "extra":
        packed[str(rng.choice([n for n in names if n not in packed]))] = 1
    else:
        name = str(rng.choice(sorted(packed)))
        packed[name] += -1 if packed[name] > 1 and rng.random() < 0.5 else 1
    return packed, kind


class SyntheticScene:
    """Renders the counter frame by frame and keeps the ground truth."""

    def __init__(
        self,
        catalog: Catalog,
        *,
        width: int = 1280,
        height: int = 720,
        fps: float = 15.0,
        seed: int = 0,
        wrong_order_rate: float = 0.2,
        station_id: str = "station-1",
        qr_rate: float = 0.5,
        noise: float = 4.0,
    ) -> None:
        if width < 160 or height < 90 or fps <= 0:
            raise ValueError(f"synthetic camera needs >= 160x90 at fps > 0, got {width}x{height}")
        self.catalog = catalog
        self.width, self.height, self.fps = int(width), int(height), float(fps)
        self.seed = int(seed)
        self.wrong_order_rate = float(wrong_order_rate)
        self.station_id = station_id
        self.qr_rate = float(qr_rate)
        self.scale = min(self.width / 1280, self.height / 720)
        self.frame_index = 0
        self.orders: list[OrderTruth] = []
        self._class_index = {n: i for i, n in enumerate(catalog.class_names)}
        rng = np.random.default_rng([self.seed, 0xC0])
        self._order_ids = sorted(catalog.orders, key=lambda k: (len(k), k))
        rng.shuffle(self._order_ids)
        self._counter = self._draw_counter(rng)
        # Noise tiles larger than the frame; a random offset per frame varies the pattern.
        pad = 64
        self._noise_pos = np.clip(rng.normal(0, noise, (self.height + pad, self.width + pad, 3)),
                                  0, 255).astype(np.uint8)
        self._noise_neg = np.clip(rng.normal(0, noise, (self.height + pad, self.width + pad, 3)),
                                  0, 255).astype(np.uint8)
        self._frame = np.empty((self.height, self.width, 3), np.uint8)
        self._order = self._new_order(0, 0)

    # -- timeline -------------------------------------------------------------------------
    def _sec(self, rng: np.random.Generator, lo: float, hi: float) -> int:
        return max(1, round(rng.uniform(lo, hi) * self.fps))

    def _new_order(self, index: int, start: int) -> _Order:
        rng = np.random.default_rng([self.seed, index, 0x0D])
        order_id = self._order_ids[index % len(self._order_ids)]
        expected = self.catalog.expected(order_id) or {}
        wrong = rng.random() < self.wrong_order_rate
        packed, error = pack_order(expected, self.catalog.item_names, rng, wrong)
        w, h, s = self.width, self.height, self.scale
        t = start + self._sec(rng, 0.8, 1.4)  # empty counter first
        ticket = draw_ticket(order_id, s, rng, qr=bool(rng.random() < self.qr_rate))
        tx = int(rng.uniform(0.03, 0.3) * w - ticket.size[0] * 0.3)
        ty = int(rng.uniform(0.1, 0.85) * h - ticket.size[1] * 0.5)
        tx = int(np.clip(tx, 2, 0.34 * w - ticket.size[0]))
        ty = int(np.clip(ty, 2, h - ticket.size[1] - 2))
        bx0, by0 = int(rng.uniform(0.36, 0.4) * w), int(rng.uniform(0.06, 0.1) * h)
        bag = (bx0, by0, int(rng.uniform(0.93, 0.97) * w), int(rng.uniform(0.9, 0.94) * h))
        units = [n for n, q in packed.items() for _ in range(q)]
        rng.shuffle(units)
        cols, rows = 4, 2
        slots = list(range(cols * rows))
        rng.shuffle(slots)
        cw, ch = (bag[2] - bag[0]) / cols, (bag[3] - bag[1]) / rows
        items: list[_Placed] = []
        placed_at = t + self._sec(rng, 0.4, 0.8)
        for name, slot in zip(units, slots, strict=False):
            sprite = draw_product(name, s, rng)
            sw, sh = sprite.size
            cx = bag[0] + (slot % cols + 0.5 + rng.uniform(-0.22, 0.22)) * cw
            cy = bag[1] + (slot // cols + 0.5 + rng.uniform(-0.2, 0.2)) * ch
            x = int(np.clip(cx - sw / 2, 0, w - sw))
            y = int(np.clip(cy - sh / 2, 0, h - sh))
            hand = draw_hand(s, rng) if rng.random() < 0.5 else None
            items.append(_Placed(sprite, x, y, self._class_index[name], placed_at, hand))
            placed_at += self._sec(rng, 0.45, 0.8)
        remove = placed_at + self._sec(rng, 1.0, 1.6)
        nxt = remove + self._sec(rng, 0.3, 0.6)
        truth = OrderTruth(order_id, self.station_id, dict(expected), packed, error, t,
                           remove - 1)
        self.orders.append(truth)
        return _Order(truth, ticket, (tx, ty), bag, items, remove, nxt,
                      float(rng.uniform(0.78, 1.18)), float(rng.uniform(-14, 14)),
                      draw_hand(s, rng) if rng.random() < 0.5 else None)

    def _advance(self) -> None:
        self.frame_index += 1
        if self.frame_index >= self._order.next_frame:
            self._order = self._new_order(len(self.orders), self.frame_index)

    # -- truth ----------------------------------------------------------------------------
    def _visible(self) -> tuple[bool, list[_Placed]]:
        o, f = self._order, self.frame_index
        on_counter = o.truth.start_frame <= f < o.remove_frame
        return on_counter, [p for p in o.items if on_counter and p.at_frame <= f]

    def _hand_at(self) -> tuple[Sprite, int, int] | None:
        """The hand on screen now, if any: putting an item in, or taking the bag away."""
        o, f = self._order, self.frame_index
        lead = max(2, round(0.3 * self.fps))
        for p in o.items:
            if p.hand is not None and p.at_frame - lead <= f < p.at_frame + lead // 2:
                # Slide in from the bottom edge until the fingers reach the item's lower half.
                k = min(1.0, (f - (p.at_frame - lead)) / lead)
                hw, hh = p.hand.size
                tip_y = p.y + p.sprite.size[1] * 0.65
                y = int(self.height - k * (self.height - tip_y))
                return p.hand, int(p.x + p.sprite.size[0] / 2 - hw / 2), y
        if o.hand_out is not None and o.remove_frame - lead <= f < o.remove_frame:
            hw, _ = o.hand_out.size
            return o.hand_out, int((o.bag[0] + o.bag[2]) / 2 - hw / 2), int(self.height * 0.55)
        return None

    def truth(self) -> FrameTruth:
        """Ground truth of the current frame."""
        on_counter, placed = self._visible()
        boxes: list[tuple[float, float, float, float]] = []
        classes: list[int] = []
        if on_counter:
            tw, th = self._order.ticket.size
            tx, ty = self._order.ticket_xy
            boxes.append((tx, ty, tx + tw, ty + th))
            classes.append(self._class_index[TICKET_CLASS])
        for p in placed:
            boxes.append((p.x, p.y, p.x + p.sprite.size[0], p.y + p.sprite.size[1]))
            classes.append(p.cls)
        return FrameTruth(
            self.frame_index,
            self._order.truth.order_id if on_counter else None,
            np.asarray(boxes, np.float32).reshape(-1, 4),
            np.asarray(classes, np.int32),
            self._hand_at() is not None,
        )

    # -- rendering ------------------------------------------------------------------------
    def _draw_counter(self, rng: np.random.Generator) -> np.ndarray:
        w, h = self.width, self.height
        base = np.array(rng.choice([(150, 160, 170), (95, 120, 150), (175, 175, 170)]), np.float32)
        ramp = np.linspace(0.9, 1.08, w, dtype=np.float32)[None, :, None]
        img = np.clip(base * ramp * np.ones((h, 1, 1), np.float32), 0, 255).astype(np.uint8)
        for _ in range(40):  # grain / scratches
            y = int(rng.integers(0, h))
            c = tuple(int(v) for v in np.clip(base + rng.normal(0, 12, 3), 0, 255))
            cv2.line(img, (0, y), (w, y + int(rng.integers(-20, 20))), c, int(rng.integers(1, 3)))
        return img

    @staticmethod
    def _paste(dst: np.ndarray, sprite: Sprite, x: int, y: int) -> None:
        h, w = dst.shape[:2]
        sw, sh = sprite.size
        x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + sw, w), min(y + sh, h)
        if x0 >= x1 or y0 >= y1:
            return
        src = sprite.image[y0 - y:y1 - y, x0 - x:x1 - x]
        np.copyto(dst[y0:y1, x0:x1], src, where=sprite.mask[y0 - y:y1 - y, x0 - x:x1 - x])

    def _static(self, placed: list[_Placed], on_counter: bool) -> np.ndarray:
        """Counter, bag, ticket and the items put in so far; rebuilt only when that changes."""
        o = self._order
        key = (on_counter, len(placed))
        if o.cache.get("key") != key:
            img = self._counter.copy()
            if on_counter:
                b = o.bag
                cv2.rectangle(img, (b[0], b[1]), (b[2], b[3]), (95, 140, 180), -1)
                cv2.rectangle(img, (b[0], b[1]), (b[2], b[3]), (60, 95, 130),
                              max(2, int(8 * self.scale)))
                self._paste(img, o.ticket, *o.ticket_xy)
                for p in placed:
                    self._paste(img, p.sprite, p.x, p.y)
            o.cache["key"], o.cache["img"] = key, img
        return o.cache["img"]  # type: ignore[return-value]

    def render(self) -> tuple[np.ndarray, FrameTruth]:
        """Draw the current frame (a new array) with its truth, then advance one frame."""
        on_counter, placed = self._visible()
        truth = self.truth()
        frame = self._frame
        np.copyto(frame, self._static(placed, on_counter))
        hand = self._hand_at()
        if hand is not None:
            self._paste(frame, *hand)
        rng = np.random.default_rng([self.seed, self.frame_index, 0xF1])
        gain = self._order.gain * (1 + rng.uniform(-0.02, 0.02))
        out = cv2.convertScaleAbs(frame, alpha=gain, beta=self._order.offset)
        oy, ox = rng.integers(0, 64, 2)
        cv2.add(out, self._noise_pos[oy:oy + self.height, ox:ox + self.width], dst=out)
        oy, ox = rng.integers(0, 64, 2)
        cv2.subtract(out, self._noise_neg[oy:oy + self.height, ox:ox + self.width], dst=out)
        self._advance()
        return out, truth

    def skip(self) -> FrameTruth:
        """Advance one frame without drawing it; returns the skipped frame's truth."""
        truth = self.truth()
        self._advance()
        return truth

    def finished_orders(self) -> list[OrderTruth]:
        """Orders whose bag has already left the counter."""
        return [o for o in self.orders if o.end_frame < self.frame_index]
