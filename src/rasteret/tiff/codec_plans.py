"""Compile a :class:`~rasteret.tiff.decode.BlockDecoding` into a per-block decode function.

Everything that does not change from block to block (codec, sizes, byte swap,
predictor, unpacker, colour conversion) is resolved once here, so decoding a block
is a handful of C calls: allocate the output, decompress straight into it, swap and
un-predict in place. A plan is ``plan(data, rows, tables_spliced) -> ndarray`` where
``rows`` is the number of rows the payload must supply (0: any whole number of rows).
Plans raise :class:`PayloadError` (or the codec's exception) on a bad payload and
:class:`Unsupported` at build time for a configuration they cannot decode.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

import imagecodecs
import numpy as np

from rasteret.errors import UnsupportedTiffError
from rasteret.tiff.decompress import BYTE_CODECS, Decompressor, lerc_inner
from rasteret.tiff.photometric import (
    YCBCR_SUBSAMPLINGS,
    cmyk_to_rgba,
    ycbcr_stored_geometry,
    ycbcr_to_rgb,
)
from rasteret.tiff.predictor import FLOATING_BITS, HORIZONTAL_BITS, undo_floating, undo_horizontal
from rasteret.tiff.unpack import is_direct, make_unpacker, sample_dtype, stored_row_bytes

if TYPE_CHECKING:
    from rasteret.tiff.decode import BlockDecoding

Buffer = bytes | bytearray | memoryview
Plan = Callable[[Buffer, int, bool], np.ndarray]

NATIVE_ORDER = "<" if sys.byteorder == "little" else ">"

#: Names of codecs rasteret recognises but does not decode.
UNSUPPORTED_CODECS = {
    6: "old-style JPEG (OJPEG, compression 6)",
    32809: "ThunderScan compression (32809)",
    34676: "SGILog compression (34676)",
    34677: "SGILog24 compression (34677)",
    32908: "PixarFilm compression (32908)",
    32909: "PixarLog compression (32909)",
    34712: "JPEG 2000 compression (34712)",
    32947: "DCS compression (32947)",
    34661: "JBIG compression (34661)",
}


class PayloadError(ValueError):
    """A block's payload does not decode to the block's size."""


def unsupported(feature: str, detail: str = "") -> UnsupportedTiffError:
    """An UnsupportedTiffError without a source (decode_block adds it)."""
    error = UnsupportedTiffError("", feature, detail)
    error.detail = detail
    return error


def build_plan(d: BlockDecoding) -> Plan:
    """Compile the decode function of ``d`` (raises UnsupportedTiffError)."""
    dtype = sample_dtype(d.bits_per_sample, d.sample_format)
    if dtype is None:
        raise unsupported("sample type", f"{d.bits_per_sample}-bit SampleFormat {d.sample_format}")
    if np.dtype(d.dtype) != dtype:
        raise unsupported("sample type", f"dtype {d.dtype} for {d.bits_per_sample}-bit samples")
    if d.photometric in (8, 9, 10):
        raise unsupported("CIELab photometric interpretation", f"Photometric {d.photometric}")
    compression = d.compression
    if compression in BYTE_CODECS:
        return _byte_plan(d, dtype)
    if compression in (2, 3, 4):
        return _ccitt_plan(d)
    if compression == 7:
        return _jpeg_plan(d, dtype)
    if compression == 50001:
        return _webp_plan(d, dtype)
    if compression == 34887:
        return _lerc_plan(d, dtype)
    if compression in (50002, 52546):
        if not imagecodecs.JPEGXL.available:
            raise unsupported("JPEG-XL compression", "imagecodecs built without libjxl")
        return _image_plan(d, dtype, "JPEG-XL", imagecodecs.jpegxl_decode)
    raise unsupported(UNSUPPORTED_CODECS.get(compression, f"compression {compression}"))


def _check_size(n: int, full: int, row_bytes: int, rows_needed: int, name: str) -> int:
    """Stored rows present in ``n`` decoded bytes; raises when too few."""
    if n >= full:
        return full // row_bytes
    have = n // row_bytes
    if have < max(rows_needed, 1) or (rows_needed == 0 and n % row_bytes):
        raise PayloadError(f"{name} payload decodes to {n} bytes, expected {full}")
    return have


def _byte_plan(d: BlockDecoding, dtype: np.dtype) -> Plan:
    name, decompress = BYTE_CODECS[d.compression]
    height, width, samples = d.block_height, d.block_width, d.samples
    bits, predictor = d.bits_per_sample, d.predictor
    if predictor not in (1, 2, 3):
        raise unsupported(f"predictor {predictor}")
    direct = is_direct(bits, d.sample_format)
    if predictor == 2 and not (direct and bits in HORIZONTAL_BITS and dtype.kind != "c"):
        raise unsupported("predictor 2", f"with {bits}-bit SampleFormat {d.sample_format} samples")
    if predictor == 3 and not (d.sample_format == 3 and bits in FLOATING_BITS):
        raise unsupported("predictor 3", f"with {bits}-bit SampleFormat {d.sample_format} samples")

    convert: Callable[[np.ndarray], np.ndarray] | None = None
    if d.photometric == 6:  # YCbCr stored without JPEG
        return _ycbcr_plan(d, name, decompress)
    if d.photometric == 5 and bits == 8:
        if not (samples == 4 and d.planar_configuration == 1):
            layout = f"{samples} samples, planar {d.planar_configuration}"
            raise unsupported("8-bit CMYK layout", layout)
        convert = cmyk_to_rgba

    row_bytes = stored_row_bytes(width, samples, bits)
    full = row_bytes * height
    shape = (height, width, samples)
    # predictor 3 output is native whatever the file's byte order (libtiff skips the swab)
    swap = direct and dtype.itemsize > 1 and predictor != 3 and d.byte_order != NATIVE_ORDER
    unpack = None if direct else make_unpacker(bits, d.sample_format, d.byte_order, width, samples)

    if unpack is None:

        def plan_direct(data: Buffer, rows: int, _spliced: bool) -> np.ndarray:
            out = np.empty(shape, dtype)
            flat = out.reshape(-1).view(np.uint8)
            n = decompress(data, memoryview(flat))
            have = _check_size(n, full, row_bytes, rows, name)
            if have < height:
                flat[have * row_bytes :] = 0
            if swap:
                out.byteswap(inplace=True)
            if predictor == 2:
                undo_horizontal(out[:have])
            elif predictor == 3:
                out = undo_floating(out)
            return convert(out) if convert is not None else out

        return plan_direct

    def plan_unpack(data: Buffer, rows: int, _spliced: bool) -> np.ndarray:
        stored = np.empty(full, np.uint8)
        n = decompress(data, memoryview(stored))
        have = _check_size(n, full, row_bytes, rows, name)
        values = unpack(stored[: have * row_bytes], have)
        if have == height:
            return np.ascontiguousarray(values)
        out = np.zeros(shape, dtype)
        out[:have] = values
        return out

    return plan_unpack


def _ycbcr_plan(d: BlockDecoding, name: str, decompress: Decompressor) -> Plan:
    sub = d.ycbcr_subsampling or (2, 2)  # the TIFF default
    if d.bits_per_sample != 8 or d.samples != 3 or d.planar_configuration != 1:
        raise unsupported("YCbCr without JPEG", f"{d.bits_per_sample}-bit, {d.samples} samples")
    if tuple(sub) not in YCBCR_SUBSAMPLINGS:
        raise unsupported("YCbCr subsampling", f"{sub[0]}x{sub[1]}")
    if d.predictor != 1:
        raise unsupported(f"predictor {d.predictor}", "with subsampled YCbCr")
    sub_h, sub_v = sub
    height, width = d.block_height, d.block_width
    row_bytes, cell_rows = ycbcr_stored_geometry(width, height, sub_h, sub_v)
    full = row_bytes * cell_rows

    def plan_ycbcr(data: Buffer, rows: int, _spliced: bool) -> np.ndarray:
        stored = np.empty(full, np.uint8)
        n = decompress(data, memoryview(stored))
        have = _check_size(n, full, row_bytes, -(-rows // sub_v), name)
        return ycbcr_to_rgb(stored[: have * row_bytes], width, height, sub_h, sub_v)

    return plan_ycbcr


def _fit(image: np.ndarray, d: BlockDecoding, dtype: np.dtype, rows: int, name: str) -> np.ndarray:
    """Check a codec's decoded image against the block and pad a short last strip."""
    if image.ndim == 2:
        image = image[..., None]
    height, width, samples = d.block_height, d.block_width, d.samples
    h, w, s = image.shape
    if w != width or s != samples or h > height or h < max(rows, 1):
        raise PayloadError(f"{name} image is {h}x{w}x{s}, block is {height}x{width}x{samples}")
    if image.dtype != dtype:
        raise PayloadError(f"{name} image has dtype {image.dtype}, expected {dtype}")
    if h == height:
        return np.ascontiguousarray(image)
    out = np.zeros((height, width, samples), dtype)
    out[:h] = image
    return out


def _image_plan(
    d: BlockDecoding, dtype: np.dtype, name: str, decoder: Callable[[Buffer], np.ndarray]
) -> Plan:
    def plan_image(data: Buffer, rows: int, _spliced: bool) -> np.ndarray:
        return _fit(decoder(data), d, dtype, rows, name)

    return plan_image


def _jpeg_plan(d: BlockDecoding, dtype: np.dtype) -> Plan:
    if d.bits_per_sample not in (8, 12):
        raise unsupported("JPEG sample width", f"{d.bits_per_sample}-bit")
    if d.photometric == 5:
        raise unsupported("JPEG-compressed CMYK")
    # libtiff JPEGCOLORMODE_RGB: YCbCr (chunky) is converted to RGB by libjpeg; other
    # photometrics are passed through (three-component RGB must not be "converted").
    colorspace: str | None = None
    out_colorspace: str | None = None
    if d.photometric == 6 and d.planar_configuration == 1:
        colorspace, out_colorspace = "YCbCr", "RGB"
    elif d.samples == 3:
        colorspace, out_colorspace = "RGB", "RGB"
    tables = d.jpeg_tables

    def plan_jpeg(data: Buffer, rows: int, spliced: bool) -> np.ndarray:
        image = imagecodecs.jpeg8_decode(
            data,
            tables=None if spliced else tables,
            colorspace=colorspace,
            outcolorspace=out_colorspace,
        )
        return _fit(image, d, dtype, rows, "JPEG")

    return plan_jpeg


def _webp_plan(d: BlockDecoding, dtype: np.dtype) -> Plan:
    alpha = d.samples == 4

    def plan_webp(data: Buffer, rows: int, _spliced: bool) -> np.ndarray:
        return _fit(imagecodecs.webp_decode(data, hasalpha=alpha), d, dtype, rows, "WebP")

    return plan_webp


def _lerc_plan(d: BlockDecoding, dtype: np.dtype) -> Plan:
    try:
        inner = lerc_inner(d.lerc_parameters)
    except ValueError as exc:
        raise unsupported("LERC parameters", str(exc)) from None
    name = inner[0] if inner else "LERC"
    floating = dtype.kind == "f"

    def plan_lerc(data: Buffer, rows: int, _spliced: bool) -> np.ndarray:
        blob = inner[1](data) if inner else data
        image, mask = imagecodecs.lerc_decode(blob, masks=True)
        if image.dtype != dtype and image.dtype.kind == dtype.kind:
            image = image.astype(dtype)
        out = _fit(image, d, dtype, rows, name)
        if floating and mask is not None:
            valid = np.asarray(mask, bool)
            if not valid.all():  # libtiff's LERC decoder sets invalid float pixels to NaN
                if valid.ndim == 2:
                    valid = valid[..., None]
                np.copyto(out[: valid.shape[0]], np.nan, where=~valid)
        return out

    return plan_lerc


def _ccitt_plan(d: BlockDecoding) -> Plan:
    if d.bits_per_sample != 1 or d.samples != 1:
        raise unsupported("CCITT compression", f"{d.bits_per_sample}-bit, {d.samples} samples")
    decoders = {
        2: imagecodecs.ccittrle_decode,
        3: imagecodecs.ccittfax3_decode,
        4: imagecodecs.ccittfax4_decode,
    }
    decoder = decoders[d.compression]
    name = {2: "CCITT RLE", 3: "CCITT Group 3", 4: "CCITT Group 4"}[d.compression]
    dtype = np.dtype("uint8")
    height, width = d.block_height, d.block_width

    def plan_ccitt(data: Buffer, rows: int, _spliced: bool) -> np.ndarray:
        image = decoder(data, rows or height, width)
        return _fit(np.asarray(image, dtype), d, dtype, rows, name)

    return plan_ccitt
