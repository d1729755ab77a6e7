"""``zarr.json`` documents (Zarr v3) for the groups and data arrays of a layout.

Data arrays get ``fill_value`` = nodata (0 when the source has none, recorded in the
``rasteret_fill_value`` attribute) and the CF attributes xarray and rioxarray read:
``_FillValue`` (only when nodata exists, encoded as xarray encodes it for Zarr v3),
``grid_mapping: "spatial_ref"``, ``coordinates`` and ``scale_factor`` / ``add_offset``.
"""

from __future__ import annotations

import base64
import math
import struct
from typing import Any

import numpy as np

from rasteret.store.layout import ArrayLayout, GroupLayout, StoreLayout

CODEC_NAME = "rasteret.tiff"
DIMENSIONS = ["time", "y", "x"]


def array_document(array: ArrayLayout, *, georeferenced: bool) -> dict[str, Any]:
    """The ``zarr.json`` of a data (or mask) array."""
    dtype = np.dtype(array.dtype)
    fill, note = fill_value(array.nodata, dtype)
    attributes: dict[str, Any] = {
        "band": array.band,
        "kind": array.kind,
        "records": array.records,
        "coordinates": "id spatial_ref" if georeferenced else "id",
    }
    if georeferenced:
        attributes["grid_mapping"] = "spatial_ref"
    if note is None:
        attributes["_FillValue"] = encode_attribute_fill(fill, dtype)
    else:
        attributes["rasteret_fill_value"] = note
    if array.scale is not None and array.scale != 1.0:
        attributes["scale_factor"] = array.scale
    if array.offset is not None and array.offset != 0.0:
        attributes["add_offset"] = array.offset
    return {
        "zarr_format": 3,
        "node_type": "array",
        "shape": list(array.shape),
        "data_type": dtype.name,
        "chunk_grid": {
            "name": "regular",
            "configuration": {"chunk_shape": list(array.chunk_shape)},
        },
        "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
        "fill_value": json_fill(fill, dtype),
        "codecs": [{"name": CODEC_NAME, "configuration": dict(array.codec)}],
        "attributes": attributes,
        "dimension_names": list(DIMENSIONS),
        "storage_transformers": [],
    }


def group_document(
    group: GroupLayout | None,
    members: dict[str, dict[str, Any]],
    attributes: dict[str, Any],
) -> dict[str, Any]:
    """The ``zarr.json`` of a group, with inline consolidated metadata of ``members``.

    ``members`` maps paths relative to the group to the member documents.
    """
    return {
        "zarr_format": 3,
        "node_type": "group",
        "attributes": attributes,
        "consolidated_metadata": {
            "kind": "inline",
            "must_understand": False,
            "metadata": dict(members),
        },
    }


def group_attributes(group: GroupLayout) -> dict[str, Any]:
    """Attributes describing a group's grid."""
    grid = group.grid
    # flat scalars / number lists only, so a Dataset opened from the group can be written
    # to netCDF unchanged
    attrs: dict[str, Any] = {
        "rasteret_grid_width": grid.width,
        "rasteret_grid_height": grid.height,
        "records": len(group.rows),
    }
    if grid.transform is not None:
        attrs["rasteret_grid_transform"] = [float(v) for v in grid.transform]
    if grid.epsg is not None:
        attrs["rasteret_grid_epsg"] = int(grid.epsg)
    if group.overview is not None:
        attrs["overview_level"] = group.overview
    if group.parent is not None:
        attrs["parent_group"] = group.parent
    if grid.crs_wkt:
        attrs["crs_wkt"] = grid.crs_wkt
    return attrs


def root_attributes(layout: StoreLayout, fingerprint: str | None) -> dict[str, Any]:
    """Attributes of the root group: what the store holds."""
    return {
        "rasteret": {
            "bands": list(layout.bands),
            "groups": {
                name: {
                    "overview_level": g.overview,
                    "parent": g.parent,
                    "arrays": sorted(g.arrays),
                    "records": len(g.rows),
                }
                for name, g in layout.groups.items()
            },
            "fingerprint": fingerprint,
        }
    }


def fill_value(nodata: float | None, dtype: np.dtype) -> tuple[Any, str | None]:
    """``(fill_value, note)``: nodata as a value of ``dtype``, else 0 and why."""
    if nodata is None:
        return _zero(dtype), "0 (the source declares no nodata; 0 marks absent/sparse blocks)"
    if dtype.kind in "fc":
        return float(nodata), None
    if dtype.kind == "b":
        return bool(nodata), None
    if math.isfinite(nodata) and nodata == int(nodata):
        info = np.iinfo(dtype)
        if info.min <= int(nodata) <= info.max:
            return int(nodata), None
    return _zero(dtype), f"0 (nodata {nodata!r} is not a value of {dtype.name})"


def _zero(dtype: np.dtype) -> Any:
    if dtype.kind in "fc":
        return 0.0
    return False if dtype.kind == "b" else 0


def json_fill(value: Any, dtype: np.dtype) -> Any:
    """A fill value as Zarr v3 JSON (``"NaN"``, ``"Infinity"``, ``[re, im]``)."""
    if dtype.kind == "c":
        return [_json_float(value), 0.0]
    if dtype.kind == "f":
        return _json_float(float(value))
    return value


def _json_float(value: float) -> Any:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def json_number(value: float | None) -> Any:
    """A number for an attribute (non-finite values as strings)."""
    return None if value is None else _json_float(float(value))


def encode_attribute_fill(value: Any, dtype: np.dtype) -> Any:
    """``_FillValue`` as xarray stores it for Zarr v3 (floats: base64 little-endian double)."""
    if dtype.kind == "f":
        return base64.standard_b64encode(struct.pack("<d", float(value))).decode("ascii")
    if dtype.kind == "c":
        part = base64.standard_b64encode(struct.pack("<d", float(value))).decode("ascii")
        zero = base64.standard_b64encode(struct.pack("<d", 0.0)).decode("ascii")
        return [part, zero]
    if dtype.kind == "b":
        return bool(value)
    return int(value)
