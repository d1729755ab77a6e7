"""Coordinate arrays of a group, synthesised in memory: ``x``, ``y``, ``time``, ``id``,
``spatial_ref``.

``x`` / ``y`` are pixel centres of the group's (north-up) grid; a rotated or sheared
grid gets no 1-D ``x`` / ``y`` (its affine is in ``spatial_ref.GeoTransform``).
``time`` is int64 microseconds since 1970-01-01 (CF-decoded by xarray), ``id`` the
record ids (variable-length UTF-8), and ``spatial_ref`` a 0-d int64 carrying the CRS
as ``pyproj.CRS.to_cf()`` plus ``spatial_ref`` (WKT) and ``GeoTransform`` (GDAL order),
so ``xr.open_zarr`` and rioxarray's ``.rio`` work unchanged.
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np

from rasteret.geo.cf import axis_attributes, spatial_ref_attributes
from rasteret.store.layout import GroupLayout

Node = tuple[dict[str, Any], bytes | None]  # (zarr.json document, the single chunk)
_BYTES_CODEC = [{"name": "bytes", "configuration": {"endian": "little"}}]
TIME_ATTRIBUTES = {
    "standard_name": "time",
    "units": "microseconds since 1970-01-01T00:00:00",
    "calendar": "proleptic_gregorian",
}


#: A coordinate as plain values: ``(dims, values, attributes)``.
Coordinate = tuple[tuple[str, ...], np.ndarray, dict[str, Any]]


def coordinate_arrays(group: GroupLayout) -> dict[str, Coordinate]:
    """Coordinates of ``group`` as values (``spatial_ref``: 0-d, only when georeferenced);
    what :func:`coordinate_nodes` encodes and the xarray engine uses as they are."""
    coords: dict[str, Coordinate] = {}
    grid = group.grid
    axes = axis_attributes(grid.epsg, grid.crs_wkt)
    transform = grid.transform
    if transform is not None and transform[1] == 0.0 and transform[3] == 0.0:
        a, _, c, _, e, f = transform
        x = c + a * (np.arange(grid.width, dtype=np.float64) + 0.5)
        y = f + e * (np.arange(grid.height, dtype=np.float64) + 0.5)
        coords["x"] = (("x",), x, dict(axes.get("x", {})))
        coords["y"] = (("y",), y, dict(axes.get("y", {})))
    micros = group.times.astype("datetime64[us]").astype(np.int64)
    coords["time"] = (("time",), micros, dict(TIME_ATTRIBUTES))
    coords["id"] = (("time",), np.asarray(group.ids, dtype=str), {"long_name": "record id"})
    ref = spatial_ref_attributes(grid.epsg, grid.crs_wkt, transform)
    if ref is not None:
        coords["spatial_ref"] = ((), np.int64(0), dict(ref))
    return coords


def coordinate_nodes(group: GroupLayout) -> dict[str, Node]:
    """Coordinate arrays of ``group``: name → (document, chunk bytes or None)."""
    nodes: dict[str, Node] = {}
    for name, (dims, values, attrs) in coordinate_arrays(group).items():
        if name == "spatial_ref":
            nodes[name] = (_document((), "int64", 0, [], attrs, _BYTES_CODEC), None)
        elif name == "id":
            nodes[name] = _strings(list(group.ids), dims[0], attrs)
        else:
            nodes[name] = _numeric(values, dims[0], attrs)
    return nodes


def numeric_node(values: np.ndarray, dim: str, attrs: dict[str, Any]) -> Node:
    """A 1-D numeric coordinate array along ``dim``: (document, its single chunk)."""
    return _numeric(values, dim, attrs)


def _numeric(values: np.ndarray, dim: str, attrs: dict[str, Any]) -> Node:
    data = np.ascontiguousarray(values, dtype=values.dtype.newbyteorder("<"))
    doc = _document(
        (len(values),), data.dtype.name, 0, [dim], attrs, _BYTES_CODEC, chunk=max(len(values), 1)
    )
    return doc, data.tobytes() if len(values) else None


def _strings(values: list[str], dim: str, attrs: dict[str, Any]) -> Node:
    codecs = [{"name": "vlen-utf8", "configuration": {}}]
    doc = _document((len(values),), "string", "", [dim], attrs, codecs, chunk=max(len(values), 1))
    return doc, encode_vlen_utf8(values) if values else None


def encode_vlen_utf8(values: list[str]) -> bytes:
    """The ``vlen-utf8`` encoding of a 1-D chunk: count, then (length, UTF-8 bytes) items."""
    parts = [struct.pack("<I", len(values))]
    for value in values:
        raw = value.encode("utf-8")
        parts.append(struct.pack("<I", len(raw)))
        parts.append(raw)
    return b"".join(parts)


def _document(
    shape: tuple[int, ...],
    data_type: str,
    fill: Any,
    dims: list[str],
    attrs: dict[str, Any],
    codecs: list[dict[str, Any]],
    chunk: int | None = None,
) -> dict[str, Any]:
    chunk_shape = [] if not shape else [chunk or shape[0]]
    return {
        "zarr_format": 3,
        "node_type": "array",
        "shape": list(shape),
        "data_type": data_type,
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": chunk_shape}},
        "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
        "fill_value": fill,
        "codecs": codecs,
        "attributes": attrs,
        "dimension_names": dims,
        "storage_transformers": [],
    }
