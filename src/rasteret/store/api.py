"""``open_store``: a Collection (or a collection path / table) → :class:`VirtualStore`.

The store reads through the :class:`~rasteret.fetch.RangeReader` it is given, or the
process's :func:`~rasteret.fetch.default_reader` taken once when it is built; the
per-process store cache tells stores apart by content and by reader settings.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from rasteret.index import CollectionTable, as_collection, load
from rasteret.store.layout import build_layout
from rasteret.store.reference import StoreSource, cached_store, remember

if TYPE_CHECKING:
    from rasteret.fetch import RangeReader
    from rasteret.store.tiles import TileStore
    from rasteret.store.virtual import VirtualStore


def open_store(
    collection: CollectionTable | str | os.PathLike[str] | pa.Table,
    bands: str | Sequence[str] | None = None,
    *,
    reader: RangeReader | None = None,
) -> VirtualStore:
    """A read-only Zarr v3 store over ``collection`` (a Collection, a collection Parquet
    file/directory, or a collection table), restricted to ``bands`` (default: all), that
    reads through ``reader`` (default: :func:`~rasteret.fetch.default_reader` as it is now).

    Open it with ``zarr.open_group(store, mode="r")``, ``xr.open_zarr(store, group=...)``
    or ``xr.open_dataset(collection, engine="rasteret")``. Raises
    :class:`~rasteret.errors.BandNotFoundError` for an unknown band, and
    :class:`~rasteret.store.budget.ReadBudgetExceeded` when a read budget is set and
    reading every chunk of the store (every group, masks included) would exceed it: Zarr
    reads run later, chunk by chunk, outside the caller's ``read_budget`` block.
    """
    from rasteret.store.budget import check_arrays_budget

    store = build_store(as_store_collection(collection), bands, reader=reader)
    layout = store.tiles.layout
    check_arrays_budget(
        store.tiles.reader,
        [(name, a, None) for name, group in layout.groups.items() for a in group.arrays.values()],
        what="opening the Zarr store",
        notes=(ZARR_BUDGET_NOTE,),
    )
    return store


#: Said when a Zarr store is refused under a read budget.
ZARR_BUDGET_NOTE = (
    "a Zarr store is checked whole when it is opened (zarr reads it later, chunk by "
    "chunk): open fewer bands (bands=) or a subset of the collection"
)


def build_store(
    collection: CollectionTable,
    bands: str | Sequence[str] | None = None,
    *,
    reader: RangeReader | None = None,
) -> VirtualStore:
    """The Zarr store of ``collection`` reading through ``reader`` (default: the default
    reader, resolved once here); reused from the per-process cache when content and
    reader settings are identical."""
    from rasteret.store.virtual import VirtualStore

    tiles = build_tiles(collection, bands, reader=reader)
    cached = cached_store(tiles.token, tiles.settings_key)
    if cached is not None:
        return cached
    store = VirtualStore(tiles)
    remember(store)
    return store


def open_tiles(
    collection: CollectionTable | str | os.PathLike[str] | pa.Table,
    bands: str | Sequence[str] | None = None,
    *,
    reader: RangeReader | None = None,
) -> TileStore:
    """The zarr-free :class:`~rasteret.store.tiles.TileStore` of ``collection`` (a
    Collection, a collection Parquet file/directory or a table): what the read surfaces
    and the xarray engine read through. Arguments as :func:`open_store`."""
    return build_tiles(as_store_collection(collection), bands, reader=reader)


def build_tiles(
    collection: CollectionTable,
    bands: str | Sequence[str] | None = None,
    *,
    reader: RangeReader | None = None,
) -> TileStore:
    """The tile store of ``collection`` (its layout is built here; its token on first use)."""
    from rasteret.store.tiles import TileStore

    if reader is None:
        from rasteret.fetch import default_reader

        reader = default_reader()
    selected = (bands,) if isinstance(bands, str) else (None if bands is None else tuple(bands))
    layout = build_layout(collection.table, selected)
    return TileStore(layout, StoreSource(collection, layout), reader)


def as_store_collection(value: Any) -> CollectionTable:
    """``value`` as a Collection: itself, loaded from a path, or wrapped from a table."""
    if isinstance(value, CollectionTable):
        return value
    if isinstance(value, (str, os.PathLike)):
        return load(value)
    if isinstance(value, (pa.Table, pa.RecordBatch)):
        return as_collection(value)
    raise TypeError(
        f"expected a Collection, a collection Parquet path or a pyarrow Table, "
        f"got {type(value).__name__}"
    )
