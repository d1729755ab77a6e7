"""``rasteret.tiff``: a Zarr v3 array→bytes codec that decodes one TIFF block.

The configuration is :meth:`rasteret.tiff.decode.BlockDecoding.to_dict` (without JPEG
tables: the store splices a file's tables into each of its tiles, DESIGN decision 2)
plus ``sample`` (which sample of a chunky block this array holds),
``jpeg_tables_present`` and, for images whose height is not a multiple of the tile
height, ``min_rows`` (see :func:`rasteret.store.layout.codec_configuration`). A chunk
decodes to ``(1, block_height, block_width)`` in the array's dtype. The codec is
read-only: encoding raises.

``tagged: true`` (a band whose records decode differently, merged into one array by
:class:`~rasteret.store.virtual.VirtualStore`): every chunk starts with one tag byte —
``0``: a TIFF block of this configuration follows; ``1``: the chunk's values follow, raw
(C order, little-endian, the array's dtype), decoded by the store from a record whose
compression, tile size or dtype differ (the codec sees no chunk coordinates, so the
store says which case a chunk is).

Decoding runs off the event loop (``asyncio.to_thread``); ``_decode_sync`` also lets
zarr's ``FusedCodecPipeline`` decode in its own thread pool as fetches complete.
Measured (4 scenes of 4096² uint16 deflate, 512² tiles, 2 cores): to_thread 0.37 s,
FusedCodecPipeline 0.41 s, decoding on the event loop 0.48 s; rasterio 0.36-0.45 s.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
from zarr.abc.codec import ArrayBytesCodec
from zarr.core.common import parse_named_configuration

from rasteret.errors import CorruptTiffError, UnsupportedTiffError

if TYPE_CHECKING:
    from typing import Self

    from zarr.core.array_spec import ArraySpec
    from zarr.core.buffer import Buffer, NDBuffer

    from rasteret.tiff.decode import BlockDecoding

CODEC_NAME = "rasteret.tiff"
_EXTRA_KEYS = ("sample", "jpeg_tables_present", "min_rows", "tagged")
#: First byte of a chunk of a ``tagged`` array.
TAG_TIFF, TAG_RAW = 0, 1


@dataclass(frozen=True)
class TiffTileCodec(ArrayBytesCodec):
    """Decode one TIFF tile or strip (any supported compression / predictor / byte order)."""

    is_fixed_size = False

    configuration_json: str

    def __init__(self, *, configuration: dict[str, Any] | None = None, **kwargs: Any) -> None:
        config = dict(configuration or {})
        config.update(kwargs)
        object.__setattr__(self, "configuration_json", json.dumps(config, sort_keys=True))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        _, configuration = parse_named_configuration(data, CODEC_NAME, require_configuration=False)
        return cls(configuration=dict(configuration or {}))

    def to_dict(self) -> dict[str, Any]:
        return {"name": CODEC_NAME, "configuration": self.configuration}

    @property
    def configuration(self) -> dict[str, Any]:
        return json.loads(self.configuration_json)

    @cached_property
    def decoding(self) -> BlockDecoding:
        from rasteret.tiff.decode import BlockDecoding

        config = {k: v for k, v in self.configuration.items() if k not in _EXTRA_KEYS}
        return BlockDecoding.from_dict(config)

    @cached_property
    def min_rows(self) -> int | None:
        """Rows a tile must hold at least (edge tiles of non-COG files may be short)."""
        value = self.configuration.get("min_rows")
        return None if value is None else int(value)

    @cached_property
    def sample(self) -> int:
        return int(self.configuration.get("sample", 0))

    @cached_property
    def tagged(self) -> bool:
        return bool(self.configuration.get("tagged", False))

    def _decode_sync(self, chunk_bytes: Buffer, chunk_spec: ArraySpec) -> NDBuffer:
        from rasteret.tiff.decode import decode_block

        data = chunk_bytes.as_numpy_array()
        origin = getattr(chunk_bytes, "rasteret_origin", "zarr chunk")  # set by VirtualStore.get
        if self.tagged:
            tag, data = int(data[0]), data[1:]
            if tag == TAG_RAW:
                dtype = chunk_spec.dtype.to_native_dtype()
                values = np.frombuffer(data.tobytes(), dtype=dtype.newbyteorder("<"))
                values = values.astype(dtype, copy=False).reshape(chunk_spec.shape)
                return chunk_spec.prototype.nd_buffer.from_numpy_array(values)
            if tag != TAG_TIFF:
                raise CorruptTiffError(origin, f"unknown chunk tag {tag} of a tagged array")
        block = decode_block(memoryview(data), self.decoding, source=origin, rows=self.min_rows)
        if block.ndim == 2:
            block = block[:, :, np.newaxis]
        if not 0 <= self.sample < block.shape[2]:
            raise UnsupportedTiffError(
                origin, "sample", f"sample {self.sample} of a {block.shape[2]}-sample block"
            )
        plane = block[:, :, self.sample]
        shape = chunk_spec.shape
        dtype = chunk_spec.dtype.to_native_dtype()
        if plane.shape != tuple(shape[-2:]):
            raise CorruptTiffError(
                origin,
                f"decoded block of {plane.shape} does not match the chunk shape {shape[-2:]}",
            )
        if plane.dtype != dtype:
            plane = plane.astype(dtype, copy=False)
        return chunk_spec.prototype.nd_buffer.from_numpy_array(plane.reshape(shape))

    async def _decode_single(self, chunk_bytes: Buffer, chunk_spec: ArraySpec) -> NDBuffer:
        return await asyncio.to_thread(self._decode_sync, chunk_bytes, chunk_spec)

    def _encode_sync(self, chunk_data: NDBuffer, chunk_spec: ArraySpec) -> Buffer | None:
        raise NotImplementedError("rasteret.tiff is a read-only codec: TIFF tiles are not written")

    async def _encode_single(self, chunk_data: NDBuffer, chunk_spec: ArraySpec) -> Buffer | None:
        self._encode_sync(chunk_data, chunk_spec)
        return None

    def compute_encoded_size(self, input_byte_length: int, chunk_spec: ArraySpec) -> int:
        raise NotImplementedError("rasteret.tiff chunks have no fixed encoded size")


def _register() -> None:
    from zarr.registry import register_codec

    register_codec(CODEC_NAME, TiffTileCodec)


_register()
