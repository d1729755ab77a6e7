"""Where each record's band lives in the virtual Zarr store, and windowed reads through it.

Every pixel the ``read`` layer returns comes from :func:`read_windows`: it opens the
store's Zarr arrays (``zarr.api.asynchronous``) and indexes ``(t, y0:y1, x0:x1)`` for
all requested windows at once, so the tiles of every window are fetched concurrently
and the fetch layer coalesces the reads of one file into few requests.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pyproj import CRS

from rasteret._progress import ProgressLine
from rasteret.index import Collection
from rasteret.store import VirtualStore, open_store
from rasteret.store.layout import GroupLayout

Affine6 = tuple[float, float, float, float, float, float]


@dataclass(frozen=True, slots=True)
class BandSource:
    """One record's band in the store: its group (grid), array, time index and grid."""

    row: int  # table row of the record
    band: str
    group: str
    array: str
    t: int
    mask_array: str | None  # the band's internal mask array in the same group (or None)
    transform: Affine6
    width: int
    height: int
    crs_key: str  # WKT (or "EPSG:x") of the grid's CRS
    dtype: np.dtype
    nodata: float | None
    scale: float | None
    offset: float | None
    block_shape: tuple[int, int]

    @property
    def path(self) -> str:
        return f"{self.group}/{self.array}"


class StoreIndex:
    """Band sources of every record of a collection (full-resolution groups only)."""

    def __init__(self, collection: Collection, bands: Sequence[str]) -> None:
        self.collection = collection
        self.bands = tuple(bands)
        self.store: VirtualStore = open_store(collection, list(bands))
        self._sources: dict[tuple[str, int], BandSource] = {}
        self._crs: dict[str, CRS] = {}
        for name, group in self.store.layout.groups.items():
            if group.overview is None:
                self._add_group(name, group)

    def _add_group(self, name: str, group: GroupLayout) -> None:
        for source in group_sources(name, group):
            self._sources[(source.band, source.row)] = source

    def source(self, band: str, row: int) -> BandSource | None:
        """The band of the record at table ``row`` (``None``: band missing in that record)."""
        return self._sources.get((band, row))

    def crs(self, source: BandSource) -> CRS:
        found = self._crs.get(source.crs_key)
        if found is None:
            found = self._crs[source.crs_key] = CRS.from_user_input(source.crs_key)
        return found


def group_sources(name: str, group: GroupLayout) -> Iterator[BandSource]:
    """Every (record, band) of the store group ``name``: one source per data array and time
    index that has a file, with the band's internal mask array when there is one. Nothing
    for a group without a transform."""
    grid = group.grid
    if grid.transform is None:
        return
    crs_key = f"EPSG:{grid.epsg}" if grid.epsg is not None else (grid.crs_wkt or "")
    transform = tuple(float(v) for v in grid.transform)
    masks = {
        (a.band, t): a.name
        for a in group.arrays.values()
        if a.kind == "mask"
        for t, s in enumerate(a.sources)
        if s is not None
    }
    for array in group.arrays.values():
        if array.kind != "data":
            continue
        for t, src in enumerate(array.sources):
            if src is None:
                continue
            yield BandSource(
                row=int(group.rows[t]),
                band=array.band,
                group=name,
                array=array.name,
                t=t,
                mask_array=masks.get((array.band, t)),
                transform=transform,  # type: ignore[arg-type]
                width=grid.width,
                height=grid.height,
                crs_key=crs_key,
                dtype=np.dtype(array.dtype),
                nodata=array.nodata,
                scale=array.scale,
                offset=array.offset,
                block_shape=array.block_shape,
            )


@dataclass(frozen=True, slots=True)
class WindowRequest:
    """Pixels ``[row0:row1, col0:col1]`` of array ``path`` at time index ``t``."""

    path: str
    t: int
    row0: int
    row1: int
    col0: int
    col1: int


def read_windows(store: VirtualStore, requests: Sequence[WindowRequest]) -> list[np.ndarray]:
    """Read all ``requests`` concurrently through the store (one event loop, one batch)."""
    if not requests:
        return []
    from rasteret._async import run_sync

    return run_sync(read_windows_async(store, requests))


async def read_windows_async(
    store: VirtualStore, requests: Sequence[WindowRequest]
) -> list[np.ndarray]:
    import zarr.api.asynchronous as zasync

    root = await zasync.open_group(store=store, mode="r", zarr_format=3)
    arrays: dict[str, Any] = {}
    for path in {r.path for r in requests}:
        arrays[path] = await root.getitem(path)

    # a progress line on a terminal for reads of many windows (silent otherwise)
    bar = ProgressLine(len(requests), desc="reading windows", enabled=len(requests) >= 64)

    async def one(r: WindowRequest) -> np.ndarray:
        out = await arrays[r.path].getitem((r.t, slice(r.row0, r.row1), slice(r.col0, r.col1)))
        bar.update()
        return np.asarray(out)

    try:
        return list(await asyncio.gather(*(one(r) for r in requests)))
    finally:
        bar.close()
