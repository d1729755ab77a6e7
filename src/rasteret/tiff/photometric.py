"""Colour conversions GDAL applies when it reads through libtiff's RGBA interface.

GDAL returns raw samples for almost every photometric interpretation (palette
indices, MinIsWhite values uninverted), but reads two layouts through libtiff's
``TIFFRGBAImage`` and so returns converted pixels; rasteret matches that:

* 8-bit chunky CMYK (``PHOTOMETRIC_SEPARATED``, 4 samples) -> RGBA with
  ``c = (255 - K) * (255 - C) / 255`` (integer division) and alpha 255;
* non-JPEG YCbCr (any chroma subsampling libtiff supports) -> RGB, chroma replicated
  over each subsampling cell, with libtiff's fixed-point ``TIFFYCbCrtoRGB`` tables.

The YCbCr tables use the TIFF defaults (``YCbCrCoefficients`` 0.299/0.587/0.114,
``ReferenceBlackWhite`` 0/255/128/255/128/255): the header model does not carry those
two tags, and every YCbCr file seen so far uses the defaults.
"""

from __future__ import annotations

import numpy as np

#: Chroma subsamplings libtiff's RGBA interface converts (horizontal, vertical).
YCBCR_SUBSAMPLINGS = frozenset({(1, 1), (2, 1), (1, 2), (2, 2), (4, 1), (4, 2), (4, 4)})


def cmyk_to_rgba(block: np.ndarray) -> np.ndarray:
    """Convert a ``(rows, cols, 4)`` uint8 CMYK block to RGBA like libtiff (new array)."""
    cmyk = block.astype(np.uint16)
    k = 255 - cmyk[..., 3:4]
    out = np.empty(block.shape, np.uint8)
    out[..., :3] = (k * (255 - cmyk[..., :3])) // 255
    out[..., 3] = 255
    return out


def _ycbcr_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """libtiff's TIFFYCbCrToRGBInit for the default coefficients and reference values."""
    shift = 16
    luma_red, luma_green, luma_blue = np.float32(0.299), np.float32(0.587), np.float32(0.114)

    def fix(value: np.float32) -> int:
        return int(float(value * np.float32(1 << shift)) + 0.5)

    f1 = np.float32(2) - np.float32(2) * luma_red
    f2 = luma_red * f1 / luma_green
    f3 = np.float32(2) - np.float32(2) * luma_blue
    f4 = luma_blue * f3 / luma_green
    d1, d2, d3, d4 = fix(f1), -fix(f2), fix(f3), -fix(f4)
    chroma = np.arange(-128, 128, dtype=np.int64)  # Code2V(x, 0, 127, 127) == x
    cr_r = (d1 * chroma + (1 << (shift - 1))) >> shift
    cb_b = (d3 * chroma + (1 << (shift - 1))) >> shift
    cr_g = d2 * chroma
    cb_g = d4 * chroma + (1 << (shift - 1))
    return cr_r, cb_b, cr_g, cb_g


_CR_R, _CB_B, _CR_G, _CB_G = _ycbcr_tables()


def ycbcr_stored_geometry(width: int, height: int, sub_h: int, sub_v: int) -> tuple[int, int]:
    """``(bytes per row of cells, rows of cells)`` of a subsampled 8-bit YCbCr block."""
    cells_across = -(-width // sub_h)
    return cells_across * (sub_h * sub_v + 2), -(-height // sub_v)


def ycbcr_to_rgb(stored: np.ndarray, width: int, height: int, sub_h: int, sub_v: int) -> np.ndarray:
    """Convert the packed cells of an 8-bit YCbCr block to a ``(height, width, 3)`` RGB array.

    ``stored`` holds ``cell_rows`` rows of cells (fewer than the block's when the last
    strip is short); each cell is ``sub_h * sub_v`` luma samples (row-major) then Cb, Cr.
    Rows of the result not covered by ``stored`` are zero.
    """
    row_bytes, _ = ycbcr_stored_geometry(width, height, sub_h, sub_v)
    cells_across = -(-width // sub_h)
    cell_rows = stored.size // row_bytes
    cells = stored[: cell_rows * row_bytes].reshape(cell_rows, cells_across, sub_h * sub_v + 2)
    luma = cells[..., : sub_h * sub_v].reshape(cell_rows, cells_across, sub_v, sub_h)
    luma = luma.transpose(0, 2, 1, 3).reshape(cell_rows * sub_v, cells_across * sub_h)
    cb = np.repeat(np.repeat(cells[..., -2], sub_v, axis=0), sub_h, axis=1)
    cr = np.repeat(np.repeat(cells[..., -1], sub_v, axis=0), sub_h, axis=1)
    y = luma.astype(np.int64)
    rgb = np.empty((cell_rows * sub_v, cells_across * sub_h, 3), np.int64)
    rgb[..., 0] = y + _CR_R[cr]
    rgb[..., 1] = y + ((_CB_G[cb] + _CR_G[cr]) >> 16)
    rgb[..., 2] = y + _CB_B[cb]
    np.clip(rgb, 0, 255, out=rgb)
    out = np.zeros((height, width, 3), np.uint8)
    rows = min(height, rgb.shape[0])
    out[:rows] = rgb[:rows, :width]
    return out
