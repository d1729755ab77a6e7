"""The ``rasteret`` xarray engine (``xr.open_dataset(..., engine="rasteret")``).

xarray imports this package when it lists its engines, for every user of xarray: names
are therefore imported lazily, and :mod:`rasteret.backend.entrypoint` itself imports
the store (zarr, pyarrow) only when a dataset is opened.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rasteret._lazy import lazy_exports

if TYPE_CHECKING:
    from rasteret.backend.chunks import DEFAULT_TARGET_BYTES, preferred_chunks
    from rasteret.backend.entrypoint import (
        GroupOptions,
        RasteretBackendEntrypoint,
        open_group_dataset,
    )
    from rasteret.backend.resolve import looks_like_collection, resolve_group

_LAZY: dict[str, str] = {
    "DEFAULT_TARGET_BYTES": "rasteret.backend.chunks",
    "preferred_chunks": "rasteret.backend.chunks",
    "GroupOptions": "rasteret.backend.entrypoint",
    "RasteretBackendEntrypoint": "rasteret.backend.entrypoint",
    "open_group_dataset": "rasteret.backend.entrypoint",
    "looks_like_collection": "rasteret.backend.resolve",
    "resolve_group": "rasteret.backend.resolve",
}

__all__ = [
    "DEFAULT_TARGET_BYTES",
    "GroupOptions",
    "RasteretBackendEntrypoint",
    "looks_like_collection",
    "open_group_dataset",
    "preferred_chunks",
    "resolve_group",
]


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, __all__)
