"""The ``rasteret`` xarray engine (``xr.open_dataset(..., engine="rasteret")``)."""

from __future__ import annotations

from rasteret.backend.chunks import DEFAULT_TARGET_BYTES, preferred_chunks
from rasteret.backend.entrypoint import (
    GroupOptions,
    RasteretBackendEntrypoint,
    open_group_dataset,
)
from rasteret.backend.resolve import looks_like_collection, resolve_group

__all__ = [
    "DEFAULT_TARGET_BYTES",
    "GroupOptions",
    "RasteretBackendEntrypoint",
    "looks_like_collection",
    "open_group_dataset",
    "preferred_chunks",
    "resolve_group",
]
