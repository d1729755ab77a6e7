"""Layout: records of a Collection → stacks → Zarr arrays and groups.

One *group* per grid (CRS + affine transform + size): the full-resolution images of
every record on that grid, with a ``time`` axis of those records (sorted by datetime,
then id; equal timestamps are kept side by side, never merged). Overview level ``i``
of a grid is a group of its own, ``{grid}_overview_{i}`` (``i`` counts from 0 as in
GDAL / rasterio ``overview_level``); overview groups are siblings of their grid, not
children, because xarray's DataTree requires a child's ``x``/``y`` to align with its
parent's.

Inside a group, one *array* per stack: records of one band whose blocks decode the
same way (dtype, block size, compression, predictor, byte order, samples, JPEG tables
present, sample index) and that share nodata / scale / offset. The Zarr codec sees no
chunk coordinates (DESIGN decision 2), so records of one band with different codec
settings go to *separate stacks* of the same group: the first stack (in time order)
is named after the band, the others ``{band}__2``, ``{band}__3``... (internal names:
the Zarr view and the xarray engine merge a band's stacks into one array / variable,
:mod:`rasteret.store.bands`). A record without a stack's band has no chunks in it. The internal
mask of a band is the array ``{band}_mask`` (uint8 as decoded).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

import numpy as np
import pyarrow as pa

from rasteret._types import Affine6
from rasteret.errors import BandNotFoundError, CollectionSchemaError
from rasteret.index.columns import asset_hrefs, record_order
from rasteret.index.level_columns import BandLevelColumns, Slot, band_level_columns
from rasteret.index.levels import BandLevel, BandLevels, band_levels
from rasteret.index.schema import bands_of, metadata_column
from rasteret.store.sources import RowsLike, SourceList, TileSource

ArrayKind = Literal["data", "mask"]
RESERVED_NAMES = frozenset({"x", "y", "time", "id", "spatial_ref", "zarr.json", "c"})


@dataclass(frozen=True, slots=True)
class Grid:
    """A raster grid: CRS, affine of pixel corners, size in pixels."""

    crs_wkt: str | None
    epsg: int | None
    transform: Affine6 | None
    width: int
    height: int

    @property
    def key(self) -> tuple[Any, ...]:
        crs = self.epsg if self.epsg is not None else self.crs_wkt
        transform = None if self.transform is None else tuple(round(v, 9) for v in self.transform)
        return (crs, transform, self.width, self.height)


@dataclass(eq=False)
class ArrayLayout:
    """One Zarr array ``(time, y, x)``: one chunk per block of one record."""

    name: str
    band: str
    kind: ArrayKind
    dtype: str
    block_shape: tuple[int, int]  # (block_height, block_width)
    tiles_down: int
    tiles_across: int
    codec: dict[str, Any]  # the rasteret.tiff codec configuration
    nodata: float | None
    scale: float | None
    offset: float | None
    #: One source per time step (built on first use).
    sources: SourceList = field(default_factory=lambda: SourceList(np.empty(0, np.int64), {}))
    shape: tuple[int, int, int] = (0, 0, 0)

    @property
    def chunk_shape(self) -> tuple[int, int, int]:
        return (1, *self.block_shape)

    @property
    def present(self) -> np.ndarray:
        """Whether each time step has data in this array (no source is built)."""
        return self.sources.present

    @property
    def records(self) -> int:
        """Time steps that have data in this array."""
        return int(self.present.sum())


@dataclass(eq=False)
class GroupLayout:
    """One Zarr group: one grid (full resolution or one overview level) and its arrays."""

    name: str
    grid: Grid
    overview: int | None  # None for full resolution, else the 0-based overview level
    parent: str | None  # the full-resolution group of an overview group
    rows: np.ndarray  # table row of each time step (int64)
    times: np.ndarray  # datetime64[us] of each time step (sorted)
    ids: list[str]
    arrays: dict[str, ArrayLayout] = field(default_factory=dict)


@dataclass(eq=False)
class StoreLayout:
    """Every group of a store, in a deterministic order."""

    groups: dict[str, GroupLayout]
    bands: tuple[str, ...]

    def array(self, path: str) -> ArrayLayout | None:
        group, _, name = path.rpartition("/")
        node = self.groups.get(group)
        return None if node is None else node.arrays.get(name)

    @property
    def grid_groups(self) -> list[str]:
        """Names of the full-resolution groups."""
        return [name for name, g in self.groups.items() if g.overview is None]


def build_layout(table: pa.Table, bands: Sequence[str] | None = None) -> StoreLayout:
    """Group the records of ``table`` (a collection table) into Zarr groups and arrays.

    Raises :class:`BandNotFoundError` for an unknown band and
    :class:`CollectionSchemaError` for a malformed table.
    """
    available = bands_of(table.schema)
    selected = tuple(available if bands is None else bands)
    for band in selected:
        if band not in available:
            raise BandNotFoundError(
                f"band {band!r} is not in the collection (bands: {', '.join(available) or 'none'})"
            )
    order, times, ids = record_order(table)
    builder = _Builder(order, times, ids)
    for band in selected:
        hrefs = asset_hrefs(table, band)
        column = table[metadata_column(band)]
        if not _add_band_by_signature(builder, band, column, hrefs, order):
            _add_band_by_row(builder, band, column, hrefs, order)
    return StoreLayout(groups=builder.finish(), bands=selected)


def _add_band_by_row(
    builder: _Builder,
    band: str,
    column: pa.ChunkedArray,
    hrefs: list[str | None],
    order: np.ndarray,
) -> None:
    """Add one band record by record (one :class:`BandLevels` per row)."""
    try:
        levels = band_levels(column)
    except ValueError as exc:
        raise CollectionSchemaError(f"band {band!r}: {exc}") from exc
    for row in order:
        band_levels_row = levels[row]
        if band_levels_row is None:
            continue
        href = hrefs[row]
        if not href:
            _raise_no_href(builder, int(row), band)
        builder.add(int(row), band, href, band_levels_row)


def _add_band_by_signature(
    builder: _Builder,
    band: str,
    column: pa.ChunkedArray,
    hrefs: list[str | None],
    order: np.ndarray,
) -> bool:
    """Add one band from whole columns: one :class:`BandLevels` per structure signature.

    Rows sharing a signature land in the same groups and arrays as the first of them
    (in time order), so only that row goes through :meth:`_Builder.add`; the others
    get their sources from zero-copy slices of the column's block tables. Returns
    ``False`` (nothing added) when the column needs the row-by-row path, which also
    raises the row-by-row path's errors.
    """
    columns = band_level_columns(column)
    if columns is None:
        return False
    rows = order[columns.valid[order]]
    signature = columns.signature[rows]
    _, first, counts = np.unique(signature, return_index=True, return_counts=True)
    try:
        levels = [BandLevels.from_struct(column[int(rows[p])]) for p in first.tolist()]
    except Exception:
        return False  # an invalid row: the row-by-row path names the first one
    missing = [p for p, row in enumerate(rows.tolist()) if not hrefs[row]]
    no_href = missing[0] if missing else len(rows)
    members = np.split(rows[np.argsort(signature, kind="stable")], np.cumsum(counts)[:-1])
    for k in np.argsort(first).tolist():  # signatures in order of first appearance
        p = int(first[k])
        if no_href <= p:
            break
        row = int(rows[p])
        targets = builder.add(row, band, hrefs[row], levels[k])  # type: ignore[arg-type]
        others = members[k].tolist()[1:]  # stable sort: the first member is ``row``
        if others:
            builder.add_like(targets, others, band, hrefs, columns)
    if no_href < len(rows):
        _raise_no_href(builder, int(rows[no_href]), band)
    return True


def _raise_no_href(builder: _Builder, row: int, band: str) -> None:
    raise CollectionSchemaError(
        f"record {builder.ids[row]!r}: band {band!r} has metadata but no asset href"
    )


# ----------------------------------------------------------------------------- builder


class _Builder:
    """Accumulates (group, array) stacks record by record, in time order."""

    def __init__(self, order: np.ndarray, times: np.ndarray, ids: list[str]) -> None:
        self.times = times
        self.ids = ids
        self.rank = np.empty(len(order), dtype=np.int64)
        self.rank[order] = np.arange(len(order))
        self.groups: dict[tuple[Any, ...], _GroupAcc] = {}
        self.codecs: dict[tuple[Any, ...], tuple[dict[str, Any], tuple[int, int], str]] = {}

    def add(self, row: int, band: str, href: str, levels: BandLevels) -> list[_Target]:
        """Add one record's band; returns where each of its levels went."""
        full = levels.full
        grid = Grid(levels.crs_wkt, levels.epsg, full.transform, full.width, full.height)
        parent = self._group(grid, None, None)
        targets = [self._add_level(parent, row, band, href, levels, full, "data", ("full", 0))]
        if levels.mask is not None and levels.mask.shape == full.shape:
            targets.append(
                self._add_level(parent, row, band, href, levels, levels.mask, "mask", ("mask", 0))
            )
        for i, overview in enumerate(levels.overviews):
            ogrid = Grid(
                levels.crs_wkt, levels.epsg, overview.transform, overview.width, overview.height
            )
            group = self._group(ogrid, i, parent)
            targets.append(
                self._add_level(group, row, band, href, levels, overview, "data", ("overview", i))
            )
            mask = levels.mask_for(overview)
            if mask is not None and levels.mask is not None and mask is not levels.mask:
                slot = ("mask", next(j for j, m in enumerate(levels.mask_levels) if m is mask))
                targets.append(self._add_level(group, row, band, href, levels, mask, "mask", slot))
        return targets

    def add_like(
        self,
        targets: list[_Target],
        rows: list[int],
        band: str,
        hrefs: list[str | None],
        columns: BandLevelColumns,
    ) -> None:
        """Add ``rows`` of ``band`` where ``targets`` (another row's :meth:`add`) went.

        The rows must share that row's structure signature, so only their block
        tables, JPEG tables and object identity differ: their sources are built from
        ``columns`` when first used (:class:`~rasteret.store.sources.SourceList`).
        """
        members = np.asarray(rows, dtype=np.int64)
        for group, stack, slot, level in targets:
            jpeg = level.compression in (7, 34892)
            like = RowsLike(band, slot, jpeg, hrefs, self.ids, columns)
            stack.like.append((like, members))
            group.rows.update(rows)

    def _group(self, grid: Grid, overview: int | None, parent: _GroupAcc | None) -> _GroupAcc:
        key = (grid.key, overview, None if parent is None else parent.grid.key)
        acc = self.groups.get(key)
        if acc is None:
            acc = self.groups[key] = _GroupAcc(grid, overview, parent)
        return acc

    def _add_level(
        self,
        group: _GroupAcc,
        row: int,
        band: str,
        href: str,
        levels: BandLevels,
        level: BandLevel,
        kind: ArrayKind,
        slot: Slot,
    ) -> _Target:
        codec, block_shape, codec_key = self._codec(levels, level)
        dtype = codec["dtype"]
        if kind == "data":
            nodata, scale, offset = levels.nodata, levels.scale, levels.offset
        else:
            nodata = scale = offset = None
        key = (band, kind, codec_key, _nan_key(nodata), scale, offset)
        stack = group.stacks.get(key)
        if stack is None:
            stack = _Stack(
                ArrayLayout(
                    name="",
                    band=band,
                    kind=kind,
                    dtype=dtype,
                    block_shape=block_shape,
                    tiles_down=level.tiles_down,
                    tiles_across=level.tiles_across,
                    codec=codec,
                    nodata=nodata,
                    scale=scale,
                    offset=offset,
                )
            )
            group.stacks[key] = stack
        tables = level.jpeg_tables if level.compression in (7, 34892) else None
        stack.sources[row] = TileSource(
            href,
            level.offsets,
            level.byte_counts,
            tables or None,
            levels.file_size,
            levels.etag,
            levels.last_modified,
            origin=f"record {self.ids[row]!r}, band {band!r}",
        )
        group.rows.add(row)
        return (group, stack, slot, level)

    def _codec(
        self, levels: BandLevels, level: BandLevel
    ) -> tuple[dict[str, Any], tuple[int, int], str]:
        """:func:`codec_configuration`, memoised on everything it depends on."""
        key = (
            level.kind,
            level.width,
            level.height,
            level.tile_width,
            level.tile_height,
            level.tiled,
            level.compression,
            level.predictor,
            level.bits_per_sample,
            bool(level.jpeg_tables),
            levels.dtype,
            levels.samples_per_pixel,
            levels.planar_configuration,
            levels.photometric,
            levels.bits_per_sample,
            levels.sample_format,
            levels.byte_order,
            levels.extra_samples,
            levels.lerc_parameters,
            levels.ycbcr_subsampling,
            levels.band_index,
        )
        found = self.codecs.get(key)
        if found is None:
            codec, block_shape = codec_configuration(levels, level)
            found = (codec, block_shape, json.dumps(codec, sort_keys=True))
            self.codecs[key] = found
        return found

    def finish(self) -> dict[str, GroupLayout]:
        grids = sorted(
            (acc for acc in self.groups.values() if acc.overview is None), key=_grid_sort_key
        )
        names: dict[int, str] = {}
        used: set[str] = set()
        for acc in grids:
            names[id(acc)] = _unique(grid_label(acc.grid), used)
        result: dict[str, GroupLayout] = {}
        for acc in grids:
            result[names[id(acc)]] = self._group_layout(acc, names[id(acc)], None)
            overviews = sorted(
                (o for o in self.groups.values() if o.parent is acc),
                key=lambda o: (o.overview, -o.grid.width, -o.grid.height),
            )
            for ovr in overviews:
                name = _unique(f"{names[id(acc)]}_overview_{ovr.overview}", used)
                result[name] = self._group_layout(ovr, name, names[id(acc)])
        return result

    def _group_layout(self, acc: _GroupAcc, name: str, parent: str | None) -> GroupLayout:
        rows = np.array(sorted(acc.rows), dtype=np.int64)
        rows = rows[np.argsort(self.rank[rows], kind="stable")]
        group = GroupLayout(
            name=name,
            grid=acc.grid,
            overview=acc.overview,
            parent=parent,
            rows=rows,
            times=self.times[rows],
            ids=[self.ids[r] for r in rows],
        )
        position = np.full(len(self.rank), -1, np.int64)  # table row -> time step
        position[rows] = np.arange(len(rows))
        per_band: dict[tuple[str, str], int] = {}
        for stack in acc.stacks.values():  # insertion order = time order of first record
            array = stack.array
            seen = per_band.get((array.band, array.kind), 0) + 1
            per_band[(array.band, array.kind)] = seen
            array.name = _array_name(array.band, array.kind, seen)
            array.sources = stack.source_list(rows, position)
            array.shape = (len(rows), acc.grid.height, acc.grid.width)
            if array.name in group.arrays:
                raise CollectionSchemaError(
                    f"group {name!r}: two arrays would be named {array.name!r} "
                    "(rename one of the bands)"
                )
            group.arrays[array.name] = array
        return group


@dataclass(eq=False)
class _Stack:
    array: ArrayLayout
    sources: dict[int, TileSource] = field(default_factory=dict)  # built, by table row
    like: list[tuple[RowsLike, np.ndarray]] = field(default_factory=list)  # built on use

    def source_list(self, rows: np.ndarray, position: np.ndarray) -> SourceList:
        """The sources of time steps ``rows`` (table rows in time order); ``position``
        maps a table row to its time step."""
        owner = np.full(len(rows), -1, np.int32)
        for k, (_, members) in enumerate(self.like):
            owner[position[members]] = k
        return SourceList(rows, self.sources, [like for like, _ in self.like], owner)


_Target = tuple["_GroupAcc", "_Stack", Slot, BandLevel]  # where one level of a record went


@dataclass(eq=False)
class _GroupAcc:
    grid: Grid
    overview: int | None
    parent: _GroupAcc | None
    stacks: dict[tuple[Any, ...], _Stack] = field(default_factory=dict)
    rows: set[int] = field(default_factory=set)


# ----------------------------------------------------------------------------- helpers


def codec_configuration(
    levels: BandLevels, level: BandLevel
) -> tuple[dict[str, Any], tuple[int, int]]:
    """The ``rasteret.tiff`` codec configuration of ``level`` and its block shape.

    JPEG tables are left out (the store splices them into every tile, so tiles are
    self-contained); ``jpeg_tables_present`` records that they exist. A strip taller
    than the image (``RowsPerStrip = 2**32 - 1``) is clamped to the image by
    :meth:`BlockDecoding.from_layout`. When the image height is not a multiple of the
    tile height, ``min_rows`` (the rows of the last tile row inside the image) lets the
    codec accept edge tiles that a non-COG writer stored short (the codec sees no chunk
    coordinates, so this bound applies to every tile of the array).
    """
    from rasteret.tiff.decode import BlockDecoding

    decoding = BlockDecoding.from_layout(levels.layout(level), levels.byte_order)
    config = dict(decoding.to_dict())
    config["jpeg_tables"] = None
    config["jpeg_tables_present"] = bool(level.jpeg_tables)
    config["sample"] = 0 if level.kind == "mask" else _sample_in_block(levels)
    last_rows = level.height - (level.tiles_down - 1) * decoding.block_height
    if decoding.tiled and last_rows < decoding.block_height:
        config["min_rows"] = last_rows
    return config, (decoding.block_height, decoding.block_width)


def _sample_in_block(levels: BandLevels) -> int:
    if levels.planar_configuration == 2:
        return 0
    return levels.band_index


def _array_name(band: str, kind: ArrayKind, variant: int) -> str:
    base = band if band not in RESERVED_NAMES else f"{band}_band"
    if kind == "mask":
        base = f"{band}_mask"
    return base if variant == 1 else f"{base}__{variant}"


def _nan_key(value: float | None) -> Any:
    if value is not None and value != value:
        return "nan"
    return value


def _unique(name: str, used: set[str]) -> str:
    candidate, n = name, 1
    while candidate in used:
        n += 1
        candidate = f"{name}_{n}"
    used.add(candidate)
    return candidate


def _grid_sort_key(acc: _GroupAcc) -> tuple[Any, ...]:
    grid = acc.grid
    transform = grid.transform or (0.0,) * 6
    return (grid_label(grid), transform[2], -transform[5], grid.width, grid.height)


def grid_label(grid: Grid) -> str:
    """A readable, deterministic group name: CRS and resolution, e.g. ``epsg32633_10m``."""
    if grid.epsg is not None:
        crs = f"epsg{grid.epsg}"
    elif grid.crs_wkt:
        crs = "crs" + hashlib.sha1(grid.crs_wkt.encode()).hexdigest()[:8]
    else:
        crs = "nocrs"
    if grid.transform is None:
        return f"{crs}_{grid.width}x{grid.height}px"
    a, b, _, d, e, _ = grid.transform
    xres, yres = math.hypot(a, d), math.hypot(b, e)
    unit = _crs_unit(grid.epsg, grid.crs_wkt)
    same = abs(xres - yres) <= 1e-8 + 1e-9 * abs(yres)  # numpy.isclose(rtol=1e-9), scalar
    res = f"{xres:.6g}" if same else f"{xres:.6g}x{yres:.6g}"
    return f"{crs}_{res}{unit}"


#: Axis units of common EPSG codes, as PROJ's database defines them (checked against
#: pyproj in the tests): no CRS is built for them — a fresh DataLoader worker would
#: otherwise open PROJ's database only to name a group. Ranges are inclusive.
_KNOWN_UNITS: tuple[tuple[int, int, str], ...] = (
    (4326, 4326, "deg"),  # WGS 84
    (4258, 4258, "deg"),  # ETRS89
    (4269, 4269, "deg"),  # NAD83
    (3857, 3857, "m"),  # WGS 84 / Pseudo-Mercator
    (3035, 3035, "m"),  # ETRS89-extended / LAEA Europe
    (25828, 25838, "m"),  # ETRS89 / UTM zones 28N-38N
    (26901, 26923, "m"),  # NAD83 / UTM zones 1N-23N
    (32601, 32660, "m"),  # WGS 84 / UTM zones 1N-60N
    (32701, 32760, "m"),  # WGS 84 / UTM zones 1S-60S
)


def _known_unit(epsg: int) -> str | None:
    for first, last, unit in _KNOWN_UNITS:
        if first <= epsg <= last:
            return unit
    return None


@lru_cache(maxsize=256)
def _crs_unit(epsg: int | None, crs_wkt: str | None) -> str:
    if epsg is None and not crs_wkt:
        return "px"
    known = _known_unit(epsg) if epsg is not None else None
    if known is not None:
        return known
    try:
        from pyproj import CRS

        crs = CRS.from_epsg(epsg) if epsg is not None else CRS.from_wkt(crs_wkt)
        unit = crs.axis_info[0].unit_name if crs.axis_info else ""
    except Exception:
        return ""
    return {"metre": "m", "degree": "deg", "US survey foot": "ftUS", "foot": "ft"}.get(unit, "")
