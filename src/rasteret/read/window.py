"""``read_window``: a collection's pixels on one target grid (bounds + resolution + CRS).

The primitive behind the TorchGeo dataset, public for users who bring their own
sampler. The target grid follows ``rasterio.merge`` / TorchGeo: origin at
``(left, top)``, pixel size ``res``, ``round(extent / res)`` pixels per axis (or pass
``grid=GridSpec(...)``).

For every (record, band) that overlaps the grid:

* **aligned** (same CRS, same pixel size, origins a whole number of pixels apart): the
  overlapping source pixels are copied, no resampling — identical to GDAL;
* otherwise the source window that feeds the grid is read and warped with
  :func:`rasteret.geo.warp.warp_array` (no GDAL). With ``overviews=True`` a target
  coarser than the data reads the overview GDAL would pick
  (:func:`rasteret.geo.overview.choose_overview`).

Resampling defaults to ``nearest`` for integer bands (classes, masks, DN) and
``bilinear`` for floating-point bands; pass ``resampling="..."`` (or ``{band: ...}``).
Nodata / NaN / internal masks never bleed into valid pixels.

Records are painted in time order (datetime, then id), the first valid pixel wins
(``rasterio.merge(method="first")``). ``group_by=None`` mosaics every record into
``[C, H, W]``; ``group_by="time"`` (alias ``"datetime"``), ``"solar_day"``, ``"id"``, a
column name or a callable gives ``[T, C, H, W]``, one mosaic per group in first-member
order. Every read of a call (all records, bands and groups) is issued in one concurrent
batch through the virtual store (one event-loop pass; the fetch layer coalesces the tiles
of one file into few requests).
"""

from __future__ import annotations

import threading
from collections import Counter, OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from rasteret._async import run_sync
from rasteret._pages import small_pages
from rasteret._progress import ProgressOption
from rasteret._types import Bounds
from rasteret.fetch import RangeReader
from rasteret.geo.grid import GridSpec
from rasteret.geo.odc import pick_grid
from rasteret.geo.transform import crs_key
from rasteret.geo.window import Window
from rasteret.index import CollectionTable
from rasteret.index.columns import record_order
from rasteret.index.failed import OnFailedAsset, check_indexed
from rasteret.read.budget import check_windows_budget, enforce_read_budget
from rasteret.read.grid_tasks import (
    GridTask,
    Output,
    TaskPlanner,
    holds_fill,
    implied_validity,
    overview_sources,
)
from rasteret.read.radiometry import fill_value_for
from rasteret.read.result import NoDataError, Validity
from rasteret.read.selection import band_names
from rasteret.read.stacks import BandSource, StoreIndex, plan_progress, read_progress
from rasteret.read.window_io import source_requests
from rasteret.read.window_tasks import read_tasks

GroupBy = str | Callable[[dict[str, Any]], Any] | None
Resampling = str | Mapping[str, str] | None


@dataclass(frozen=True)
class WindowRead:
    """Result of :func:`read_window_info`.

    ``data``: ``[C, H, W]`` (mosaic) or ``[T, C, H, W]`` (``group_by``), native dtype
    (the common dtype of the bands). ``valid``: same shape, ``True`` where a record
    supplied a valid pixel (invalid pixels hold the band's fill: ``fill_value``, else
    nodata, else 0); ``None`` from a read that asked for the pixels only
    (:meth:`WindowReader.read` with ``validity=False``). ``validity``: the mask itself,
    or — when the pixels imply it (every band's invalid pixels hold its nodata, which is
    its fill: no internal mask, no mosaic, copies and nearest warps of integer bands) —
    the :class:`~rasteret.read.result.ImpliedMask` that ``valid`` derives from ``data``
    on first use (as :attr:`AOIWindow.mask <rasteret.read.result.AOIWindow.mask>`: read
    ``valid`` before writing to ``data``). ``groups``: the group key of each ``T``
    (``None`` for a mosaic); ``record_ids``: per output (one for a mosaic), the records
    that overlap it, in paint order; ``datetimes``: the first such record's time (NaT
    when none).
    """

    data: np.ndarray
    validity: Validity | None
    grid: GridSpec
    bands: tuple[str, ...]
    groups: tuple[str, ...] | None
    record_ids: tuple[tuple[str, ...], ...]
    datetimes: np.ndarray

    @cached_property
    def valid(self) -> np.ndarray | None:
        """``True`` where a record supplied a valid pixel (same shape as ``data``)."""
        found = self.validity
        return found if found is None or isinstance(found, np.ndarray) else found.of(self.data)


def target_grid(bounds: Bounds, res: float | Sequence[float], crs: Any) -> GridSpec:
    """The grid TorchGeo / ``rasterio.merge`` read for ``bounds`` at ``res``: origin at
    ``(left, top)``, ``round((right - left) / xres)`` x ``round((top - bottom) / yres)`` px."""
    left, bottom, right, top = (float(v) for v in bounds)
    if isinstance(res, (int, float, np.number)):
        xres = yres = float(res)
    else:
        xres, yres = (abs(float(v)) for v in res)
    if not (xres > 0 and yres > 0):
        raise ValueError(f"res must be positive, got {res!r}")
    if not (right > left and top > bottom):
        raise ValueError(f"bounds {bounds} are empty (need left < right and bottom < top)")
    width = max(1, round((right - left) / xres))
    height = max(1, round((top - bottom) / yres))
    return GridSpec(crs, (xres, 0.0, left, 0.0, -yres, top), (height, width))


@small_pages
def read_window(
    collection: CollectionTable,
    *,
    bands: str | Sequence[str],
    bounds: Bounds | None = None,
    res: float | Sequence[float] | None = None,
    crs: Any = None,
    grid: Any = None,
    records: Sequence[str] | None = None,
    group_by: GroupBy = None,
    resampling: Resampling = None,
    fill_value: float | None = None,
    overviews: bool = True,
    reader: RangeReader | None = None,
    errors: OnFailedAsset = "raise",
    progress: ProgressOption = None,
) -> np.ndarray:
    """Pixels of ``bands`` on one grid: ``[C, H, W]``, or ``[T, C, H, W]`` with ``group_by``.

    ``bounds`` (left, bottom, right, top) in ``crs`` at resolution ``res`` (CRS units;
    one number or ``(xres, yres)``), or a ready ``grid``. ``crs`` defaults to the
    records' CRS when they share one; ``res`` to the finest native resolution of the
    bands in that CRS. ``records``: only these record ids (they are all read, and with
    ``group_by`` each of their groups is an output even if it has no pixel there);
    default every record that overlaps the window (:class:`NoDataError` when none).
    See the module docs for resampling, mosaics and ``group_by``;
    :func:`read_window_info` also returns the valid-data mask and which records fed
    each output. ``grid`` may be an odc-geo ``GeoBox``. ``progress``: ``True`` / ``False``
    / ``callable(done, total)`` in tiles, as :func:`rasteret.read.get_numpy`'s.
    """
    args = (bounds, res, crs, grid, records, group_by, resampling, fill_value, overviews)
    # the pixels only: no valid-data mask is computed
    return _read(collection, bands, *args, reader, errors, progress, validity=False).data


@small_pages
def read_window_info(
    collection: CollectionTable,
    *,
    bands: str | Sequence[str],
    bounds: Bounds | None = None,
    res: float | Sequence[float] | None = None,
    crs: Any = None,
    grid: Any = None,
    records: Sequence[str] | None = None,
    group_by: GroupBy = None,
    resampling: Resampling = None,
    fill_value: float | None = None,
    overviews: bool = True,
    reader: RangeReader | None = None,
    errors: OnFailedAsset = "raise",
    progress: ProgressOption = None,
) -> WindowRead:
    """:func:`read_window` with its valid-data mask and identity (:class:`WindowRead`)."""
    args = (bounds, res, crs, grid, records, group_by, resampling, fill_value, overviews)
    return _read(collection, bands, *args, reader, errors, progress, validity=True)


def _read(
    collection: CollectionTable,
    bands: str | Sequence[str],
    bounds: Bounds | None,
    res: float | Sequence[float] | None,
    crs: Any,
    grid: Any,
    records: Sequence[str] | None,
    group_by: GroupBy,
    resampling: Resampling,
    fill_value: float | None,
    overviews: bool,
    reader: RangeReader | None,
    errors: OnFailedAsset,
    progress: ProgressOption,
    *,
    validity: bool,
) -> WindowRead:
    """Both public functions' read, parameters in their order."""
    grid = pick_grid(grid=grid)  # a GridSpec or an odc-geo GeoBox
    band_list = [bands] if isinstance(bands, str) else list(bands)
    collection = check_indexed(collection, band_list, errors)
    window_reader = WindowReader.of(collection, band_list, reader=reader)
    if grid is None:
        if bounds is None:
            raise ValueError("pass bounds= (left, bottom, right, top) and res=, or grid=")
        crs = window_reader.default_crs() if crs is None else crs
        res = window_reader.default_res(crs) if res is None else res
        grid = target_grid(bounds, res, crs)
    elif bounds is not None or res is not None or crs is not None:
        raise ValueError("pass either grid= or bounds= / res= / crs=, not both")
    enforce_read_budget(collection, band_list, grid.bounds, grid.crs)
    rows = None if records is None else window_reader.rows_of(records)
    with read_progress(progress):
        return window_reader.read(
            grid,
            rows,
            group_by=group_by,
            resampling=resampling,
            fill_value=fill_value,
            overviews=overviews,
            validity=validity,
        )


# ----------------------------------------------------------------------------- reader


#: Recently used window readers by (id(collection), bands, fetch settings); an entry keeps
#: its collection alive, so an id is never reused while cached.
_READERS: OrderedDict[tuple[int, tuple[str, ...], str], WindowReader] = OrderedDict()
_READERS_SIZE = 8


class WindowReader:
    """The per-collection state of window reads: the store index of ``bands``, record
    order and overview sources. Built once per (collection, bands) and cached."""

    _lock = threading.Lock()

    def __init__(
        self,
        collection: CollectionTable,
        bands: Sequence[str],
        *,
        reader: RangeReader | None = None,
    ) -> None:
        band_names(collection, list(bands))  # validated
        self.collection = collection
        self.bands = tuple(bands)
        self.index = StoreIndex(collection, self.bands, reader=reader)
        order, times, ids = record_order(collection.table)
        self.order = order
        self.rank = np.empty(len(order), dtype=np.int64)
        self.rank[order] = np.arange(len(order))
        self.times = times
        self.ids = ids
        self._row_of = {rid: i for i, rid in enumerate(ids)}
        self.overviews = overview_sources(self.index)
        self._crs_keys: dict[str, str] = {}

    @classmethod
    def of(
        cls,
        collection: CollectionTable,
        bands: Sequence[str],
        *,
        reader: RangeReader | None = None,
    ) -> WindowReader:
        """The cached window reader of ``collection`` and ``bands`` (built on first use)
        whose store reads with ``reader`` (default: the process's reader)."""
        settings = "default" if reader is None else reader.settings_key()
        key = (id(collection), tuple(bands), settings)
        with cls._lock:
            found = _READERS.get(key)
            if found is not None and found.collection is collection:
                _READERS.move_to_end(key)
                return found
        built = cls(collection, key[1], reader=reader)
        with cls._lock:
            _READERS[key] = built
            while len(_READERS) > _READERS_SIZE:
                _READERS.popitem(last=False)
        return built

    @property
    def store(self) -> Any:
        """The tile store of these records and bands (``token``: its identity)."""
        return self.index.tiles

    # -- defaults ------------------------------------------------------------------------
    def sources(self, band: str | None = None) -> list[BandSource]:
        """Sources of ``band`` (default: every requested band) in record time order."""
        wanted = self.bands if band is None else (band,)
        out = []
        for row in self.order:
            for b in wanted:
                src = self.index.source(b, int(row))
                if src is not None:
                    out.append(src)
        return out

    def default_crs(self) -> str:
        keys = list(dict.fromkeys(s.crs_key for s in self.sources()))
        if len(keys) == 1:
            return keys[0]
        if not keys:
            raise NoDataError(f"no record has any of the bands {list(self.bands)}")
        names = [k if k.startswith("EPSG:") else k[:40] for k in keys]
        raise ValueError(f"the records are in {len(keys)} CRSs ({names}); pass crs=")

    def default_res(self, crs: Any) -> tuple[float, float]:
        key = crs_key(crs)
        same = [s for s in self.sources() if s.crs_key == key]
        if not same:
            raise ValueError(f"no record is in {key[:40]}: pass res= (in that CRS's units)")
        return (min(abs(s.transform[0]) for s in same), min(abs(s.transform[4]) for s in same))

    def rows_of(self, records: Sequence[str]) -> np.ndarray:
        """Table rows of record ids, in paint (time) order; unknown ids raise ``KeyError``."""
        ids = [records] if isinstance(records, str) else list(records)
        missing = [r for r in ids if str(r) not in self._row_of]
        if missing:
            raise KeyError(f"record id(s) not in the collection: {missing[:10]}")
        rows = np.unique(np.array([self._row_of[str(r)] for r in ids], dtype=np.int64))
        return rows[np.argsort(self.rank[rows], kind="stable")]

    def crs_key_of(self, grid: GridSpec) -> str:
        wkt = grid.crs.srs
        key = self._crs_keys.get(wkt)
        if key is None:
            key = self._crs_keys[wkt] = crs_key(grid.crs)
        return key

    # -- the read ------------------------------------------------------------------------
    @small_pages
    def read(
        self,
        grid: GridSpec,
        rows: np.ndarray | None,
        *,
        group_by: GroupBy = None,
        resampling: Resampling = None,
        fill_value: float | None = None,
        overviews: bool = True,
        validity: bool = True,
    ) -> WindowRead:
        """Read ``grid`` from ``rows`` (``None``: every overlapping record).
        ``validity=False``: the pixels only (``WindowRead.valid`` is ``None``) — a copy
        whose invalid pixels already hold the fill then computes no validity at all."""
        explicit = rows is not None
        rows = self.order if rows is None else np.asarray(rows, dtype=np.int64)
        resamplings = self._resamplings(resampling)
        grid_key = self.crs_key_of(grid)
        planner = TaskPlanner(self.overviews, grid, grid_key, overviews)
        planned: list[tuple[int, list[tuple[int, BandSource, Window, Any, str]]]] = []
        for row in rows:
            row = int(row)
            parts = []
            for c, band in enumerate(self.bands):
                src = self.index.source(band, row)
                if src is None:
                    continue
                plan = planner.plan(src, resamplings[c])
                if plan is not None:
                    parts.append((c, *plan, resamplings[c]))
            if parts or explicit:
                planned.append((row, parts))
        if not explicit and not any(parts for _, parts in planned):
            raise NoDataError(self._no_data_message(grid))
        keys = self._group_keys([r for r, _ in planned], group_by)
        slots: dict[str, int] = {}
        members: list[list[int]] = []
        tasks: list[GridTask] = []
        for (row, parts), key in zip(planned, keys, strict=True):
            slot = slots.setdefault(key, len(slots))
            if slot == len(members):
                members.append([])
            if parts:
                members[slot].append(row)
            for c, src, window, paste, method in parts:
                tasks.append(GridTask(slot, c, src, window, paste, method))
        if not slots:  # explicit, empty record list
            slots[""] = 0
            members.append([])
        requests = source_requests([(task.source, task.window) for task in tasks])
        check_windows_budget(self.index.layout, self.index.reader, requests)  # before a fetch
        plan_progress(self.index.layout, requests)  # read in waves: the total is all of it
        dtype, fills = self._dtype_and_fills(fill_value)
        n = len(slots)
        shape = (n, len(self.bands), *grid.shape)
        data = np.empty(shape, dtype=dtype)
        valid = np.zeros(shape, dtype=bool)
        # a (slot, band) fed by one task is written by that task, on the decode pool,
        # straight into the output; several tasks (a mosaic) merge first-valid-wins here
        feeds = Counter((t.slot, t.band) for t in tasks)
        implied = implied_validity(tasks, dtype, fills) if validity else None
        # its task writes every pixel of such a plane (a warp its grid, a copy its box and
        # the fill around it), on the decode pool once its bytes arrive: the output is not
        # touched before the first request is sent (first-touched memory is slow on VMs)
        outputs = [
            Output(
                data[t.slot, t.band],
                valid[t.slot, t.band],
                fills[t.band],
                unfilled=True,
                validity=(validity and implied is None) or not holds_fill(t, dtype, fills[t.band]),
            )
            if feeds[(t.slot, t.band)] == 1
            else None
            for t in tasks
        ]
        unfilled = [(s, c) for s in range(n) for c in range(len(fills)) if feeds[(s, c)] != 1]
        # a mosaic is read in two waves: every task that no earlier task of its (slot,
        # band) can hide, then — only where those left pixels without a value — the rest
        first, later = _mosaic_waves(tasks)
        for wave in (first, later):
            if wave is later:
                wave = [i for i in later if not _covered(tasks[i], valid)]
            if not wave:
                continue
            chosen = [tasks[i] for i in wave]
            planner.prepare(chosen)  # warp maps computed while the first bytes are in flight
            results = run_sync(
                read_tasks(self.index, chosen, planner, dtype, [outputs[i] for i in wave])
            )
            unfilled = _fill_planes(data, unfilled, fills)  # before a mosaic merges
            for task, i, result in zip(chosen, wave, results, strict=True):
                if outputs[i] is not None:
                    continue  # already in place
                values, ok = result
                out_d = data[task.slot, task.band]
                out_v = valid[task.slot, task.band]
                if task.paste is not None:
                    r, c = task.paste
                    h, w = values.shape[-2:]
                    out_d, out_v = out_d[r : r + h, c : c + w], out_v[r : r + h, c : c + w]
                take = ok & ~out_v
                np.copyto(out_d, values, where=take, casting="unsafe")
                out_v |= take
        _fill_planes(data, unfilled, fills)  # nothing was read
        times = np.array(
            [self.times[m[0]] if m else np.datetime64("NaT", "us") for m in members],
            dtype="datetime64[us]",
        )
        record_ids = tuple(tuple(self.ids[r] for r in m) for m in members)
        found: Validity | None = valid
        if not validity:  # planes written without validity hold no mask: none returned
            found = None
        elif implied is not None:  # nor when the pixels imply it
            found = implied
        if group_by is None:
            first = valid[0] if found is valid else found
            return WindowRead(data[0], first, grid, self.bands, None, record_ids, times)
        return WindowRead(data, found, grid, self.bands, tuple(slots), record_ids, times)

    # -- helpers -------------------------------------------------------------------------
    def _group_keys(self, rows: list[int], group_by: GroupBy) -> list[str]:
        if group_by is None or not rows:
            return [""] * len(rows)
        from rasteret.read.mosaic import group_keys

        kind = "time" if group_by == "datetime" else group_by
        return group_keys(self.collection, np.asarray(rows, dtype=np.int64), kind)

    def _resamplings(self, resampling: Resampling) -> list[str]:
        from rasteret.geo.resampling import check_resampling

        out = []
        for band in self.bands:
            chosen = resampling.get(band) if isinstance(resampling, Mapping) else resampling
            if chosen is None:
                chosen = "bilinear" if self._dtype_of(band).kind in "fc" else "nearest"
            out.append(check_resampling(chosen))
        return out

    def _dtype_of(self, band: str) -> np.dtype:
        src = next((s for s in self.sources(band)), None)
        return np.dtype(np.uint8) if src is None else src.dtype

    def _dtype_and_fills(self, fill_value: float | None) -> tuple[np.dtype, list[Any]]:
        firsts = [next(iter(self.sources(b)), None) for b in self.bands]
        dtypes = [s.dtype for s in firsts if s is not None]
        dtype = np.result_type(*dtypes) if dtypes else np.dtype(np.uint8)
        fills = [fill_value_for(dtype, None if s is None else s.nodata, fill_value) for s in firsts]
        return dtype, fills

    def _no_data_message(self, grid: GridSpec) -> str:
        left, bottom, right, top = grid.bounds
        crss = sorted({s.crs_key[:40] for s in self.sources()})
        return (
            f"no record of the collection ({len(self.collection)} records, bands "
            f"{list(self.bands)}, CRSs {crss}) overlaps the window ({left:g}, {bottom:g}, "
            f"{right:g}, {top:g}) in {self.crs_key_of(grid)[:40]}; check bounds= and crs="
        )


def _fill_planes(
    data: np.ndarray, planes: list[tuple[int, int]], fills: Sequence[Any]
) -> list[tuple[int, int]]:
    """``fills`` in the ``(slot, band)`` planes of ``data`` that no single task writes (no
    task, or a mosaic's); returns the planes still unfilled (none)."""
    for slot, c in planes:
        data[slot, c] = fills[c]
    return []


def _paste_box(task: GridTask) -> tuple[int, int, int, int] | None:
    """The target rows / columns a copy task writes (``None``: a warp, anywhere)."""
    if task.paste is None:
        return None
    r, c = task.paste
    return r, c, r + task.window.height, c + task.window.width


def _mosaic_waves(tasks: Sequence[GridTask]) -> tuple[list[int], list[int]]:
    """Task indices in two waves. A mosaic merges first-valid-wins in task order, so a
    task can only add pixels an earlier task of its (slot, band) left without a value:
    the first wave holds every task no earlier task of its plane overlaps (a warp
    overlaps everything), the second the others — read only if their area is still
    missing values after the first (:func:`_covered`). The result is the same pixels;
    a record hidden under a complete one is never fetched."""
    first: list[int] = []
    later: list[int] = []
    boxes: dict[tuple[int, int], list[tuple[int, int, int, int] | None]] = {}
    for i, task in enumerate(tasks):
        box = _paste_box(task)
        earlier = boxes.setdefault((task.slot, task.band), [])
        hidden = any(
            b is None
            or box is None
            or (b[0] < box[2] and box[0] < b[2] and b[1] < box[3] and box[1] < b[3])
            for b in earlier
        )
        (later if hidden else first).append(i)
        earlier.append(box)
    return first, later


def _covered(task: GridTask, valid: np.ndarray) -> bool:
    """Whether every pixel ``task`` could write already holds a valid value."""
    plane = valid[task.slot, task.band]
    box = _paste_box(task)
    if box is not None:
        plane = plane[box[0] : box[2], box[1] : box[3]]
    return bool(plane.all())
