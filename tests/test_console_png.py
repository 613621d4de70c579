"""The console's PNG encoder and contour drawing, without sockets (simdaemon.console.png)."""

from __future__ import annotations

import pytest
from pydicom.dataset import Dataset

from simdaemon.console.png import ThumbnailError, contours_on, encode_gray, thumbnail
from tests import objects
from tests.test_console_api import png_pixels


def test_encode_gray_round_trips() -> None:
    pixels = bytes(range(12))
    assert png_pixels(encode_gray(4, 3, pixels)) == (4, 3, pixels)
    with pytest.raises(ValueError, match="is not 4 x 4"):
        encode_gray(4, 4, pixels)


def test_a_thumbnail_spans_black_to_white_and_is_at_most_128_pixels() -> None:
    ct = objects.ct(size=300)
    ct.PixelData = bytes(range(256)) * (300 * 300 * 2 // 256) + b"\0" * (300 * 300 * 2 % 256)
    width, height, pixels = png_pixels(thumbnail(ct))
    assert max(width, height) <= 128
    assert (min(pixels), max(pixels)) == (0, 255)


def test_an_object_without_pixels_has_no_thumbnail() -> None:
    with pytest.raises(ThumbnailError, match="no pixel data"):
        thumbnail(objects.rt_plan())


def _slice() -> Dataset:
    ct = objects.ct(size=64)
    ct.ImagePositionPatient = [0, 0, 0]
    ct.PixelSpacing = [1, 1]
    return ct


def test_contours_are_drawn_in_colour_where_their_points_are() -> None:
    square = [10.0, 10.0, 0.0, 50.0, 10.0, 0.0, 50.0, 50.0, 0.0, 10.0, 50.0, 0.0]
    width, height, rgb = png_pixels(contours_on(_slice(), [(1, square)]), samples=3)
    assert (width, height) == (64, 64)

    def at(x: int, y: int) -> bytes:
        return rgb[(y * width + x) * 3 : (y * width + x) * 3 + 3]

    assert at(30, 10) == at(50, 30) == bytes((64, 255, 64))  # on the square's edges
    red, green, blue = at(30, 30)
    assert red == green == blue  # inside: the gray slice


def test_a_hostile_contour_is_clamped_or_refused_not_walked() -> None:
    far = [0.0, 0.0, 0.0, 1e12, 1e12, 0.0]
    assert png_pixels(contours_on(_slice(), [(2, far)]), samples=3)[:2] == (64, 64)
    with pytest.raises(ThumbnailError, match="finite"):
        contours_on(_slice(), [(2, [float("nan"), 0.0, 0.0])])
