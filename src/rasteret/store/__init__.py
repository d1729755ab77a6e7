"""The data plane: a virtual, read-only Zarr v3 store over a collection's COG tiles.

* :func:`open_store` — Collection → :class:`VirtualStore` (one chunk = one COG tile).
* :class:`TiffTileCodec` — the ``rasteret.tiff`` array→bytes codec (registered with zarr
  on import and through the ``zarr.codecs`` entry point).
* :mod:`rasteret.store.layout` — how records become groups (grids, overview levels) and
  arrays (stacks of one band with identical decoding).
"""

from __future__ import annotations

from zarr.registry import register_codec

from rasteret.store.api import ensure_zarr_concurrency, open_store
from rasteret.store.codec import CODEC_NAME, TiffTileCodec
from rasteret.store.layout import ArrayLayout, GroupLayout, StoreLayout, build_layout
from rasteret.store.reference import StoreReference
from rasteret.store.virtual import VirtualStore

register_codec(CODEC_NAME, TiffTileCodec)

__all__ = [
    "CODEC_NAME",
    "ArrayLayout",
    "GroupLayout",
    "StoreLayout",
    "StoreReference",
    "TiffTileCodec",
    "VirtualStore",
    "build_layout",
    "ensure_zarr_concurrency",
    "open_store",
]
