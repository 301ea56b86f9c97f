"""The application icon: the SVG the window loads and the PNG sizes rendered from it."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import cv2
import pytest

from edgeapp.paths import app_icon_path, icons_dir

SIZES = (16, 24, 32, 48, 64, 128, 256, 512)


def test_svg_icon_is_a_square_svg() -> None:
    root = ET.parse(app_icon_path()).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert root.get("viewBox") == "0 0 512 512"


@pytest.mark.parametrize("size", SIZES)
def test_png_icon_has_its_size_and_transparent_corners(size: int) -> None:
    image = cv2.imread(str(icons_dir() / f"edgeapp-{size}.png"), cv2.IMREAD_UNCHANGED)
    assert image is not None, f"edgeapp-{size}.png is missing: run packaging/render_icons.sh"
    assert image.shape == (size, size, 4), "an RGBA square of its size"
    assert image[0, 0, 3] == 0, "the rounded tile leaves the corner transparent"
    assert image[size // 2, size // 2, 3] == 255, "the middle is opaque"
