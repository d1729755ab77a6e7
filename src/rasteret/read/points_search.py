"""Tiles, pixel gathers and the nearest-valid-pixel search of ``sample_points``.

Everything here is vectorised over points; Python work is per tile or per chunk of
points, never per point or per pixel.

* :class:`BandTiles`: the decoded tiles of one record's band that a sample needs
  (tile index → pixels and internal mask), filled by :func:`fetch_tiles` — one
  concurrent batch through the store for every band of every record, each tile read
  once however many points or windows need it.
* :func:`gather`: values and validity of any pixels of the band from its tiles.
* :func:`window_tiles`: the tiles under the ``(2N+1)²`` windows of some points, cut to
  the raster (only those are read).
* :func:`search`: per point, the ``(2N+1)²`` window (row-major; outside the raster or
  not valid = missing) and the nearest valid pixel in it.

**The nearest valid pixel** of a point whose own pixel is not valid is chosen among
the valid pixels of the window centred on its own pixel, inside the raster:

1. smallest Chebyshev distance from the point's pixel, ``max(|drow|, |dcol|)``
   (the "ring", ``1..N``);
2. then smallest Euclidean distance, in the raster CRS's units, from the point to the
   candidate pixel's footprint (``0`` inside it): the pixel-space vector from the
   point to the nearest point of the footprint, mapped through the affine's linear part;
3. remaining exact ties (equal float64 distances) go to the first pixel in ring scan
   order: top row left to right, bottom row left to right, left column top to bottom,
   right column top to bottom.

This is upstream rasteret 0.4's rule (PostGIS ``ST_NearestValue``'s perimeter scan,
searching ring by ring). Note that rule 1 comes first: a ring-1 diagonal pixel
(up to ``√2`` pixels away) beats a ring-2 pixel straight across (from 1 pixel).
Valid = not nodata, not NaN and set in the band's internal mask when it has one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from rasteret.geo.window import Window
from rasteret.read.radiometry import valid_mask
from rasteret.read.stacks import BandSource, WindowRequest, read_windows

if TYPE_CHECKING:
    from rasteret.read.stacks import StoreIndex

#: Candidate pixels handled per chunk of points (points x window cells): bounds memory.
CHUNK_CELLS = 1 << 21


@dataclass(frozen=True)
class WindowOffsets:
    """The ``(2N+1)²`` cells of a window around a pixel, row-major.

    ``rows`` / ``cols`` are offsets from the centre, ``ring`` their Chebyshev distance,
    ``scan`` their rank in ring scan order within their ring (the tie-break).
    """

    radius: int
    rows: np.ndarray
    cols: np.ndarray
    ring: np.ndarray
    scan: np.ndarray

    @property
    def size(self) -> int:
        return int(self.rows.size)


@lru_cache(maxsize=16)
def window_offsets(radius: int) -> WindowOffsets:
    """The offsets of a window of ``radius`` pixels (see :class:`WindowOffsets`)."""
    axis = np.arange(-radius, radius + 1, dtype=np.int64)
    rows = np.repeat(axis, axis.size)
    cols = np.tile(axis, axis.size)
    ring = np.maximum(np.abs(rows), np.abs(cols))
    side = 2 * ring + 1
    scan = np.select(
        [ring == 0, rows == -ring, rows == ring, cols == -ring],
        [0, cols + ring, side + cols + ring, 2 * side + rows + ring - 1],
        default=2 * side + (side - 2) + rows + ring - 1,  # right column
    )
    for array in (rows, cols, ring, scan):
        array.flags.writeable = False
    return WindowOffsets(radius, rows, cols, ring, scan)


@dataclass
class BandTiles:
    """Decoded tiles of one record's band: tile index → (pixels, internal mask or None)."""

    source: BandSource
    tiles: dict[int, tuple[np.ndarray, np.ndarray | None]] = field(default_factory=dict)

    @property
    def tiles_across(self) -> int:
        return -(-self.source.width // self.source.block_shape[1])

    def tile_ids(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Tile index of each pixel ``(rows, cols)`` (row-major tile order)."""
        th, tw = self.source.block_shape
        return (rows // th) * self.tiles_across + cols // tw

    def tile_window(self, tile: int) -> Window:
        """Pixels of tile ``tile`` inside the raster."""
        src = self.source
        th, tw = src.block_shape
        ti, tj = divmod(int(tile), self.tiles_across)
        r0, c0 = ti * th, tj * tw
        return Window(r0, c0, min(th, src.height - r0), min(tw, src.width - c0))


def fetch_tiles(index: StoreIndex, wanted: Sequence[tuple[BandTiles, np.ndarray]]) -> int:
    """Read, in one concurrent batch, every tile of ``wanted`` (band, tile indices) that
    its band does not hold yet; return how many tiles were read."""
    requests: list[WindowRequest] = []
    slots: list[tuple[BandTiles, int, bool]] = []
    for band, tiles in wanted:
        src = band.source
        for tile in np.unique(tiles).tolist():
            if tile in band.tiles:
                continue
            window = band.tile_window(tile)
            requests.append(WindowRequest(src.path, src.t, window))
            if src.mask_array is not None:
                requests.append(WindowRequest(f"{src.group}/{src.mask_array}", src.t, window))
            slots.append((band, tile, src.mask_array is not None))
    arrays = read_windows(index, requests)
    k = 0
    for band, tile, has_mask in slots:
        band.tiles[tile] = (arrays[k], arrays[k + 1] if has_mask else None)
        k += 2 if has_mask else 1
    return len(slots)


def pixel_valid(values: np.ndarray, nodata: float | None, mask: np.ndarray | None) -> np.ndarray:
    """Valid pixels: not nodata, set in the internal mask, and never NaN."""
    valid = valid_mask(values, nodata, mask)
    if values.dtype.kind == "f":
        valid &= ~np.isnan(values)
    return valid


@dataclass(frozen=True)
class TileGroups:
    """Pixels grouped by tile: ``order`` sorts them by tile, group ``k`` is
    ``order[bounds[k]:bounds[k + 1]]`` and lies in tile ``tiles[k]``."""

    order: np.ndarray
    tiles: np.ndarray
    bounds: tuple[int, ...]

    @classmethod
    def of(cls, tile_ids: np.ndarray) -> TileGroups:
        """Group pixels by their tile indices ``tile_ids``."""
        order = np.argsort(tile_ids, kind="stable")
        ordered = tile_ids[order]
        starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]]) if order.size else []
        return cls(order, ordered[starts], (*np.asarray(starts).tolist(), int(order.size)))


def gather(
    band: BandTiles, rows: np.ndarray, cols: np.ndarray, groups: TileGroups | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Values (float64) and validity of pixels ``(rows, cols)``, all inside the raster,
    from tiles ``band`` holds (a missing tile raises ``KeyError``). ``groups``: the
    pixels' :class:`TileGroups` when already known (points shared by bands / dates)."""
    values = np.empty(rows.size, np.float64)
    valid = np.empty(rows.size, bool)
    if rows.size == 0:
        return values, valid
    th, tw = band.source.block_shape
    if groups is None:
        groups = TileGroups.of(band.tile_ids(rows, cols))
    nodata = band.source.nodata
    bounds = groups.bounds
    for k, tile in enumerate(groups.tiles.tolist()):
        idx = groups.order[bounds[k] : bounds[k + 1]]
        data, mask = band.tiles[tile]
        rr, cc = rows[idx] % th, cols[idx] % tw
        picked = data[rr, cc]
        values[idx] = picked
        valid[idx] = pixel_valid(picked, nodata, None if mask is None else mask[rr, cc])
    return values, valid


def window_tiles(band: BandTiles, rows: np.ndarray, cols: np.ndarray, radius: int) -> np.ndarray:
    """Indices of the tiles under the ``(2 radius + 1)²`` windows centred on the pixels
    ``(rows, cols)``, cut to the raster (unique, sorted)."""
    if rows.size == 0:
        return np.empty(0, np.int64)
    src = band.source
    th, tw = src.block_shape
    t_r0 = np.maximum(rows - radius, 0) // th
    t_r1 = np.minimum(rows + radius, src.height - 1) // th
    t_c0 = np.maximum(cols - radius, 0) // tw
    t_c1 = np.minimum(cols + radius, src.width - 1) // tw
    span_r = int((t_r1 - t_r0).max()) + 1
    span_c = int((t_c1 - t_c0).max()) + 1
    ids = []
    for i in range(span_r):  # a window spans a few tiles: loops over tiles, not points
        for j in range(span_c):
            keep = (t_r0 + i <= t_r1) & (t_c0 + j <= t_c1)
            ids.append((t_r0[keep] + i) * band.tiles_across + t_c0[keep] + j)
    return np.unique(np.concatenate(ids))


@dataclass(frozen=True)
class SearchResult:
    """Per point: the pixel used and its distance; and the windows when asked for.

    ``row`` / ``col``: the pixel whose value is used (the point's own pixel when no
    valid pixel lies in the window); ``ring``: its Chebyshev distance, ``-1`` when none
    was found; ``distance``: point-to-footprint distance in CRS units, NaN when none.
    ``windows``: ``(points, (2N+1)²)`` float64, NaN where missing (only when asked).
    """

    row: np.ndarray
    col: np.ndarray
    value: np.ndarray
    valid: np.ndarray
    ring: np.ndarray
    distance: np.ndarray
    windows: np.ndarray | None


def search(
    band: BandTiles,
    rows: np.ndarray,
    cols: np.ndarray,
    frac_rows: np.ndarray,
    frac_cols: np.ndarray,
    radius: int,
    *,
    with_windows: bool,
) -> SearchResult:
    """The ``radius`` windows around the pixels ``(rows, cols)`` (fractional position of
    each point: ``(frac_rows, frac_cols)``) and the nearest valid pixel in each.

    The tiles under the windows must be in ``band`` (see :func:`window_tiles`).
    """
    offsets = window_offsets(radius)
    n = rows.size
    out_row, out_col = rows.copy(), cols.copy()
    value = np.full(n, np.nan)
    valid = np.zeros(n, bool)
    ring = np.full(n, -1, np.int64)
    distance = np.full(n, np.nan)
    windows = np.full((n, offsets.size), np.nan) if with_windows else None
    step = max(1, CHUNK_CELLS // offsets.size)
    for lo in range(0, n, step):
        part = slice(lo, min(n, lo + step))
        cand_r = rows[part, None] + offsets.rows
        cand_c = cols[part, None] + offsets.cols
        src = band.source
        inside = (cand_r >= 0) & (cand_c >= 0) & (cand_r < src.height) & (cand_c < src.width)
        cell_values = np.full(cand_r.shape, np.nan)
        cell_valid = np.zeros(cand_r.shape, bool)
        cell_values[inside], cell_valid[inside] = gather(band, cand_r[inside], cand_c[inside])
        if windows is not None:
            windows[part] = np.where(cell_valid, cell_values, np.nan)
        best, dist = _nearest(
            cell_valid, cand_r, cand_c, frac_rows[part], frac_cols[part], offsets, src.transform
        )
        found = best >= 0
        pick = np.arange(best.size)[found], best[found]
        idx = np.arange(part.start, part.stop)[found]
        out_row[idx], out_col[idx] = cand_r[pick], cand_c[pick]
        value[idx], valid[idx] = cell_values[pick], True
        ring[idx], distance[idx] = offsets.ring[best[found]], dist[found]
        missing = np.arange(part.start, part.stop)[~found]
        centre = offsets.size // 2  # nothing valid: the point's own pixel, as without search
        value[missing] = cell_values[~found, centre]
    return SearchResult(out_row, out_col, value, valid, ring, distance, windows)


def _nearest(
    cell_valid: np.ndarray,
    cand_r: np.ndarray,
    cand_c: np.ndarray,
    frac_rows: np.ndarray,
    frac_cols: np.ndarray,
    offsets: WindowOffsets,
    transform: Sequence[float],
) -> tuple[np.ndarray, np.ndarray]:
    """Per row: the window cell chosen by the module's rule (``-1``: no valid cell) and
    its distance in CRS units."""
    big = np.iinfo(np.int64).max
    rings = np.where(cell_valid, offsets.ring, big)
    best_ring = rings.min(axis=1, initial=big)
    candidate = rings == best_ring[:, None]
    candidate &= cell_valid
    a, b, _c, d, e, _f = (float(v) for v in transform)
    # pixel-space vector from the point to the nearest point of each candidate footprint
    delta_r = np.clip(frac_rows[:, None], cand_r, cand_r + 1) - frac_rows[:, None]
    delta_c = np.clip(frac_cols[:, None], cand_c, cand_c + 1) - frac_cols[:, None]
    dx = a * delta_c + b * delta_r
    dy = d * delta_c + e * delta_r
    dist2 = np.where(candidate, dx * dx + dy * dy, np.inf)
    best_dist2 = dist2.min(axis=1, initial=np.inf)
    tied = candidate & (dist2 == best_dist2[:, None])
    scan = np.where(tied, offsets.scan, big)
    best = np.argmin(scan, axis=1)
    found = best_ring < big
    best = np.where(found, best, -1)
    return best, np.sqrt(np.where(found, best_dist2, np.nan))
