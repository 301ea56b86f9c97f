"""Drawn products, tickets and hands for the synthetic order-station camera.

Every sprite is a BGR image plus a binary mask, drawn once at the scene's scale and then
pasted with ``np.copyto(..., where=mask)``: per-frame cost is a few small copies.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

FONT = cv2.FONT_HERSHEY_DUPLEX


@dataclass(frozen=True)
class Sprite:
    """A drawn object: BGR pixels and the mask of pixels that belong to it."""

    image: np.ndarray
    mask: np.ndarray  # (h, w, 1) bool, broadcastable over channels

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return self.image.shape[1], self.image.shape[0]


# Per product: body colour (BGR), accent colour, shape, label. Distinct shapes and colours
# so a small detector can tell them apart, labels so a VLM could read them.
PRODUCTS: dict[str, tuple[tuple[int, int, int], tuple[int, int, int], str, str]] = {
    "burger": ((40, 120, 190), (60, 180, 240), "round", "BURGER"),
    "fries": ((30, 30, 200), (40, 210, 250), "box", "FRIES"),
    "cola": ((40, 30, 170), (245, 245, 245), "cup", "COLA"),
    "water": ((200, 150, 60), (250, 230, 200), "bottle", "WATER"),
    "coffee": ((40, 70, 110), (230, 235, 240), "cup", "COFFEE"),
    "salad": ((60, 160, 60), (120, 220, 150), "bowl", "SALAD"),
    "sandwich": ((140, 200, 225), (70, 150, 90), "triangle", "SANDWICH"),
    "nuggets": ((20, 190, 230), (30, 110, 200), "box", "NUGGETS"),
    "hotdog": ((60, 90, 200), (40, 200, 230), "long", "HOT DOG"),
    "donut": ((180, 120, 240), (90, 50, 120), "ring", "DONUT"),
    "juice": ((20, 140, 250), (60, 200, 90), "carton", "JUICE"),
    "pie": ((60, 170, 210), (30, 90, 150), "sleeve", "PIE"),
}
# Base footprint (w, h) at 1280 px frame width.
SHAPE_SIZE: dict[str, tuple[int, int]] = {
    "round": (112, 112), "box": (92, 118), "cup": (96, 96), "bottle": (70, 150),
    "bowl": (124, 124), "triangle": (130, 110), "long": (160, 66), "ring": (104, 104),
    "carton": (84, 120), "sleeve": (140, 70),
}


def _label(img: np.ndarray, text: str, colour: tuple[int, int, int], scale: float) -> None:
    h, w = img.shape[:2]
    fs = 0.42 * scale
    (tw, th), _ = cv2.getTextSize(text, FONT, fs, 1)
    fs *= min(1.0, (w * 0.86) / max(tw, 1))
    (tw, th), _ = cv2.getTextSize(text, FONT, fs, 1)
    org = ((w - tw) // 2, (h + th) // 2)
    cv2.putText(img, text, org, FONT, fs, colour, max(1, round(scale)), cv2.LINE_AA)


def draw_product(name: str, scale: float, rng: np.random.Generator) -> Sprite:
    """Draw one instance of a product at ``scale`` (1.0 = 1280 px frame) with small variation."""
    body, accent, shape, text = PRODUCTS[name]
    jitter = rng.uniform(0.9, 1.1)
    bw, bh = SHAPE_SIZE[shape]
    w, h = max(8, int(bw * scale * jitter)), max(8, int(bh * scale * jitter))
    img = np.zeros((h, w, 3), np.uint8)
    mask = np.zeros((h, w), np.uint8)
    tint = rng.integers(-18, 19, 3)
    body = tuple(int(np.clip(c + t, 0, 255)) for c, t in zip(body, tint, strict=False))
    c = (w // 2, h // 2)
    s = scale * jitter
    if shape in ("round", "cup", "bowl", "ring"):
        r = min(w, h) // 2 - 1
        cv2.circle(mask, c, r, 255, -1)
        cv2.circle(img, c, r, body, -1)
        if shape == "round":  # bun with sesame seeds
            for _ in range(14):
                p = (int(c[0] + rng.uniform(-0.6, 0.6) * r), int(c[1] + rng.uniform(-0.6, 0.6) * r))
                cv2.ellipse(img, p, (max(1, int(3 * s)), max(1, int(2 * s))), 30, 0, 360,
                            accent, -1)
        elif shape == "cup":  # lid and straw hole
            cv2.circle(img, c, int(r * 0.78), accent, -1)
            cv2.circle(img, c, int(r * 0.62), body, max(1, int(3 * s)))
            cv2.circle(img, (c[0] + r // 3, c[1] - r // 3), max(2, int(6 * s)), (20, 20, 20), -1)
        elif shape == "bowl":  # leaves
            for _ in range(9):
                p = (int(c[0] + rng.uniform(-0.55, 0.55) * r),
                     int(c[1] + rng.uniform(-0.55, 0.55) * r))
                cv2.ellipse(img, p, (int(14 * s), int(7 * s)), float(rng.uniform(0, 180)), 0, 360,
                            accent, -1)
        else:  # ring: hole and sprinkles
            cv2.circle(img, c, int(r * 0.84), accent, max(2, int(6 * s)))
            cv2.circle(mask, c, int(r * 0.3), 0, -1)
            cv2.circle(img, c, int(r * 0.3), (0, 0, 0), -1)
    elif shape == "triangle":
        pts = np.array([[2, h - 2], [w - 2, h - 2], [w // 2, 2]], np.int32)
        cv2.fillPoly(mask, [pts], 255)
        cv2.fillPoly(img, [pts], body)
        cv2.polylines(img, [pts], True, accent, max(2, int(6 * s)))
    elif shape == "long":
        cv2.ellipse(mask, c, (w // 2 - 1, h // 2 - 1), 0, 0, 360, 255, -1)
        cv2.ellipse(img, c, (w // 2 - 1, h // 2 - 1), 0, 0, 360, (80, 170, 220), -1)
        cv2.ellipse(img, c, (int(w * 0.44), int(h * 0.24)), 0, 0, 360, body, -1)
        cv2.line(img, (int(w * 0.15), c[1]), (int(w * 0.85), c[1]), accent, max(2, int(4 * s)))
    else:  # box, bottle, carton, sleeve: rounded rectangles with a coloured band
        rad = max(2, int((18 if shape == "bottle" else 6) * s))
        cv2.rectangle(mask, (rad, 0), (w - rad - 1, h - 1), 255, -1)
        cv2.rectangle(mask, (0, rad), (w - 1, h - rad - 1), 255, -1)
        for cx in (rad, w - rad - 1):
            for cy in (rad, h - rad - 1):
                cv2.circle(mask, (cx, cy), rad, 255, -1)
        img[mask > 0] = body
        if shape == "box":  # fries sticks / nugget bumps on top
            for k in range(6):
                x = int(w * (0.15 + 0.14 * k))
                cv2.rectangle(img, (x, 0), (x + max(2, int(7 * s)), int(h * 0.3)), accent, -1)
        elif shape == "bottle":
            cv2.circle(img, (w // 2, int(h * 0.1)), max(3, int(10 * s)), accent, -1)
        elif shape == "carton":
            cv2.rectangle(img, (0, int(h * 0.62)), (w, int(h * 0.8)), accent, -1)
        else:
            cv2.rectangle(img, (int(w * 0.06), int(h * 0.12)), (int(w * 0.3), int(h * 0.88)),
                          accent, -1)
    band = img.copy()
    _label(band, text, (250, 250, 250) if sum(body) < 420 else (20, 20, 20), s)
    img = np.where(mask[..., None] > 0, band, img)
    return _rotate(img, mask, float(rng.uniform(-25, 25)))


def _rotate(img: np.ndarray, mask: np.ndarray, angle: float) -> Sprite:
    h, w = mask.shape
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    cos, sin = abs(m[0, 0]), abs(m[0, 1])
    nw, nh = int(h * sin + w * cos) + 2, int(h * cos + w * sin) + 2
    m[0, 2] += nw / 2 - w / 2
    m[1, 2] += nh / 2 - h / 2
    img = cv2.warpAffine(img, m, (nw, nh), flags=cv2.INTER_LINEAR)
    mask = cv2.warpAffine(mask, m, (nw, nh), flags=cv2.INTER_NEAREST)
    ys, xs = np.nonzero(mask)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    return Sprite(img[y0:y1, x0:x1].copy(), (mask[y0:y1, x0:x1] > 0)[..., None])


def draw_ticket(order_id: str, scale: float, rng: np.random.Generator, qr: bool) -> Sprite:
    """A printed order ticket reading ``ORDER #NNN``, optionally with a QR code of the id."""
    w, h = int(250 * scale), int(170 * scale)
    paper = int(rng.integers(228, 250))
    img = np.full((h, w, 3), (paper, paper, paper - 6), np.uint8)
    ink = (25, 25, 25)
    cv2.putText(img, f"ORDER #{order_id}", (int(12 * scale), int(48 * scale)), FONT,
                0.95 * scale, ink, max(1, round(2 * scale)), cv2.LINE_AA)
    small = 0.42 * scale
    cv2.putText(img, f"COUNTER {int(rng.integers(1, 9))}  {int(rng.integers(10, 23))}:"
                f"{int(rng.integers(10, 59))}", (int(12 * scale), int(80 * scale)), FONT,
                small, ink, 1, cv2.LINE_AA)
    for k in range(3):  # printed item lines, too small to read: just texture
        y = int((104 + 20 * k) * scale)
        x1 = int(rng.uniform(0.35, 0.6 if qr else 0.9) * w)
        cv2.line(img, (int(12 * scale), y), (x1, y), (90, 90, 90), max(1, int(3 * scale)))
    if qr:
        code = cv2.QRCodeEncoder.create().encode(f"ORDER #{order_id}")
        side = int(76 * scale)
        code = cv2.resize(code, (side, side), interpolation=cv2.INTER_NEAREST)
        y0, x0 = h - side - int(8 * scale), w - side - int(8 * scale)
        img[y0:y0 + side, x0:x0 + side] = code[..., None]
    mask = np.full((h, w), 255, np.uint8)
    return _rotate(img, mask, float(rng.uniform(-6, 6)))


def draw_hand(scale: float, rng: np.random.Generator) -> Sprite:
    """A hand with a forearm, pointing up (the arm enters from the bottom edge)."""
    w, h = int(120 * scale), int(330 * scale)
    skin = tuple(int(v) for v in rng.choice(
        [(140, 170, 220), (100, 140, 190), (70, 100, 150), (160, 190, 235)]))
    img = np.zeros((h, w, 3), np.uint8)
    mask = np.zeros((h, w), np.uint8)
    palm = (w // 2, int(60 * scale))
    for m, colour in ((mask, 255), (img, skin)):
        cv2.ellipse(m, palm, (int(46 * scale), int(56 * scale)), 0, 0, 360, colour, -1)
        cv2.rectangle(m, (int(22 * scale), palm[1]), (w - int(22 * scale), h), colour, -1)
        for k in range(4):
            x = int((28 + 20 * k) * scale)
            cv2.ellipse(m, (x, int(14 * scale)), (int(9 * scale), int(26 * scale)), 0, 0, 360,
                        colour, -1)
    sleeve = tuple(int(v) for v in rng.integers(30, 200, 3))
    img[int(h * 0.6):] = np.where(mask[int(h * 0.6):, :, None] > 0, sleeve, 0)
    return Sprite(img, (mask > 0)[..., None])
