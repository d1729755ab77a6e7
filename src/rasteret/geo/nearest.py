"""Nearest-neighbour maps of a target window into a source crop, computed once per
(source grid, target window) and shared by every band warped with them.

:func:`nearest_index` maps each target pixel centre to the source pixel holding it
(GDAL's approximate transformer, :mod:`rasteret.geo.coords`); when both grids share a
CRS and neither is rotated the map is separable (:func:`separable_nearest_index`: one
row and one column of coordinates), and when it is a plain shift it is an
:class:`OffsetBlock` — a block copy instead of a gather. :func:`offset_block` answers
that last question alone, without per-pixel arrays (what a read onto its native
lattice asks). The gathers through these maps are in :mod:`rasteret.geo.warp`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rasteret.geo.grid import GridSpec
from rasteret.geo.resampling import centre_pixel
from rasteret.geo.transform import crs_equal
from rasteret.geo.window import Window


@dataclass(frozen=True)
class NearestIndex:
    """The nearest-neighbour map of a target window into a source crop, computed once
    and shared by every band warped with it (:func:`nearest_index`): the flat index of
    each target pixel's source pixel in a ``(height, width)`` crop and whether the
    centre falls inside it; ``sx`` / ``sy`` (relative to the crop) for other kernels.
    ``block`` is set when the map is a plain offset (:class:`OffsetBlock`)."""

    index: np.ndarray
    inside: np.ndarray
    sx: np.ndarray
    sy: np.ndarray
    crop_shape: tuple[int, int]
    block: OffsetBlock | None = None


@dataclass(frozen=True)
class OffsetBlock:
    """A nearest map that is a plain offset: the target pixels ``[rows, cols]`` take the
    crop's pixels ``[src_rows, src_cols]`` one for one (same CRS and pixel size, shifted
    by less than half a pixel or a whole number of pixels); every other target pixel
    falls outside the crop. A copy of a block instead of a gather per pixel."""

    rows: slice
    cols: slice
    src_rows: slice
    src_cols: slice

    @property
    def shape(self) -> tuple[int, int]:
        """``(height, width)`` of the copied block."""
        return self.rows.stop - self.rows.start, self.cols.stop - self.cols.start


def nearest_index(
    source: GridSpec,
    target: GridSpec,
    window: Window,
    crop: Window,
    error_threshold: float | None = None,
) -> NearestIndex:
    """The :class:`NearestIndex` of ``window`` (target pixels) into ``crop`` (source
    pixels); ``error_threshold`` of the approximate transformer (default
    :data:`rasteret.geo.coords.ERROR_THRESHOLD`, GDAL's)."""
    from rasteret.geo.coords import ERROR_THRESHOLD, source_coordinates

    separable = separable_nearest_index(source, target, window, crop)
    if separable is not None:
        return separable
    threshold = ERROR_THRESHOLD if error_threshold is None else error_threshold
    sx, sy = source_coordinates(source, target, window, error_threshold=threshold)
    sx, sy = sx - crop.col_off, sy - crop.row_off
    iy, ix, inside = centre_pixel(sx, sy, crop.height, crop.width)
    return NearestIndex(iy * crop.width + ix, inside, sx, sy, (crop.height, crop.width))


#: Target rows mapped per step of :func:`nearest_flat_index`: its temporaries stay
#: small (reused, not first-touched memory) whatever the size of the target.
INDEX_ROWS = 64


def nearest_flat_index(
    source: GridSpec, target: GridSpec, window: Window, crop: Window
) -> tuple[np.ndarray, np.ndarray]:
    """``(index, inside)`` of :func:`nearest_index` (same values) without the source
    coordinates, mapped :data:`INDEX_ROWS` target rows at a time (GDAL's approximate
    transformer works row by row, so the rows come out the same)."""
    from rasteret.geo.coords import source_coordinates

    index = np.empty(window.shape, dtype=np.intp)
    inside = np.empty(window.shape, dtype=bool)
    for r0 in range(0, window.height, INDEX_ROWS):
        rows = Window(
            window.row_off + r0, window.col_off, min(INDEX_ROWS, window.height - r0), window.width
        )
        sx, sy = source_coordinates(source, target, rows)
        sx -= crop.col_off
        sy -= crop.row_off
        iy, ix, ok = centre_pixel(sx, sy, crop.height, crop.width)
        part = index[r0 : r0 + rows.height]
        np.multiply(iy, crop.width, out=part)
        part += ix
        inside[r0 : r0 + rows.height] = ok
    return index, inside


def separable_nearest_index(
    source: GridSpec, target: GridSpec, window: Window, crop: Window
) -> NearestIndex | None:
    """:func:`nearest_index` from one row and one column of coordinates, when ``source``
    and ``target`` share a CRS and neither grid is rotated: each source column then
    depends on the target column only (and rows on rows), so the map is an outer
    combination of two 1-D maps — the same index, computed with the same floating-point
    operations per axis, instead of a transform per pixel. ``None`` otherwise."""
    axes = _separable_axes(source, target, window, crop)
    if axes is None:
        return None
    (iy, inside_y, sy), (ix, inside_x, sx) = axes
    inside = inside_y[:, None] & inside_x[None, :]
    index = np.where(inside, iy[:, None] * crop.width + ix[None, :], 0)
    shape = (window.height, window.width)
    return NearestIndex(
        index,
        inside,
        np.broadcast_to(sx[None, :], shape),
        np.broadcast_to(sy[:, None], shape),
        (crop.height, crop.width),
        _offset_block(axes),
    )


def offset_block(
    source: GridSpec, target: GridSpec, window: Window, crop: Window
) -> OffsetBlock | None:
    """The :class:`OffsetBlock` of :func:`separable_nearest_index` (``None`` when the
    map is no plain offset) from the two 1-D maps alone: no per-pixel arrays."""
    axes = _separable_axes(source, target, window, crop)
    return None if axes is None else _offset_block(axes)


_Axis = tuple[np.ndarray, np.ndarray, np.ndarray]  # source index, inside, source position


def _separable_axes(
    source: GridSpec, target: GridSpec, window: Window, crop: Window
) -> tuple[_Axis, _Axis] | None:
    """The nearest map's row and column axes (``(index, inside, position)`` each) when
    it is separable (one CRS, no rotation); ``None`` otherwise."""
    if any((target.transform[1], target.transform[3], source.transform[1], source.transform[3])):
        return None
    if not crs_equal(source.crs, target.crs):
        return None
    cols = window.col_off + np.arange(window.width) + 0.5
    rows = window.row_off + np.arange(window.height) + 0.5
    # the affine path of map_positions, one axis at a time (the other axis's term is 0)
    x, _ = target.pixel_to_xy(cols, np.zeros_like(cols))
    _, y = target.pixel_to_xy(np.zeros_like(rows), rows)
    sx, _ = source.xy_to_pixel(x, np.zeros_like(x))
    _, sy = source.xy_to_pixel(np.zeros_like(y), y)
    sx, sy = sx - crop.col_off, sy - crop.row_off
    _, ix, inside_x = centre_pixel(sx, np.zeros_like(sx), 1, crop.width)
    iy, _, inside_y = centre_pixel(np.zeros_like(sy), sy, crop.height, 1)
    return (iy, inside_y, sy), (ix, inside_x, sx)


def _offset_block(axes: tuple[_Axis, _Axis]) -> OffsetBlock | None:
    (iy, inside_y, _), (ix, inside_x, _) = axes
    rows, cols = _consecutive_run(iy, inside_y), _consecutive_run(ix, inside_x)
    if rows is None or cols is None:
        return None
    return OffsetBlock(rows[0], cols[0], rows[1], cols[1])


def _consecutive_run(index: np.ndarray, inside: np.ndarray) -> tuple[slice, slice] | None:
    """``(target slice, source slice)`` when the inside positions of a 1-D nearest map
    are one run of target positions taking consecutive source positions; else ``None``."""
    where = np.flatnonzero(inside)
    if where.size == 0 or where[-1] - where[0] + 1 != where.size:
        return None
    taken = index[where[0] : where[-1] + 1]
    first = int(taken[0])
    if not np.array_equal(taken, np.arange(first, first + taken.size)):
        return None
    return slice(int(where[0]), int(where[-1]) + 1), slice(first, first + taken.size)


__all__ = [
    "INDEX_ROWS",
    "NearestIndex",
    "OffsetBlock",
    "nearest_flat_index",
    "nearest_index",
    "offset_block",
    "separable_nearest_index",
]
