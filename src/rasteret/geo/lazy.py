"""The dask front end of the warp kernels of :mod:`rasteret.geo.warp`:
``warp(source, target) -> DataArray`` (exported as ``rasteret.geo.warp``).

The dask graph holds one coordinate task and one warp task per target chunk (per chunk
of the leading axes); a warp task depends only on the source chunks its footprint
(plus the kernel radius) touches, so a target chunk over empty source reads nothing.

A source that is neither dask nor numpy but a *lazy array* (``shape``, ``dtype`` and
basic ``[lead..., rows, cols]`` slicing, e.g. the xarray engine's tile arrays) is not
chunked at all: each warp task slices exactly the source window its footprint needs,
one leading index at a time, so a read fetches only the tiles under the target (target
chunks default to the whole target up to :data:`SLICED_CHUNK` pixels a side).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import xarray as xr

from rasteret.geo.coords import (
    ERROR_THRESHOLD,
    corner_coordinates,
    kernel_scale,
    source_coordinates,
    source_window,
)
from rasteret.geo.grid import GridSpec
from rasteret.geo.nearest import nearest_index
from rasteret.geo.resampling import AREA_KERNELS, check_resampling
from rasteret.geo.transform import crs_key
from rasteret.geo.warp import (
    DEFAULT_CHUNK,
    output_nodata,
    valid_mask,
    warp_array,
)
from rasteret.geo.window import Window


def warp(
    source: Any,
    target: GridSpec,
    *,
    source_grid: GridSpec | None = None,
    resampling: str | None = None,
    src_nodata: float | None = None,
    nodata: float | None = None,
    dtype: Any = None,
    chunks: int | tuple[int, int] | None = None,
    error_threshold: float = ERROR_THRESHOLD,
    dims: Sequence[str] | None = None,
) -> xr.DataArray:
    """Reproject / resample ``source`` onto ``target`` lazily (dask), without GDAL.

    ``source`` is an ``xr.DataArray`` whose last two dims are ``(y, x)`` (its grid from
    ``x``/``y`` coords and ``spatial_ref``, or ``source_grid``), or a dask / numpy array
    ``(..., H, W)`` with ``source_grid``. Leading dims (``time``, ``band``) and their
    coordinates are kept; their chunks too. ``resampling`` is one of ``nearest``
    (default), ``bilinear``, ``cubic``, ``average``, ``mode``, ``min``, ``max``,
    ``median``. ``src_nodata`` defaults to the DataArray's ``_FillValue`` / ``nodata``
    attribute; ``nodata`` (the output fill) to ``src_nodata``, else NaN for floats and 0
    for integers. ``dtype`` defaults to the source dtype. ``chunks`` sets the target
    chunk (rows, cols), default 1024 x 1024.

    Returns a DataArray ``(..., y, x)`` on ``target`` with ``spatial_ref``,
    ``nodata`` and ``resampling`` attributes (no CF ``_FillValue`` in ``attrs``: xarray
    keeps attrs through arithmetic, and a derived result written out would be masked).
    """
    import dask.array as da
    from dask.highlevelgraph import HighLevelGraph

    resampling = check_resampling(resampling or "nearest")
    if not isinstance(target, GridSpec):
        raise TypeError(f"target must be a GridSpec, not {type(target).__name__}")
    array, grid, lead_dims, lead_coords, attrs = _source_parts(source, source_grid, dims)
    if src_nodata is None:
        src_nodata = _attr_nodata(attrs)
    out_dtype = np.dtype(dtype) if dtype is not None else np.dtype(array.dtype)
    fill = output_nodata(out_dtype, nodata, src_nodata)
    if not isinstance(array, (da.Array, np.ndarray)) and hasattr(array, "__getitem__"):
        result = _warp_sliced(
            array, grid, target, chunks, resampling, src_nodata, fill, out_dtype, error_threshold
        )
        return _as_dataarray(result, target, lead_dims, lead_coords, attrs, fill, resampling)
    if not isinstance(array, da.Array):
        array = da.from_array(np.asarray(array), chunks=array.shape)
    cy, cx = _target_chunks(chunks, target)
    row_chunks = _split(target.height, cy)
    col_chunks = _split(target.width, cx)
    scale = kernel_scale(grid, target) if resampling != "nearest" else (1.0, 1.0)
    token = _token(
        array.name, grid, target, resampling, src_nodata, fill, out_dtype, error_threshold
    )
    # the coordinates depend on the grids only: one task per chunk, shared by every band
    coords_token = _token(grid, target, resampling, error_threshold)
    name, coords_name = f"warp-{token}", f"warp-coords-{coords_token}"
    src_row_edges = np.cumsum((0, *array.chunks[-2]))
    src_col_edges = np.cumsum((0, *array.chunks[-1]))
    lead_chunks = array.chunks[:-2]
    dsk: dict[Any, Any] = {}
    row_offsets = np.cumsum((0, *row_chunks))
    col_offsets = np.cumsum((0, *col_chunks))
    for i, j in itertools.product(range(len(row_chunks)), range(len(col_chunks))):
        window = Window(int(row_offsets[i]), int(col_offsets[j]), row_chunks[i], col_chunks[j])
        needed = source_window(
            grid, target, window, resampling=resampling, error_threshold=error_threshold
        )
        if needed is not None:
            dsk[(coords_name, i, j)] = (
                _coordinates,
                grid,
                target,
                window,
                resampling,
                error_threshold,
            )
        bi = _blocks(src_row_edges, needed.row_off, needed.height) if needed else None
        bj = _blocks(src_col_edges, needed.col_off, needed.width) if needed else None
        for lead in itertools.product(*(range(len(c)) for c in lead_chunks)):
            shape = (*(lead_chunks[k][n] for k, n in enumerate(lead)), window.height, window.width)
            key = (name, *lead, i, j)
            if needed is None:
                dsk[key] = (np.full, shape, fill, out_dtype)
                continue
            blocks = [[(array.name, *lead, r, c) for c in bj] for r in bi]
            origin = (int(src_row_edges[bi[0]]), int(src_col_edges[bj[0]]))
            dsk[key] = (
                _warp_block, blocks, origin, (coords_name, i, j), grid, target, window,
                resampling, src_nodata, fill, out_dtype, scale,
            )  # fmt: skip
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=[array])
    out_chunks = (*lead_chunks, tuple(row_chunks), tuple(col_chunks))
    result = da.Array(graph, name, out_chunks, dtype=out_dtype)
    return _as_dataarray(result, target, lead_dims, lead_coords, attrs, fill, resampling)


#: Default target chunk (rows / cols) of a lazy-array source: a task reads every source
#: tile under its chunk, so a tile under a chunk edge is read by each chunk it touches;
#: large chunks (4096² uint16: 32 MiB) keep that rare, and AOI-sized targets whole.
SLICED_CHUNK = 4096
#: Output bytes a task of a lazy-array source aims at: consecutive time steps share a
#: task, so their source windows are read in one batch (concurrent fetches, decode on
#: every core) instead of one small read per dask thread.
SLICED_TASK_BYTES = 128 * 2**20


def _warp_sliced(
    source: Any,
    grid: GridSpec,
    target: GridSpec,
    chunks: Any,
    resampling: str,
    src_nodata: float | None,
    fill: Any,
    out_dtype: np.dtype,
    error_threshold: float,
) -> Any:
    """The dask array of a lazy-array source: per target chunk and run of the first
    leading index, one task that slices the needed source window of the whole run (one
    batched read) and warps it (no source chunks in the graph)."""
    import dask.array as da
    from dask.base import tokenize
    from dask.highlevelgraph import HighLevelGraph

    lead_shape = tuple(int(n) for n in source.shape[:-2])
    if chunks is None:  # whole target up to SLICED_CHUNK: tiles under chunk edges are
        chunks = tuple(min(n, SLICED_CHUNK) for n in target.shape)  # fetched once per chunk
    cy, cx = _target_chunks(chunks, target)
    row_chunks, col_chunks = _split(target.height, cy), _split(target.width, cx)
    # the first leading axis (time) in runs of about SLICED_TASK_BYTES of output per task
    per_step = cy * cx * out_dtype.itemsize * math.prod(lead_shape[1:])
    run = max(1, SLICED_TASK_BYTES // max(per_step, 1))
    lead_chunks = [_split(n, run) if k == 0 else [1] * n for k, n in enumerate(lead_shape)]
    lead_starts = [np.cumsum((0, *c)) for c in lead_chunks]
    scale = kernel_scale(grid, target) if resampling != "nearest" else (1.0, 1.0)
    token = tokenize(
        _token(grid, target, resampling, src_nodata, fill, out_dtype, error_threshold),
        source,
        run,
    )
    # the coordinates depend on the grids only: one task per chunk, shared by every band
    coords_token = _token(grid, target, resampling, error_threshold)
    name, coords_name = f"warp-{token}", f"warp-coords-{coords_token}"
    row_offsets = np.cumsum((0, *row_chunks))
    col_offsets = np.cumsum((0, *col_chunks))
    shift = lattice_offset(grid, target) if resampling == "nearest" else None
    dsk: dict[Any, Any] = {}
    for i, j in itertools.product(range(len(row_chunks)), range(len(col_chunks))):
        window = Window(int(row_offsets[i]), int(col_offsets[j]), row_chunks[i], col_chunks[j])
        if shift is not None:  # the same pixel lattice: nearest is a copy of the overlap
            needed = window.shifted(*shift).intersection(Window(0, 0, *grid.shape))
            needed = None if needed.is_empty else needed
        else:
            needed = source_window(
                grid, target, window, resampling=resampling, error_threshold=error_threshold
            )
        if needed is not None and shift is None and resampling == "nearest":
            # the index map of this chunk into its source crop: derived once, shared by
            # every band and record run warped with it
            dsk[(coords_name, i, j)] = (
                nearest_index, grid, target, window, needed, error_threshold,
            )  # fmt: skip
        elif needed is not None and shift is None:
            dsk[(coords_name, i, j)] = (
                _coordinates, grid, target, window, resampling, error_threshold,
            )  # fmt: skip
        for lead in itertools.product(*(range(len(c)) for c in lead_chunks)):
            spans = tuple(
                slice(int(lead_starts[k][n]), int(lead_starts[k][n + 1]))
                for k, n in enumerate(lead)
            )
            shape = (*(s.stop - s.start for s in spans), window.height, window.width)
            key = (name, *lead, i, j)
            if needed is None:
                dsk[key] = (np.full, shape, fill, out_dtype)
                continue
            if shift is not None:
                dsk[key] = (
                    _copy_slice, source, spans, needed, window, shift, src_nodata, fill,
                    out_dtype,
                )  # fmt: skip
                continue
            dsk[key] = (
                _warp_slice, source, spans, needed, (coords_name, i, j), grid, target, window,
                resampling, src_nodata, fill, out_dtype, scale,
            )  # fmt: skip
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=[])
    out_chunks = (*(tuple(c) for c in lead_chunks), tuple(row_chunks), tuple(col_chunks))
    return da.Array(graph, name, out_chunks, dtype=out_dtype)


def lattice_offset(grid: GridSpec, target: GridSpec) -> tuple[int, int] | None:
    """``(rows, cols)`` from target to source pixels when both grids share one pixel
    lattice (same CRS, same axis-aligned pixel size, origins a whole number of pixels
    apart), else ``None``."""
    if not (grid.is_axis_aligned and target.is_axis_aligned):
        return None
    if crs_key(grid.crs) != crs_key(target.crs):
        return None
    a, _, c, _, e, f = grid.transform
    ta, _, tc, _, te, tf = target.transform
    if not (math.isclose(a, ta, rel_tol=1e-9) and math.isclose(e, te, rel_tol=1e-9)):
        return None
    cols, rows = (tc - c) / a, (tf - f) / e
    if abs(cols - round(cols)) > 1e-6 or abs(rows - round(rows)) > 1e-6:
        return None
    return round(rows), round(cols)


def _copy_slice(source, spans, needed, window, shift, src_nodata, fill, dtype):  # fmt: skip
    """Nearest on the same lattice: the overlapping source pixels, ``fill`` elsewhere and
    where the source is nodata (as :func:`warp_array` would give)."""
    shape = (*(s.stop - s.start for s in spans), window.height, window.width)
    rows = slice(needed.row_off, needed.row_off + needed.height)
    cols = slice(needed.col_off, needed.col_off + needed.width)
    lead = tuple(s if s.stop - s.start > 1 else s.start for s in spans)
    data = np.asarray(source[(*lead, rows, cols)]).reshape((*shape[:-2], *needed.shape))
    if needed.shape == window.shape and data.dtype == dtype and _same(src_nodata, fill, dtype):
        return data  # the whole chunk, its nodata already the fill: as read, no copy
    out = np.full(shape, fill, dtype=dtype)
    r0 = needed.row_off - shift[0] - window.row_off
    c0 = needed.col_off - shift[1] - window.col_off
    dst = out[..., r0 : r0 + needed.height, c0 : c0 + needed.width]
    valid = valid_mask(data, src_nodata)
    if valid is None:
        dst[...] = data
    else:
        np.copyto(dst, data, where=valid, casting="unsafe")
    return out


def _same(nodata: float | None, fill: Any, dtype: np.dtype) -> bool:
    """Whether every invalid pixel (``nodata``) already holds ``fill`` bit for bit (no
    nodata: none is invalid)."""
    if nodata is None:
        return True
    if fill is None or (dtype.kind == "f" and nodata == 0):
        return False  # -0.0 pixels are nodata too, but not the fill's bits
    if isinstance(nodata, float) and math.isnan(nodata):
        return isinstance(fill, float) and math.isnan(fill)
    return bool(nodata == fill)


def _warp_slice(
    source, spans, needed, coordinates, grid, target, window, resampling, src_nodata, fill,
    dtype, scale,
):  # fmt: skip
    rows = slice(needed.row_off, needed.row_off + needed.height)
    cols = slice(needed.col_off, needed.col_off + needed.width)
    lead = tuple(s if s.stop - s.start > 1 else s.start for s in spans)
    data = np.asarray(source[(*lead, rows, cols)])
    warped = warp_array(
        data, grid, target, resampling=resampling, src_nodata=src_nodata, nodata=fill,
        dtype=dtype, window=window, source_offset=(needed.row_off, needed.col_off),
        scale=scale, coordinates=coordinates,
    )  # fmt: skip
    return warped.reshape((*(s.stop - s.start for s in spans), window.height, window.width))


def _coordinates(grid, target, window, resampling, error_threshold):
    if resampling in AREA_KERNELS:
        return corner_coordinates(grid, target, window, error_threshold)
    return source_coordinates(grid, target, window, error_threshold=error_threshold)


def _warp_block(
    blocks, origin, coordinates, grid, target, window, resampling, src_nodata, fill, dtype, scale
):
    data = blocks[0][0] if len(blocks) == 1 and len(blocks[0]) == 1 else np.block(blocks)
    return warp_array(
        data, grid, target, resampling=resampling, src_nodata=src_nodata, nodata=fill,
        dtype=dtype, window=window, source_offset=origin, scale=scale, coordinates=coordinates,
    )  # fmt: skip


def _blocks(edges: np.ndarray, start: int, length: int) -> list[int]:
    first = int(np.searchsorted(edges, start, side="right")) - 1
    last = int(np.searchsorted(edges, start + length, side="left")) - 1
    return list(range(first, last + 1))


def _split(size: int, chunk: int) -> list[int]:
    return [min(chunk, size - start) for start in range(0, size, chunk)]


def _target_chunks(chunks: Any, target: GridSpec) -> tuple[int, int]:
    if chunks is None:
        cy, cx = DEFAULT_CHUNK
    elif isinstance(chunks, int):
        cy = cx = chunks
    elif isinstance(chunks, dict):
        cy, cx = chunks.get("y", DEFAULT_CHUNK[0]), chunks.get("x", DEFAULT_CHUNK[1])
    else:
        cy, cx = chunks
    if cy in (-1, None):
        cy = target.height
    if cx in (-1, None):
        cx = target.width
    return max(1, min(int(cy), target.height)), max(1, min(int(cx), target.width))


def _source_parts(source: Any, grid: GridSpec | None, dims: Sequence[str] | None):
    import xarray as xr

    if isinstance(source, xr.DataArray):
        if source.ndim < 2 or tuple(source.dims[-2:]) != ("y", "x"):
            raise ValueError(f"source dims must end in ('y', 'x'), got {source.dims}")
        grid = grid or GridSpec.from_xarray(source)
        lead_dims = tuple(source.dims[:-2])
        lead_coords = {
            k: v
            for k, v in source.coords.items()
            if set(v.dims) <= set(lead_dims) and k != "spatial_ref"
        }
        attrs = dict(source.attrs)
        for key in ("_FillValue", "missing_value"):
            if key in source.encoding and key not in attrs:
                attrs[key] = source.encoding[key]
        return source.data, grid, lead_dims, lead_coords, attrs
    if grid is None:
        raise ValueError("an array source needs source_grid= (its GridSpec)")
    shape = np.shape(source)
    if len(shape) < 2 or tuple(shape[-2:]) != grid.shape:
        raise ValueError(f"source shape {shape} does not end in the source grid's {grid.shape}")
    lead_dims = tuple(dims[:-2]) if dims else tuple(f"dim_{k}" for k in range(len(shape) - 2))
    return source, grid, lead_dims, {}, {}


def _attr_nodata(attrs: dict[str, Any]) -> float | None:
    for key in ("_FillValue", "nodata", "missing_value"):
        value = attrs.get(key)
        if value is not None:
            return value.item() if isinstance(value, np.generic) else value
    return None


def _token(*parts: Any) -> str:
    from dask.base import tokenize

    return tokenize(*[p.to_dict() if isinstance(p, GridSpec) else str(p) for p in parts])


def spatial_coordinates(target: GridSpec) -> dict[str, Any]:
    """The coordinates of a variable on ``target``: ``x`` / ``y`` pixel centres (axis-aligned
    grids) and the CF ``spatial_ref`` scalar."""
    import xarray as xr

    from rasteret.geo.cf import spatial_ref_attributes

    coords: dict[str, Any] = {}
    if target.is_axis_aligned:
        xy = target.coords
        coords["y"] = ("y", xy["y"])
        coords["x"] = ("x", xy["x"])
    epsg = target.crs.to_epsg(min_confidence=100)
    ref = spatial_ref_attributes(epsg, None if epsg else target.crs.to_wkt(), target.transform)
    coords["spatial_ref"] = xr.Variable((), np.int64(0), ref or {"crs_wkt": crs_key(target.crs)})
    return coords


def _as_dataarray(data, target, lead_dims, lead_coords, attrs, fill, resampling) -> xr.DataArray:
    import xarray as xr

    coords: dict[str, Any] = {**lead_coords, **spatial_coordinates(target)}
    # nodata as rioxarray / odc-stac read it; a CF ``_FillValue`` in attrs would mask a
    # derived result written with to_zarr (xarray keeps attrs through arithmetic)
    out_attrs = {k: v for k, v in attrs.items() if k not in ("missing_value", "_FillValue")}
    if not (isinstance(fill, float) and math.isnan(fill) and data.dtype.kind not in "fc"):
        out_attrs["nodata"] = np.asarray(fill).astype(data.dtype).item()
    out_attrs["grid_mapping"] = "spatial_ref"
    out_attrs["resampling"] = resampling
    return xr.DataArray(data, dims=(*lead_dims, "y", "x"), coords=coords, attrs=out_attrs)
