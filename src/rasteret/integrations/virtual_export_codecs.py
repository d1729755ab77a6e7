"""Codecs of an exported array: standard Zarr codecs where the TIFF layout allows, else
the ``rasteret.tiff`` codec.

A COG tile is a chunk's bytes as they are, so an export can name a standard codec only
when the tile *is* a standard encoding of the chunk: one sample per block, whole-byte
samples, tiles (not strips), no predictor, and

* compression 1 (none) → ``bytes`` (with the file's byte order);
* 8 / 32946 (deflate, Adobe deflate: zlib streams) → ``bytes`` + ``numcodecs.zlib``
  (Zarr v3; registered by numcodecs, which zarr depends on) / ``zlib`` (Zarr v2);
* 50000 (zstd) → ``bytes`` + ``zstd`` / ``zstd``.

Everything else (LZW, predictors 2 / 3, PackBits, JPEG, WebP, LERC, several samples per
block, 1- or 12-bit samples, strips) keeps the ``rasteret.tiff`` codec of the virtual
store: Zarr v3 readers find it through the ``zarr.codecs`` entry point once rasteret is
installed (``pip install rasteret``); Zarr v2 (kerchunk) has no such codec, so those
arrays are refused there. :func:`choose_codec` says which applies and why.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

CUSTOM_CODEC = "rasteret.tiff"
CodecKind = Literal["standard", "rasteret"]
#: ``codecs=`` of the exports: ``"auto"`` (standard where possible, else ``rasteret.tiff``)
#: or ``"standard"`` (refuse arrays that need ``rasteret.tiff``).
CodecMode = Literal["auto", "standard"]

_DEFLATE = (8, 32946)
_ZSTD = 50000
_NAMES = {
    1: "none",
    5: "LZW",
    7: "JPEG",
    8: "deflate",
    32773: "PackBits",
    32946: "deflate",
    34887: "LERC",
    34892: "JPEG",
    34925: "LZMA",
    50000: "zstd",
    50001: "WebP",
}


@dataclass(frozen=True, slots=True)
class ArrayCodec:
    """How the chunks of one exported array decode.

    ``v3`` is the Zarr v3 ``codecs`` list; ``v2_compressor`` the Zarr v2 compressor
    (``None``: uncompressed) and ``v2_dtype`` the v2 ``dtype`` (with byte order), both
    meaningful only for ``kind == "standard"``. ``reason`` says why a ``"rasteret"``
    array cannot use standard codecs.
    """

    kind: CodecKind
    v3: tuple[Mapping[str, Any], ...]
    v2_compressor: Mapping[str, Any] | None
    v2_dtype: str
    reason: str | None = None


def choose_codec(config: Mapping[str, Any], dtype: str) -> ArrayCodec:
    """The codec of an array whose tiles decode with the ``rasteret.tiff`` ``config``
    (:func:`rasteret.store.layout.codec_configuration`) into ``dtype``."""
    reason = standard_reason(config, dtype)
    order = ">" if config.get("byte_order") == ">" else "<"
    native = np.dtype(dtype)
    v2_dtype = native.newbyteorder(order).str if native.itemsize > 1 else native.str
    if reason is not None:
        custom = ({"name": CUSTOM_CODEC, "configuration": dict(config)},)
        return ArrayCodec("rasteret", custom, None, v2_dtype, reason)
    serializer: dict[str, Any] = {"name": "bytes"}
    if native.itemsize > 1:
        serializer["configuration"] = {"endian": "big" if order == ">" else "little"}
    compression = int(config["compression"])
    if compression in _DEFLATE:
        v3 = (serializer, {"name": "numcodecs.zlib", "configuration": {"level": 6}})
        return ArrayCodec("standard", v3, {"id": "zlib", "level": 6}, v2_dtype)
    if compression == _ZSTD:
        zstd = {"name": "zstd", "configuration": {"level": 0, "checksum": False}}
        return ArrayCodec("standard", (serializer, zstd), {"id": "zstd", "level": 0}, v2_dtype)
    return ArrayCodec("standard", (serializer,), None, v2_dtype)


def standard_reason(config: Mapping[str, Any], dtype: str) -> str | None:
    """Why tiles of ``config`` are not a standard Zarr encoding (``None``: they are)."""
    compression = int(config.get("compression", 0))
    if compression not in (1, *_DEFLATE, _ZSTD):
        name = _NAMES.get(compression, f"TIFF compression {compression}")
        return f"{name} compression"
    predictor = int(config.get("predictor", 1))
    if predictor != 1:
        return f"predictor {predictor}"
    if int(config.get("samples", 1)) != 1:
        return f"{config['samples']} samples per pixel in one block (pixel interleaving)"
    bits = int(config.get("bits_per_sample", 0))
    if bits != np.dtype(dtype).itemsize * 8:
        return f"{bits}-bit samples"
    if not config.get("tiled", True):
        return "strips (the last strip may be short)"
    if config.get("jpeg_tables_present") or config.get("lerc_parameters"):
        return "per-file codec tables"
    return None


def compression_name(config: Mapping[str, Any]) -> str:
    """A readable name of ``config``'s compression (for messages)."""
    compression = int(config.get("compression", 0))
    return _NAMES.get(compression, f"TIFF compression {compression}")
