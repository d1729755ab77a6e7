"""Decode one TIFF block (tile or strip) into a native-order numpy array.

:class:`BlockDecoding` holds everything that decoding one block of one image needs;
it is frozen, hashable and JSON-serialisable because the Zarr codec carries it as
its configuration. :func:`decode_block` turns a block's bytes into an array shaped
``(block_height, block_width, samples)``.

Supported: uncompressed, LZW, deflate (libdeflate), ZSTD, PackBits, LZMA, CCITT
RLE/G3/G4, JPEG (with JPEGTables; YCbCr returned as RGB like libtiff's
``JPEGCOLORMODE_RGB``), WebP, LERC (plain, LERC_DEFLATE, LERC_ZSTD), JPEG-XL, JPEG 2000
(34712, and Aperio's 33003 / 33005: :mod:`.jpeg2k`; OpenJPEG via imagecodecs);
predictors 2 and 3 in either byte order; chunky and planar; packed and odd sample
widths; 8-bit CMYK and non-JPEG YCbCr converted like GDAL (:mod:`.photometric`).
Anything else raises :class:`~rasteret.errors.UnsupportedTiffError`; an undecodable
payload raises :class:`~rasteret.errors.CorruptTiffError`.

JPEG and lossy WebP depend on the codec library build. With imagecodecs'
libjpeg-turbo 3.2 / libwebp 1.6 rasteret is bit-identical to GDAL 3.12 (rasterio 1.5)
on every JPEG (YCbCr included) and WebP file tested; against the corpus references
made with GDAL 3.10 YCbCr JPEG differs by a mean of 0.08-2.6 DN and up to 119 DN on
isolated edge pixels (chroma upsampling / IDCT differences between libjpeg builds).
The tests therefore compare lossy files with a tolerance (tests/test_tiff_decode.py,
tests/test_corpus_conformance.py).

Header fields the model does not carry are taken at their TIFF defaults: FillOrder 1
(MSB first), YCbCrCoefficients / ReferenceBlackWhite (non-JPEG YCbCr), T4Options 0.
"""

from __future__ import annotations

import base64
from dataclasses import asdict, dataclass, fields
from functools import cached_property
from typing import Any

import numpy as np

from rasteret.errors import CorruptTiffError, UnsupportedTiffError
from rasteret.tiff.block_decoders import (
    MAX_DECODED_BLOCK_BYTES,
    BlockDecoder,
    PrefixDecoder,
    build_decoder,
    build_prefix_decoder,
)
from rasteret.tiff.model import ImageLayout
from rasteret.tiff.unpack import sample_dtype

__all__ = ["MAX_DECODED_BLOCK_BYTES", "BlockDecoding", "decode_block"]


@dataclass(frozen=True)
class BlockDecoding:
    """How to decode any block of one image (one IFD, or one plane of a planar IFD).

    ``dtype`` is the decoded sample dtype (native byte order), ``samples`` the samples
    per pixel inside one block (1 for planar configuration 2). ``tiled`` is False for
    strips, whose last block may legitimately hold fewer rows than ``block_height``.
    """

    compression: int
    dtype: str
    block_width: int
    block_height: int
    samples: int = 1
    bits_per_sample: int = 8
    sample_format: int = 1
    predictor: int = 1
    byte_order: str = "<"
    photometric: int | None = None
    planar_configuration: int = 1
    tiled: bool = True
    extra_samples: tuple[int, ...] = ()
    ycbcr_subsampling: tuple[int, int] | None = None
    jpeg_tables: bytes | None = None
    lerc_parameters: tuple[int, ...] | None = None

    @classmethod
    def from_layout(cls, layout: ImageLayout, byte_order: str, source: str = "") -> BlockDecoding:
        """The decoding of ``layout``'s blocks (``byte_order`` is the file's, "<" or ">").

        Raises :class:`UnsupportedTiffError` when the sample type has no numpy dtype.
        """
        bits = layout.bits_per_sample
        dtype = sample_dtype(bits, layout.sample_format)
        if dtype is None:
            raise UnsupportedTiffError(
                source, "sample type", f"{bits}-bit SampleFormat {layout.sample_format}"
            )
        block_height = layout.block_height
        if not layout.tiled:  # RowsPerStrip may be 2**32-1: a strip never exceeds the image
            block_height = max(1, min(block_height, layout.height))
        return cls(
            compression=layout.compression,
            dtype=dtype.name,
            block_width=layout.block_width,
            block_height=block_height,
            samples=layout.samples_per_pixel if layout.planar_configuration != 2 else 1,
            bits_per_sample=bits,
            sample_format=layout.sample_format,
            predictor=layout.predictor,
            byte_order=byte_order,
            photometric=layout.photometric,
            planar_configuration=layout.planar_configuration,
            tiled=layout.tiled,
            extra_samples=tuple(layout.extra_samples),
            ycbcr_subsampling=tuple(layout.ycbcr_subsampling) if layout.ycbcr_subsampling else None,
            jpeg_tables=layout.jpeg_tables,
            lerc_parameters=tuple(layout.lerc_parameters) if layout.lerc_parameters else None,
        )

    @property
    def shape(self) -> tuple[int, int, int]:
        """Shape of a decoded block: ``(block_height, block_width, samples)``."""
        return (self.block_height, self.block_width, self.samples)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (bytes as base64, tuples as lists)."""
        out = asdict(self)
        for key, value in out.items():
            if isinstance(value, tuple):
                out[key] = list(value)
        if self.jpeg_tables is not None:
            out["jpeg_tables"] = base64.b64encode(self.jpeg_tables).decode("ascii")
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BlockDecoding:
        """Inverse of :meth:`to_dict`."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        for key in ("extra_samples", "ycbcr_subsampling", "lerc_parameters"):
            if values.get(key) is not None:
                values[key] = tuple(int(v) for v in values[key])
        tables = values.get("jpeg_tables")
        if isinstance(tables, str):
            values["jpeg_tables"] = base64.b64decode(tables)
        return cls(**values)

    def check(self, source: str = "") -> None:
        """Raise :class:`UnsupportedTiffError` now if blocks of this kind cannot be decoded."""
        _decoder_for(self, source)

    @cached_property
    def _decoder(self) -> BlockDecoder:
        return build_decoder(self)

    @cached_property
    def _prefix_decoder(self) -> PrefixDecoder | None:
        return build_prefix_decoder(self)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_decoder", None)  # compiled closures: rebuilt on first use
        state.pop("_prefix_decoder", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)


def _decoder_for(decoding: BlockDecoding, source: str) -> BlockDecoder:
    try:
        return decoding._decoder
    except UnsupportedTiffError as exc:
        raise UnsupportedTiffError(source, exc.feature, getattr(exc, "detail", "")) from None
    except CorruptTiffError as exc:  # a decoding no valid file can have (hostile index)
        raise CorruptTiffError(source, exc.reason) from None


def decode_block(
    data: bytes | bytearray | memoryview,
    decoding: BlockDecoding,
    *,
    source: str = "",
    block_index: int | None = None,
    rows: int | None = None,
    tables_spliced: bool = False,
    stop: int | None = None,
) -> np.ndarray:
    """Decode one block's bytes into a ``(block_height, block_width, samples)`` array.

    ``rows`` is how many rows of this block lie inside the image (the payload must
    supply at least those); without it a tile must be complete and a strip must hold
    whole rows (rows past its end are zero: a short last strip). The result is
    writable, C-contiguous, native byte order. ``tables_spliced=True`` says JPEG
    payloads already carry the JPEGTables. ``stop`` asks for the first ``stop`` rows
    only: codecs that can stop early (deflate, LZW, none) then decode just those and
    return ``(stop, block_width, samples)``; the others return the whole block. Errors
    name ``source`` and ``block_index``.
    """
    decoder = _decoder_for(decoding, source)
    if rows is not None and not 0 <= rows <= decoding.block_height:
        height = decoding.block_height
        raise CorruptTiffError(
            source, f"{_where(block_index)}: {rows} rows requested of a {height}-row block"
        )
    if rows is None:
        rows = decoding.block_height if decoding.tiled else 0
    try:
        if stop is not None and 0 < stop < decoding.block_height:
            prefix = decoding._prefix_decoder
            if prefix is not None:
                return prefix(data, rows, stop)
        return decoder(data, rows, tables_spliced)
    except CorruptTiffError:
        raise
    except UnsupportedTiffError as exc:
        raise UnsupportedTiffError(source, exc.feature, _where(block_index)) from None
    except MemoryError as exc:  # not a corrupt file: say what ran out, and where
        raise MemoryError(f"{source}: out of memory decoding {_where(block_index)}") from exc
    except Exception as exc:  # imagecodecs raises RuntimeError subclasses, ValueError, ...
        detail = f"{type(exc).__name__}: {exc}"
        raise CorruptTiffError(source, f"cannot decode {_where(block_index)}: {detail}") from exc


def _where(block_index: int | None) -> str:
    return f"block {block_index}" if block_index is not None else "block"
