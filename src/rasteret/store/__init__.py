"""The data plane: a virtual, read-only Zarr v3 store over a collection's COG tiles.

* :func:`open_tiles` — Collection → :class:`TileStore`: the layout, the
  :class:`~rasteret.fetch.RangeReader` its tiles are read with, and its identity
  (zarr-free; what the read surfaces and the xarray engine use).
* :func:`open_store` — Collection → :class:`VirtualStore` (one chunk = one COG tile),
  the same tiles as a Zarr v3 store.
* :mod:`rasteret.store.window_read` — windows of the store's arrays read straight into
  numpy (the eager read path of every ``read`` surface; zarr is not imported).
* :class:`TiffTileCodec` — the ``rasteret.tiff`` array→bytes codec (registered with zarr
  when :mod:`rasteret.store.codec` is imported and through the ``zarr.codecs`` entry
  point).
* :mod:`rasteret.store.layout` — how records become groups (grids, overview levels) and
  arrays (stacks of one band with identical decoding).
* :mod:`rasteret.store.plan` / :mod:`rasteret.store.budget` — what a read of the arrays
  will fetch (``ReadPlan``, from the layout alone) and the read byte budget every read
  surface checks against it before fetching.

Names are imported lazily: ``rasteret.store.layout`` / ``window_read`` do not pay for
zarr.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rasteret._lazy import lazy_exports

if TYPE_CHECKING:
    from rasteret.store.api import open_store, open_tiles
    from rasteret.store.codec import CODEC_NAME, TiffTileCodec
    from rasteret.store.layout import ArrayLayout, GroupLayout, StoreLayout, build_layout
    from rasteret.store.reference import StoreReference
    from rasteret.store.tiles import TileStore
    from rasteret.store.virtual import VirtualStore

_LAZY: dict[str, str] = {
    "CODEC_NAME": "rasteret.store.codec",
    "ArrayLayout": "rasteret.store.layout",
    "GroupLayout": "rasteret.store.layout",
    "StoreLayout": "rasteret.store.layout",
    "StoreReference": "rasteret.store.reference",
    "TileStore": "rasteret.store.tiles",
    "TiffTileCodec": "rasteret.store.codec",
    "VirtualStore": "rasteret.store.virtual",
    "build_layout": "rasteret.store.layout",
    "open_store": "rasteret.store.api",
    "open_tiles": "rasteret.store.api",
}

__all__ = [
    "CODEC_NAME",
    "ArrayLayout",
    "GroupLayout",
    "StoreLayout",
    "StoreReference",
    "TiffTileCodec",
    "TileStore",
    "VirtualStore",
    "build_layout",
    "open_store",
    "open_tiles",
]


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, __all__)
