"""What a read selects: the collection after its subset filters, the bands, record order.

Shared by every read surface (AOI reads, mosaics, ``sample_points``, ``read_window``):

* :func:`apply_filters` — a surface's ``**filters`` to ``collection.subset``
  (``cloud_cover_lt``, ``date_range``, ``bbox``, ``split``, ``split_column``); options
  of the original API in :data:`LEGACY_OPTIONS` are ignored with a ``DeprecationWarning``
  (:func:`drop_legacy_options`), never silently;
* :func:`legacy_read_options` — the original API's storage settings (``backend=``,
  ``cloud_config=``, ``data_source=`` with a registered ``CloudConfig``) turned into the
  ``reader=`` of one read, with a ``DeprecationWarning`` (the ``Collection`` methods
  call it); they change how objects are reached, so they are honoured, never ignored;
* :func:`band_names` — the requested bands, validated against the collection;
* :func:`time_ordered_rows` — table rows in record time order (datetime, then id).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rasteret.errors import BandNotFoundError
from rasteret.index import CollectionTable
from rasteret.index.columns import record_order

if TYPE_CHECKING:
    from rasteret.fetch import RangeReader

#: Options of the original API's readers, accepted and ignored with a warning saying what
#: to use instead (I/O settings live in ``rasteret.configure`` / ``reader=``).
LEGACY_OPTIONS: Mapping[str, str] = {
    "max_concurrent": "concurrency is set by rasteret.configure(max_in_flight=...)",
    "data_source": "the data source is part of the collection",
    "progress": (
        "this read shows progress on a terminal; get_numpy, get_xarray, read_window and "
        "sample_points take progress=True / False / callable(done, total)"
    ),
    "xr_combine": "get_xarray always combines records along time",
    "allow_resample": "resampling onto the dataset grid is always on",
}
#: Options of the original API that change how objects are reached: honoured through
#: ``reader=`` (:func:`legacy_read_options`), never ignored.
STORAGE_OPTIONS: Mapping[str, str] = {
    "backend": "reader=RangeReader(FetchConfig(stores=...)) or rasteret.configure(stores=...)",
    "cloud_config": "reader=RangeReader(FetchConfig(stores=...)) or rasteret.configure(stores=...)",
}
_PACKAGE = str(Path(__file__).resolve().parents[1])
#: The keyword arguments of ``Collection.subset`` the readers pass through.
RECORD_FILTERS = ("cloud_cover_lt", "date_range", "bbox", "geometries", "split", "split_column")


def drop_legacy_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` without the original API's :data:`LEGACY_OPTIONS`, each of which is
    reported with a ``DeprecationWarning`` pointing at the caller's code. A storage option
    (:data:`STORAGE_OPTIONS`) that was not turned into a reader raises ``TypeError``."""
    for key, value in options.items():
        if key in STORAGE_OPTIONS and value is not None:
            raise TypeError(
                f"{key}=... is not applied here: pass reader=rasteret.fetch.legacy."
                f"legacy_reader({key}={key}) (the rasteret.Collection methods do this), or "
                f"use {STORAGE_OPTIONS[key]}"
            )
        if key in LEGACY_OPTIONS:
            warnings.warn(
                f"{key}=... is an option of the original rasteret and is ignored: "
                f"{LEGACY_OPTIONS[key]}",
                DeprecationWarning,
                skip_file_prefixes=(_PACKAGE,),
            )
    return {
        k: v for k, v in options.items() if k not in LEGACY_OPTIONS and k not in STORAGE_OPTIONS
    }


def legacy_read_options(
    options: Mapping[str, Any], reader: RangeReader | None
) -> tuple[RangeReader | None, dict[str, Any]]:
    """``(reader, other options)`` for a read given the original API's ``backend=`` /
    ``cloud_config=`` (and ``data_source=`` when a :class:`~rasteret.fetch.legacy.CloudConfig`
    is registered for it): ``reader`` (default: the process's reader) with their store
    options over its own, for this read only (:func:`rasteret.fetch.legacy.legacy_reader`),
    reported with a ``DeprecationWarning`` saying what to use instead. Without them
    ``reader`` and ``options`` come back unchanged; ``None`` values count as absent."""
    backend = options.get("backend")
    cloud_config = options.get("cloud_config")
    rest = {k: v for k, v in options.items() if k not in STORAGE_OPTIONS}
    source = options.get("data_source")
    if backend is None and cloud_config is None and isinstance(source, str) and source:
        from rasteret.fetch.legacy import CloudConfig

        cloud_config = CloudConfig.get_config(source)
        if cloud_config is not None:  # the registered config is used: not ignored
            del rest["data_source"]
    if backend is None and cloud_config is None:
        return reader, rest
    from rasteret.fetch.legacy import legacy_reader

    honoured = legacy_reader(backend, cloud_config, reader=reader)  # TypeError if it cannot
    used = [f"{k}=..." for k in ("backend", "cloud_config") if options.get(k) is not None]
    used = used or [f"data_source={source!r} (its registered CloudConfig)"]
    warnings.warn(
        f"{' and '.join(used)} of the original rasteret API: honoured for this read as store "
        f"options; in new code use {STORAGE_OPTIONS['backend']}",
        DeprecationWarning,
        skip_file_prefixes=(_PACKAGE,),
    )
    return honoured, rest


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
