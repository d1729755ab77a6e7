"""``open_store``: a Collection (or a collection path / table) → :class:`VirtualStore`."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from rasteret.index import Collection, as_collection, load
from rasteret.store.layout import build_layout
from rasteret.store.reference import StoreSource, cached_store, remember
from rasteret.store.virtual import VirtualStore

#: zarr's ``async.concurrency`` default; raised to :data:`ZARR_CONCURRENCY` when unchanged.
_ZARR_DEFAULT_CONCURRENCY = 10
ZARR_CONCURRENCY = 64


def open_store(
    collection: Collection | str | os.PathLike[str] | pa.Table,
    bands: str | Sequence[str] | None = None,
) -> VirtualStore:
    """A read-only Zarr v3 store over ``collection`` (a Collection, a collection Parquet
    file/directory, or a collection table), restricted to ``bands`` (default: all).

    Open it with ``zarr.open_group(store, mode="r")``, ``xr.open_zarr(store, group=...)``
    or ``xr.open_dataset(collection, engine="rasteret")``. Raises
    :class:`~rasteret.errors.BandNotFoundError` for an unknown band.
    """
    return build_store(as_store_collection(collection), bands)


def build_store(collection: Collection, bands: str | Sequence[str] | None = None) -> VirtualStore:
    """The store of ``collection`` (reused from the per-process cache when identical)."""
    selected = (bands,) if isinstance(bands, str) else (None if bands is None else tuple(bands))
    layout = build_layout(collection.table, selected)
    source = StoreSource(collection, layout)
    cached = cached_store(source.token)
    if cached is not None:
        return cached
    ensure_zarr_concurrency()
    store = VirtualStore(layout, source)
    remember(store)
    return store


def as_store_collection(value: Any) -> Collection:
    """``value`` as a Collection: itself, loaded from a path, or wrapped from a table."""
    if isinstance(value, Collection):
        return value
    if isinstance(value, (str, os.PathLike)):
        return load(value)
    if isinstance(value, (pa.Table, pa.RecordBatch)):
        return as_collection(value)
    raise TypeError(
        f"expected a Collection, a collection Parquet path or a pyarrow Table, "
        f"got {type(value).__name__}"
    )


def ensure_zarr_concurrency(concurrency: int = ZARR_CONCURRENCY) -> None:
    """Raise zarr's ``async.concurrency`` from its default (10) so one dask chunk's tiles
    are fetched together (DESIGN decision 7); a value the user set is left alone."""
    import zarr

    if zarr.config.get("async.concurrency") == _ZARR_DEFAULT_CONCURRENCY:
        zarr.config.set({"async.concurrency": concurrency})
