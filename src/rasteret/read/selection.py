"""What a read selects: the collection after its subset filters, the bands, record order.

Shared by every read surface (AOI reads, mosaics, ``sample_points``, ``read_window``):

* :func:`apply_filters` — a surface's ``**filters`` to ``collection.subset``
  (``cloud_cover_lt``, ``date_range``, ``bbox``, ``split``, ``split_column``); options
  of the original API in :data:`LEGACY_OPTIONS` are ignored;
* :func:`band_names` — the requested bands, validated against the collection;
* :func:`time_ordered_rows` — table rows in record time order (datetime, then id).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from rasteret.errors import BandNotFoundError
from rasteret.index import CollectionTable
from rasteret.index.columns import record_order

#: Options of the original API accepted and ignored (the fetch layer owns I/O settings).
LEGACY_OPTIONS = frozenset(
    {"max_concurrent", "progress", "cloud_config", "data_source", "backend", "xr_combine"}
)


def apply_filters(collection: Any, filters: dict[str, Any] | None) -> CollectionTable:
    """``collection`` (any collection a store can be built from) subset by ``filters``
    (``None`` values and legacy options ignored)."""
    if not isinstance(collection, CollectionTable):
        from rasteret.store.api import as_store_collection

        collection = as_store_collection(collection)
    active = {k: v for k, v in (filters or {}).items() if v is not None and k not in LEGACY_OPTIONS}
    return collection.subset(**active) if active else collection


def band_names(collection: CollectionTable, bands: str | Sequence[str]) -> tuple[list[str], bool]:
    """Requested bands as a list (validated) and whether the output drops the band axis."""
    if bands is None:
        raise ValueError(f"pass bands= (available bands: {collection.bands})")
    wanted = [bands] if isinstance(bands, str) else list(bands)
    if not wanted:
        raise ValueError(f"bands is empty (available bands: {collection.bands})")
    available = collection.bands
    missing = [b for b in wanted if b not in available]
    if missing:
        raise BandNotFoundError(f"Band(s) not found: {missing}. Available bands: {available}")
    return wanted, len(wanted) == 1


def time_ordered_rows(collection: CollectionTable) -> np.ndarray:
    """Table rows in record time order (datetime, then id; missing datetimes last)."""
    order, _, _ = record_order(collection.table)
    return order
