"""Where each record's band lives in the store layout, and windowed reads of it.

Every pixel the ``read`` layer returns comes from :func:`read_windows`: all requested
windows in one batch through :func:`rasteret.store.window_read.read_array_windows`
(the store's layout and reader, without zarr's per-chunk machinery), so the tiles of
every window are fetched concurrently, the fetch layer coalesces the reads of one file
into few requests, and decoding overlaps the fetches.

Progress (``progress=`` of ``get_numpy``, ``get_xarray``, ``read_window`` and
``sample_points``) is counted in **tiles**: a surface opens :func:`read_progress`
around its reads; ``total`` is the number of distinct tiles its plan reads (declared
with :func:`plan_progress` by a surface that reads in several batches, else the tiles
of its first batch), ``done`` the distinct planned tiles fetched and decoded so far, and
the read ends at ``done == total`` (a tile a mosaic never needed to read counts as done
then). Without ``progress=`` a batch of 64 windows or more shows a line on a terminal.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
from pyproj import CRS

from rasteret._options import default_progress
from rasteret._progress import (
    ProgressCounter,
    ProgressLine,
    ProgressOption,
    default_line,
    progress_reporter,
)
from rasteret._types import Affine6
from rasteret.fetch import RangeReader
from rasteret.geo.transform import CRSError, to_crs
from rasteret.geo.transform import crs_key as geo_crs_key
from rasteret.index import CollectionTable
from rasteret.store.layout import GroupLayout, StoreLayout, build_layout
from rasteret.store.window_read import Allocate, ArrayWindow, read_array_windows

if TYPE_CHECKING:
    from rasteret.store.tiles import TileStore
    from rasteret.store.virtual import VirtualStore


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
    crs_key: str  # rasteret.geo.transform.crs_key of the grid's CRS ("EPSG:x" or WKT2)
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

    def __init__(
        self,
        collection: CollectionTable,
        bands: Sequence[str],
        *,
        reader: RangeReader | None = None,
    ) -> None:
        from rasteret.fetch import default_reader

        self.collection = collection
        self.bands = tuple(bands)
        self.reader: RangeReader = reader if reader is not None else default_reader()
        self.layout: StoreLayout = build_layout(collection.table, self.bands)
        self._sources: dict[tuple[str, int], BandSource] = {}
        self._crs: dict[str, CRS] = {}
        for name, group in self.layout.groups.items():
            if group.overview is None:
                self._add_group(name, group)

    @cached_property
    def tiles(self) -> TileStore:
        """The tile store of these records and bands (its identity and pickle reference)."""
        from rasteret.store.reference import StoreSource
        from rasteret.store.tiles import TileStore

        return TileStore(self.layout, StoreSource(self.collection, self.layout), self.reader)

    @cached_property
    def store(self) -> VirtualStore:
        """The same tiles as a Zarr v3 store (built on first use: the reads here do not
        need it)."""
        from rasteret.store.virtual import VirtualStore

        return VirtualStore(self.tiles)

    def _add_group(self, name: str, group: GroupLayout) -> None:
        for source in group_sources(name, group):
            self._sources[(source.band, source.row)] = source

    def source(self, band: str, row: int) -> BandSource | None:
        """The band of the record at table ``row`` (``None``: band missing in that record)."""
        return self._sources.get((band, row))

    def sources(self) -> list[BandSource]:
        """Every (record, band) source of the index."""
        return list(self._sources.values())

    def crs(self, source: BandSource) -> CRS:
        found = self._crs.get(source.crs_key)
        if found is None:
            found = self._crs[source.crs_key] = to_crs(source.crs_key)
        return found


def group_sources(name: str, group: GroupLayout) -> Iterator[BandSource]:
    """Every (record, band) of the store group ``name``: one source per data array and time
    index that has a file, with the band's internal mask array when there is one. Nothing
    for a group without a transform."""
    grid = group.grid
    if grid.transform is None:
        return
    # the CRS identity of rasteret.geo.transform.crs_key ("EPSG:n" when exact, else WKT2)
    crs_key = f"EPSG:{grid.epsg}" if grid.epsg is not None else _wkt_key(grid.crs_wkt)
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


def _wkt_key(wkt: str | None) -> str:
    if not wkt:
        return ""
    try:
        return geo_crs_key(wkt)
    except CRSError:
        return wkt  # unparsable: reads that need the CRS raise then, naming it


#: Pixels ``window`` of array ``path`` (``"{group}/{array}"``) at time index ``t``.
WindowRequest = ArrayWindow


def read_windows(
    index: StoreIndex,
    requests: Sequence[WindowRequest],
    outputs: Sequence[np.ndarray | None] | None = None,
    on_done: Callable[[int, np.ndarray], None] | None = None,
) -> list[np.ndarray]:
    """Read all ``requests`` concurrently through the store (one event loop, one batch),
    into ``outputs`` where given, calling ``on_done(index, output)`` as each window
    completes (see :func:`~rasteret.store.window_read.read_array_windows`).
    A batch over the read budget raises :class:`~rasteret.read.budget.ReadBudgetExceeded`
    before anything is fetched (the plan of exactly its tiles)."""
    if not requests:
        return []
    from rasteret._async import run_sync
    from rasteret.store.budget import check_windows_budget

    check_windows_budget(index.layout, index.reader, requests)  # in the caller's context

    coro = read_windows_async(index, requests, outputs, on_done)
    return run_sync(_in_scope(_scope.get(), coro))  # the caller's progress, explicitly


async def read_windows_async(
    index: StoreIndex,
    requests: Sequence[WindowRequest],
    outputs: Sequence[np.ndarray | None] | None = None,
    on_done: Callable[[int, np.ndarray], None] | None = None,
    allocate: Allocate | None = None,
) -> list[np.ndarray]:
    """:func:`read_windows` on the running event loop; its decoded tiles are reported to
    the :func:`read_progress` the read runs in, else a progress line on a terminal for
    reads of many windows (silent otherwise). ``allocate``: see
    :func:`~rasteret.store.window_read.read_array_windows`."""
    scope = _scope.get()
    if scope is not None:
        return await read_array_windows(
            index.layout,
            index.reader,
            requests,
            progress=scope.batch(index.layout, requests),
            outputs=outputs,
            on_done=on_done,
            allocate=allocate,
        )
    bar: ProgressLine | None = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = ProgressLine(total, desc="reading tiles", enabled=default_line(len(requests)))
        bar.update()

    try:
        return await read_array_windows(
            index.layout,
            index.reader,
            requests,
            progress=progress,
            outputs=outputs,
            on_done=on_done,
            allocate=allocate,
        )
    finally:
        if bar is not None:
            bar.close()


# ----------------------------------------------------------------------------- progress

#: A tile of a read: (array path, time index, tile row, tile column).
TileKey = tuple[str, int, int, int]


def tile_keys(layout: StoreLayout, requests: Sequence[WindowRequest]) -> set[TileKey]:
    """The distinct tiles with data (not sparse) that ``requests`` read: the tiles
    :func:`~rasteret.store.window_read.read_array_windows` fetches and decodes."""
    keys: set[TileKey] = set()
    for request in requests:
        array = layout.array(request.path)
        source = None if array is None else array.sources[request.t]
        window = request.window
        if source is None or window.height <= 0 or window.width <= 0:
            continue
        assert array is not None
        block_h, block_w = array.block_shape
        rows = np.arange(
            window.row_off // block_h, (window.row_off + window.height - 1) // block_h + 1
        )
        cols = np.arange(
            window.col_off // block_w, (window.col_off + window.width - 1) // block_w + 1
        )
        ii, jj = np.meshgrid(rows, cols, indexing="ij")
        counts = np.asarray(source.byte_counts)[ii * array.tiles_across + jj]
        keys.update(
            (request.path, request.t, int(i), int(j))
            for i, j in zip(ii[counts > 0], jj[counts > 0], strict=True)
        )
    return keys


class ReadProgress:
    """The tiles of one surface's read reported to a :class:`ProgressCounter`: the first
    declared plan fixes ``total``; each batch counts only planned tiles not counted
    before (a tile read twice counts once)."""

    def __init__(self, counter: ProgressCounter | None) -> None:
        self.counter = counter  # None: progress=False, nothing shown
        self._planned: set[TileKey] | None = None
        self._counted: set[TileKey] = set()
        self._lock = threading.Lock()

    def plan(self, keys: set[TileKey]) -> None:
        """Declare the tiles the read will need (the first declaration wins)."""
        with self._lock:
            if self._planned is None and self.counter is not None:
                self._planned = keys
                self.counter.start(len(keys))

    def batch(
        self, layout: StoreLayout, requests: Sequence[WindowRequest]
    ) -> Callable[[int, int], None] | None:
        """The per-tile ``progress`` of one batch of ``requests``: its first ``n``
        decoded tiles advance the counter, ``n`` the planned tiles it adds."""
        if self.counter is None:
            return None
        keys = tile_keys(layout, requests)
        self.plan(keys)
        with self._lock:
            assert self._planned is not None
            fresh = (keys & self._planned) - self._counted
            self._counted |= fresh
        new, counter = len(fresh), self.counter

        def progress(done: int, total: int) -> None:  # sequential: the reader's lock
            if done <= new:
                counter.advance()

        return progress


_scope: contextvars.ContextVar[ReadProgress | None] = contextvars.ContextVar(
    "rasteret_read_progress", default=None
)


@contextlib.contextmanager
def read_progress(progress: ProgressOption, desc: str = "reading tiles") -> Iterator[None]:
    """Report the tiles read inside the block to ``progress`` (see the module docs):
    ``True`` a line on a terminal, ``False`` nothing, a callable ``progress(done,
    total)`` (called from rasteret's read threads, one call at a time: keep it quick;
    an exception it raises fails the read). ``None`` leaves the default (a line for
    batches of many windows). The end (``done == total``) is reported when the block
    completes without an error."""
    if progress is None:
        progress = default_progress()
    if progress is None:
        yield
        return
    report, close = progress_reporter(progress, desc)
    counter = ProgressCounter(report) if report is not None else None
    token = _scope.set(ReadProgress(counter))
    try:
        yield
        if counter is not None:
            counter.finish()
    finally:
        _scope.reset(token)
        close()


async def _in_scope[T](scope: ReadProgress | None, coro: Coroutine[Any, Any, T]) -> T:
    """Await ``coro`` with ``scope`` as the read's progress (whatever thread runs it)."""
    token = _scope.set(scope)
    try:
        return await coro
    finally:
        _scope.reset(token)


def plan_progress(layout: StoreLayout, requests: Sequence[WindowRequest]) -> None:
    """Declare every window a read may need before it reads in several batches (mosaic
    rounds, waves), so the progress ``total`` is fixed from the start."""
    scope = _scope.get()
    if scope is not None and scope.counter is not None:
        scope.plan(tile_keys(layout, requests))
