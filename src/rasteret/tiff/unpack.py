"""Sample types: which numpy dtype a TIFF sample decodes to, and unpackers for packed ones.

Samples whose width is a numpy item size (8/16/32/64-bit integers and floats,
complex floats) are decoded straight into the output array. Everything else is
unpacked here, returning what GDAL returns (see the corpus README):

* 1..7-bit -> uint8, 9..15-bit -> uint16, 17..31-bit -> uint32 (MSB-first bit stream,
  each row padded to a whole byte, as TIFF stores them); odd widths are unsigned;
* 24-bit integers -> uint32, zero-extended, bytes in the order GDAL reads them (below);
* float24 -> float32; complex integers (CInt16 / CInt32) -> complex64 / complex128.
"""

from __future__ import annotations

from collections.abc import Callable

import imagecodecs
import numpy as np

Unpacker = Callable[[np.ndarray, int], np.ndarray]
"""``fn(stored_bytes_uint8, rows) -> (rows, width, samples)`` array in native order."""

_INT_WIDTHS = {8, 16, 32, 64}


def sample_dtype(bits: int, sample_format: int) -> np.dtype | None:
    """The decoded numpy dtype of one sample, or ``None`` if rasteret cannot represent it."""
    if sample_format in (1, 4):  # unsigned, or "undefined" (read as unsigned like GDAL)
        if bits in _INT_WIDTHS:
            return np.dtype(f"uint{bits}")
    elif sample_format == 2:
        if bits in _INT_WIDTHS:
            return np.dtype(f"int{bits}")
    elif sample_format == 3:
        if bits in (16, 32, 64):
            return np.dtype(f"float{bits}")
        if bits == 24:
            return np.dtype("float32")
        return None
    elif sample_format == 5:
        return {32: np.dtype("complex64"), 64: np.dtype("complex128")}.get(bits)
    elif sample_format == 6:
        return {64: np.dtype("complex64"), 128: np.dtype("complex128")}.get(bits)
    else:
        return None
    # odd integer widths (either signedness) are returned unsigned, like GDAL
    if 1 <= bits <= 8:
        return np.dtype("uint8")
    if bits <= 16:
        return np.dtype("uint16")
    if bits <= 32:
        return np.dtype("uint32")
    return None


def is_direct(bits: int, sample_format: int) -> bool:
    """True when stored samples are the decoded dtype's bytes (only a byte swap away)."""
    dtype = sample_dtype(bits, sample_format)
    return dtype is not None and sample_format != 5 and dtype.itemsize * 8 == bits


def stored_row_bytes(width: int, samples: int, bits: int) -> int:
    """Bytes of one stored row of a chunky block (rows are padded to whole bytes)."""
    return -(-(width * samples * bits) // 8)


def make_unpacker(
    bits: int, sample_format: int, byte_order: str, width: int, samples: int
) -> Unpacker:
    """Unpacker for a sample type that is not :func:`is_direct`."""
    dtype = sample_dtype(bits, sample_format)
    if dtype is None:
        raise ValueError(f"{bits}-bit samples of SampleFormat {sample_format}")
    shape_tail = (width, samples)

    if sample_format == 5:
        part = np.dtype(f"{byte_order}i{bits // 16}")
        real = np.dtype("float32" if bits == 32 else "float64")

        def unpack_complex_int(stored: np.ndarray, rows: int) -> np.ndarray:
            values = stored.view(part).astype(real).view(dtype)
            return values.reshape(rows, *shape_tail)

        return unpack_complex_int

    if sample_format == 3 and bits == 24:

        def unpack_float24(stored: np.ndarray, rows: int) -> np.ndarray:
            values = imagecodecs.float24_decode(stored.tobytes(), byteorder=byte_order)
            return values.reshape(rows, *shape_tail)

        return unpack_float24

    if bits == 24:
        # GDAL reads the 3 bytes most significant first after libtiff's swab of big-endian
        # files (_TIFFSwab24BitData): little-endian files read as big-endian and vice versa.
        order = (2, 1, 0) if byte_order == "<" else (0, 1, 2)

        def unpack_int24(stored: np.ndarray, rows: int) -> np.ndarray:
            triples = stored.reshape(rows * width * samples, 3)
            quads = np.zeros((triples.shape[0], 4), np.uint8)
            quads[:, list(order)] = triples
            return quads.view("<u4").astype(np.uint32, copy=False).reshape(rows, *shape_tail)

        return unpack_int24

    runlen = width * samples

    def unpack_bits(stored: np.ndarray, rows: int) -> np.ndarray:
        values = imagecodecs.packints_decode(stored, dtype, bits, runlen=runlen)
        return values.reshape(rows, *shape_tail)

    return unpack_bits
