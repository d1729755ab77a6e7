"""``get_gdf``: AOI reads as a GeoDataFrame, one row per (record, geometry, band).

The original system's ``get_gdf``, for windows of different shapes or CRSs (which
``get_numpy`` cannot stack). Columns: ``record_id``, ``datetime``, ``cloud_cover``
(``eo:cloud_cover``, else null), ``collection`` (else null), ``geometry_id`` (the
geometry's position in the input), ``geometry`` (the AOI geometry, in ``target_crs`` when
given, else in the geometries' CRS), ``band``, ``data`` (the window's 2-D array in the
native dtype; pixels outside the geometry or without data hold the fill value), ``mask``
(2-D, ``True`` = valid), ``transform`` (``affine.Affine`` of the window) and ``crs`` (the
window's CRS), then the other columns of a tabular AOI input joined on ``geometry_id``
(a name that collides with one of these raises ``ValueError``). Rows are in record time
order, then geometry order, then band order; each band is read on its own grid (bands of
different resolutions need no common grid here). Needs geopandas.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from rasteret._pages import small_pages
from rasteret.index import CollectionTable
from rasteret.index.failed import OnFailedAsset
from rasteret.read.aoi import read_aoi_windows
from rasteret.read.geometry import coerce_geometries

if TYPE_CHECKING:
    from rasteret.fetch import RangeReader

COLUMNS = (
    "record_id", "datetime", "cloud_cover", "collection", "geometry_id", "geometry",
    "band", "data", "mask", "transform", "crs",
)  # fmt: skip


@small_pages
def get_gdf(
    collection: CollectionTable,
    geometries: Any,
    bands: str | Sequence[str],
    *,
    geometry_crs: Any = "auto",
    geometry_column: str | None = None,
    all_touched: bool = False,
    fill_value: float | None = None,
    target_crs: Any = None,
    resolution: Any = None,
    resampling: str | None = None,
    overviews: bool = True,
    reader: RangeReader | None = None,
    errors: OnFailedAsset = "raise",
    **filters: Any,
) -> Any:
    """Pixels of ``bands`` inside ``geometries`` as a ``geopandas.GeoDataFrame`` (see the
    module docs); options as :func:`rasteret.read.get_numpy`."""
    try:
        import geopandas as gpd
        from affine import Affine
    except ImportError:
        raise ImportError("get_gdf needs geopandas: pip install geopandas") from None

    parsed = coerce_geometries(
        geometries, geometry_crs=geometry_crs, geometry_column=geometry_column
    )
    attributes = parsed.attributes
    if attributes is not None:
        clash = sorted(set(attributes.column_names) & set(COLUMNS))
        if clash:
            raise ValueError(
                f"the geometries' columns {clash} collide with get_gdf's own columns; "
                "rename them first"
            )
    wanted = [bands] if isinstance(bands, str) else list(bands)
    found = []  # (window, band's position): each band read on its own grid
    for position, band in enumerate(wanted):
        windows = read_aoi_windows(
            collection,
            geometries,
            [band],
            geometry_crs=geometry_crs,
            geometry_column=geometry_column,
            all_touched=all_touched,
            fill_value=fill_value,
            target_crs=target_crs,
            resolution=resolution,
            resampling=resampling,
            overviews=overviews,
            reader=reader,
            errors=errors,
            **filters,
        )
        found += [(window, position) for window in windows]
    # record time order, then geometry order, then band order
    found.sort(key=lambda f: (f[0].datetime, f[0].record_id or "", f[0].geometry_id, f[1]))
    shapes = parsed.geometries if target_crs is None else parsed.to_crs(target_crs)
    crs = parsed.crs if target_crs is None else target_crs
    extra = _record_columns(collection, {w.record_id for w, _ in found})
    rows: dict[str, list[Any]] = {name: [] for name in COLUMNS}
    for window, _ in found:
        cloud, origin = extra.get(window.record_id, (None, None))
        transform = Affine(*window.grid.transform[:6])
        for c, band in enumerate(window.bands):
            rows["record_id"].append(window.record_id)
            rows["datetime"].append(window.datetime)
            rows["cloud_cover"].append(cloud)
            rows["collection"].append(origin)
            rows["geometry_id"].append(int(window.geometry_id))
            rows["geometry"].append(shapes[window.geometry_id])
            rows["band"].append(band)
            rows["data"].append(window.data[c])
            rows["mask"].append(window.mask[c])
            rows["transform"].append(transform)
            rows["crs"].append(window.grid.crs.to_string())
    columns: dict[str, Any] = {k: v for k, v in rows.items() if k != "geometry"}
    columns["datetime"] = np.asarray(rows["datetime"], dtype="datetime64[ns]")
    if attributes is not None:
        ids = np.asarray(rows["geometry_id"], dtype=np.int64)
        for name in attributes.column_names:
            values = attributes[name].to_pylist()
            columns[name] = [values[i] for i in ids]
    frame = gpd.GeoDataFrame(columns, geometry=list(rows["geometry"]), crs=crs)
    return frame[[*COLUMNS, *(attributes.column_names if attributes is not None else [])]]


def _record_columns(
    collection: Any, record_ids: set[str | None]
) -> dict[str | None, tuple[Any, Any]]:
    """``eo:cloud_cover`` and ``collection`` of the records read (null when absent)."""
    from rasteret.store.api import as_store_collection

    table = as_store_collection(collection)
    names = [n for n in ("id", "eo:cloud_cover", "collection") if n in table.schema.names]
    values = table.to_table(columns=names)
    ids = values["id"].to_pylist()
    cloud = values["eo:cloud_cover"].to_pylist() if "eo:cloud_cover" in names else [None] * len(ids)
    origin = values["collection"].to_pylist() if "collection" in names else [None] * len(ids)
    return {
        rid: (cc, co) for rid, cc, co in zip(ids, cloud, origin, strict=True) if rid in record_ids
    }
