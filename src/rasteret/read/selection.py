"""What a read selects: the collection after its subset filters, the bands, record order.

Shared by every read surface (AOI reads, mosaics, ``sample_points``, ``read_window``):

* :func:`apply_filters` — a surface's ``**filters`` to ``collection.subset``
  (``cloud_cover_lt``, ``date_range``, ``bbox``, ``split``, ``split_column``); options
  of the original API in :data:`LEGACY_OPTIONS` are ignored with a ``DeprecationWarning``
  (:func:`drop_legacy_options`), never silently;
* :func:`band_names` — the requested bands, validated against the collection;
* :func:`time_ordered_rows` — table rows in record time order (datetime, then id).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rasteret.errors import BandNotFoundError
from rasteret.index import CollectionTable
from rasteret.index.columns import record_order

#: Options of the original API's readers, accepted and ignored with a warning saying what
#: to use instead (I/O settings live in ``rasteret.configure`` / ``reader=``).
LEGACY_OPTIONS: Mapping[str, str] = {
    "max_concurrent": "concurrency is set by rasteret.configure(max_in_flight=...)",
    "backend": "object-store access is set by rasteret.configure(stores=...)",
    "cloud_config": "credentials are set by rasteret.configure(stores=...)",
    "data_source": "the data source is part of the collection",
    "progress": "progress is shown on a terminal automatically",
    "xr_combine": "get_xarray always combines records along time",
    "allow_resample": "resampling onto the dataset grid is always on",
}
_PACKAGE = str(Path(__file__).resolve().parents[1])
#: The keyword arguments of ``Collection.subset`` the readers pass through.
RECORD_FILTERS = ("cloud_cover_lt", "date_range", "bbox", "geometries", "split", "split_column")


def drop_legacy_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` without the original API's :data:`LEGACY_OPTIONS`, each of which is
    reported with a ``DeprecationWarning`` pointing at the caller's code."""
    for key in options:
        if key in LEGACY_OPTIONS:
            warnings.warn(
                f"{key}=... is an option of the original rasteret and is ignored: "
                f"{LEGACY_OPTIONS[key]}",
                DeprecationWarning,
                skip_file_prefixes=(_PACKAGE,),
            )
    return {k: v for k, v in options.items() if k not in LEGACY_OPTIONS}


def apply_filters(collection: Any, filters: dict[str, Any] | None) -> CollectionTable:
    """``collection`` (any collection a store can be built from) subset by ``filters``
    (``None`` values ignored, legacy options warned about and ignored; any other key is
    ``subset``'s ``TypeError``)."""
    if not isinstance(collection, CollectionTable):
        from rasteret.store.api import as_store_collection

        collection = as_store_collection(collection)
    kept = drop_legacy_options(filters or {})
    unknown = sorted(set(kept) - set(RECORD_FILTERS))
    if unknown:
        raise TypeError(
            f"unexpected keyword argument(s) {', '.join(map(repr, unknown))}: the record "
            f"filters are {', '.join(RECORD_FILTERS)} (Collection.subset)"
        )
    active = {k: v for k, v in kept.items() if v is not None}
    if not set(active) - {"split_column"}:  # a split column alone selects nothing
        return collection
    return collection.subset(**active)


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
