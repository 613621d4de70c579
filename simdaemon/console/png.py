"""A slice of a stored image as a small grayscale PNG, with zlib and struct only (no Pillow).

Uncompressed pixel data (8 or 16 bits, signed or not, one sample per pixel) is sampled down
to at most :data:`THUMBNAIL` pixels a side and windowed from its own darkest to its
brightest sampled value, so any CT or RT Image shows something without a window setting.
"""

from __future__ import annotations

import array
import math
import struct
import sys
import zlib

from pydicom.dataset import Dataset

__all__ = ["THUMBNAIL", "ThumbnailError", "contours_on", "encode_gray", "encode_rgb", "thumbnail"]

#: Contour colours, one per ROI in turn (RGB).
PALETTE = ((255, 64, 64), (64, 255, 64), (64, 160, 255), (255, 220, 0), (255, 64, 255))

#: The longest side of a thumbnail, in pixels.
THUMBNAIL = 128


class ThumbnailError(ValueError):
    """The object has no pixel data this module can draw; the message says why."""


def _chunk(kind: bytes, data: bytes) -> bytes:
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


def encode_gray(width: int, height: int, pixels: bytes) -> bytes:
    """Encode 8-bit grayscale ``pixels`` (row by row) as a PNG file."""
    return _encode(width, height, pixels, 1)


def encode_rgb(width: int, height: int, pixels: bytes) -> bytes:
    """Encode 8-bit RGB ``pixels`` (three bytes a pixel, row by row) as a PNG file."""
    return _encode(width, height, pixels, 3)


def _encode(width: int, height: int, pixels: bytes, samples: int) -> bytes:
    if len(pixels) != width * height * samples or width < 1 or height < 1:
        raise ValueError(f"{len(pixels)} bytes is not {width} x {height} pixels")
    stride = width * samples
    rows = b"".join(b"\x00" + pixels[y * stride : (y + 1) * stride] for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0 if samples == 1 else 2, 0, 0, 0)
    return b"".join(
        [
            b"\x89PNG\r\n\x1a\n",
            _chunk(b"IHDR", header),
            _chunk(b"IDAT", zlib.compress(rows, 6)),
            _chunk(b"IEND", b""),
        ]
    )


def thumbnail(dataset: Dataset) -> bytes:
    """The first frame of ``dataset``'s pixel data as a PNG thumbnail."""
    width, height, _, pixels = _sampled(dataset)
    return encode_gray(width, height, pixels)


def _line(start: tuple[int, int], end: tuple[int, int]) -> list[tuple[int, int]]:
    """The pixels from ``start`` to ``end`` (Bresenham)."""
    (x0, y0), (x1, y1) = start, end
    dx, dy = abs(x1 - x0), -abs(y1 - y0)
    sx, sy = (1 if x0 < x1 else -1), (1 if y0 < y1 else -1)
    error, points = dx + dy, []
    for _ in range(dx - dy + 1):  # bounded: one step per pixel of the longer side
        points.append((x0, y0))
        if (x0, y0) == (x1, y1):
            break
        twice = 2 * error
        if twice >= dy:
            error, x0 = error + dy, x0 + sx
        if twice <= dx:
            error, y0 = error + dx, y0 + sy
    return points


def contours_on(image: Dataset, contours: list[tuple[int, list[float]]]) -> bytes:
    """``image`` as an RGB thumbnail with closed planar contours drawn on it.

    ``contours`` are (ROI number, ContourData in patient millimetres); the image's rows and
    columns are taken as the patient's y and x axes (axial CT, Image Orientation 1\\0\\0\\0\\1\\0).
    """
    width, height, step, gray = _sampled(image)
    rgb = bytearray(b"".join(bytes((v, v, v)) for v in gray))
    origin = [float(v) for v in image.ImagePositionPatient]
    spacing = [float(v) for v in image.PixelSpacing]  # row spacing (y), column spacing (x)

    def pixel(x: float, y: float) -> tuple[int, int]:
        column = (x - origin[0]) / spacing[1] / step
        row = (y - origin[1]) / spacing[0] / step
        if not (math.isfinite(column) and math.isfinite(row)):
            raise ThumbnailError("a contour point is not a finite number")
        # A point far outside the image is drawn towards its edge, never walked to.
        return (max(-width, min(2 * width, round(column))),
                max(-height, min(2 * height, round(row))))  # fmt: skip

    for number, data in contours:
        colour = bytes(PALETTE[number % len(PALETTE)])
        points = [pixel(data[i], data[i + 1]) for i in range(0, len(data) - 2, 3)]
        for start, end in zip(points, points[1:] + points[:1], strict=True):
            for x, y in _line(start, end):
                if 0 <= x < width and 0 <= y < height:
                    rgb[(y * width + x) * 3 : (y * width + x) * 3 + 3] = colour
    return encode_rgb(width, height, bytes(rgb))


def _sampled(dataset: Dataset) -> tuple[int, int, int, bytes]:
    """Width, height, sampling step and 8-bit pixels of the first frame, windowed."""
    if "PixelData" not in dataset:
        raise ThumbnailError("the object has no pixel data")
    if dataset.file_meta.get("TransferSyntaxUID", "") not in (
        "1.2.840.10008.1.2",
        "1.2.840.10008.1.2.1",
    ):
        raise ThumbnailError("only uncompressed little-endian pixel data is drawn")
    if int(dataset.get("SamplesPerPixel", 1)) != 1:
        raise ThumbnailError("only grayscale (one sample per pixel) is drawn")
    rows, columns = int(dataset.Rows), int(dataset.Columns)
    bits = int(dataset.BitsAllocated)
    signed = int(dataset.get("PixelRepresentation", 0)) == 1
    if bits not in (8, 16):
        raise ThumbnailError(f"{bits} bits allocated: only 8 and 16 are drawn")
    values = array.array(("b" if signed else "B") if bits == 8 else ("h" if signed else "H"))
    frame = rows * columns * (bits // 8)
    data = bytes(dataset.PixelData[:frame])
    if len(data) < frame:
        raise ThumbnailError("the pixel data is shorter than Rows x Columns")
    values.frombytes(data)
    if bits == 16 and sys.byteorder == "big":
        values.byteswap()
    step = max(1, -(-max(rows, columns) // THUMBNAIL))
    sampled = [
        values[y * columns + x] for y in range(0, rows, step) for x in range(0, columns, step)
    ]
    width, height = len(range(0, columns, step)), len(range(0, rows, step))
    low, high = min(sampled), max(sampled)
    span = (high - low) or 1
    return width, height, step, bytes((v - low) * 255 // span for v in sampled)
