"""A Collection as kerchunk references (version 1, Zarr v2), readable without rasteret.

:func:`to_kerchunk` writes the :class:`~rasteret.integrations.virtual_export.ExportPlan`
as ``{"version": 1, "refs": {...}}``: ``.zgroup`` / ``.zattrs`` / ``.zarray`` documents
and coordinate chunks inline (binary as ``"base64:..."``), every tile as
``[url, offset, length]`` under ``{group}/{band}/{t}.{i}.{j}``. Local files are
``file://`` URLs. Zarr v2 has no ``rasteret.tiff`` codec, so only arrays with standard
codecs are written (:mod:`~rasteret.integrations.virtual_export_codecs`); others raise
:class:`~rasteret.integrations.virtual_export.VirtualExportError` (use
:func:`~rasteret.integrations.virtual_export_icechunk.to_icechunk` for them).

Open with fsspec's reference filesystem and zarr (no rasteret needed)::

    xr.open_dataset("reference://", engine="zarr", group="epsg32633_10m",
                    backend_kwargs={"consolidated": False,
                                    "storage_options": {"fo": "refs.json"}})
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from rasteret.integrations.virtual_export import (
    ExportArray,
    ExportGroup,
    file_url,
    local_file,
    plan_export,
)
from rasteret.store.coords import Coordinate

if TYPE_CHECKING:
    from rasteret.index import CollectionTable
    from rasteret.index.failed import OnFailedAsset
    from rasteret.integrations.virtual_export import ExportPlan, InternalMasks


def to_kerchunk(
    collection: CollectionTable,
    path: str | os.PathLike[str] | None = None,
    *,
    bands: str | Sequence[str] | None = None,
    errors: OnFailedAsset = "raise",
    internal_masks: InternalMasks = "export",
) -> dict[str, Any]:
    """Kerchunk version-1 references of ``collection``'s records and ``bands`` (module
    docs); also written to ``path`` as JSON when given. Raises
    :class:`~rasteret.integrations.virtual_export.VirtualExportError` for arrays that
    need the ``rasteret.tiff`` codec (1-bit internal masks among them:
    ``internal_masks="omit"`` leaves masks out) or cannot be referenced at all."""
    plan = plan_export(
        collection, bands, codecs="standard", errors=errors, internal_masks=internal_masks
    )
    references = kerchunk_references(plan)
    if path is not None:
        with open(os.fspath(path), "w", encoding="utf-8") as out:
            json.dump(references, out, allow_nan=False)
    return references


def kerchunk_references(plan: ExportPlan) -> dict[str, Any]:
    """The version-1 reference document of ``plan`` (standard codecs only)."""
    refs: dict[str, Any] = {
        ".zgroup": _json({"zarr_format": 2}),
        ".zattrs": _json(plan.root_attributes()),
    }
    for group in plan.groups:
        _add_group(refs, group)
    return {"version": 1, "refs": refs}


def _add_group(refs: dict[str, Any], group: ExportGroup) -> None:
    name = group.name
    refs[f"{name}/.zgroup"] = _json({"zarr_format": 2})
    refs[f"{name}/.zattrs"] = _json(dict(group.attributes))
    for cname, coord in group.coords.items():
        _add_coordinate(refs, f"{name}/{cname}", coord)
    for array in group.arrays:
        path = f"{name}/{array.name}"
        refs[f"{path}/.zarray"] = _json(_zarray(array))
        refs[f"{path}/.zattrs"] = _json(
            {**array.attributes, "_ARRAY_DIMENSIONS": ["time", "y", "x"]}
        )
        for cname, coord in array.coords.items():
            _add_coordinate(refs, f"{name}/{cname}", coord)
        _add_chunks(refs, path, array)


def _zarray(array: ExportArray) -> dict[str, Any]:
    fill = None
    if array.nodata is not None:  # v2 readers (xarray) take fill_value as _FillValue
        fill = _json_number(array.fill) if array.dtype.kind == "f" else array.fill
    compressor = array.codec.v2_compressor
    return {
        "zarr_format": 2,
        "shape": list(array.shape),
        "chunks": list(array.chunk_shape),
        "dtype": array.codec.v2_dtype,
        "compressor": None if compressor is None else dict(compressor),
        "fill_value": fill,
        "filters": None,
        "order": "C",
        "dimension_separator": ".",
    }


def _add_chunks(refs: dict[str, Any], path: str, array: ExportArray) -> None:
    across = array.chunk_grid[2]
    for record in array.records:
        local = local_file(record.href)
        url = record.href if local is None else file_url(local, quote=False)
        lengths = record.lengths.tolist()
        offsets = record.offsets.tolist()
        for n, (offset, length) in enumerate(zip(offsets, lengths, strict=True)):
            if length > 0:
                i, j = divmod(n, across)
                refs[f"{path}/{record.t}.{i}.{j}"] = [url, int(offset), int(length)]


def _add_coordinate(refs: dict[str, Any], path: str, coord: Coordinate) -> None:
    dims, values, attrs = coord
    values = np.asarray(values)
    attributes = {**attrs, "_ARRAY_DIMENSIONS": list(dims)}
    shape = list(values.shape)
    meta: dict[str, Any] = {
        "zarr_format": 2,
        "shape": shape,
        "chunks": shape,
        "compressor": None,
        "fill_value": None,
        "filters": None,
        "order": "C",
        "dimension_separator": ".",
    }
    if values.dtype.kind in "US":
        from rasteret.store.coords import encode_vlen_utf8

        meta["dtype"] = "|O"
        meta["filters"] = [{"id": "vlen-utf8"}]
        chunk = encode_vlen_utf8([str(v) for v in values.tolist()])
    else:
        data = np.ascontiguousarray(values, dtype=values.dtype.newbyteorder("<"))
        meta["dtype"] = data.dtype.str
        chunk = data.tobytes()
    refs[f"{path}/.zarray"] = _json(meta)
    refs[f"{path}/.zattrs"] = _json(attributes)
    key = ".".join("0" for _ in shape) or "0"
    if values.size:
        refs[f"{path}/{key}"] = "base64:" + base64.b64encode(chunk).decode("ascii")


def _json(doc: Mapping[str, Any]) -> str:
    return json.dumps(doc, allow_nan=False, default=_default)


def _default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _json_number(value: float) -> Any:
    from rasteret.store.metadata import json_number

    return json_number(value)
