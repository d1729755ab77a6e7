"""Test helpers: write GeoTIFFs with rasterio (the oracle) and index them into Collections
without the ingest layer (parse_header → band_metadata_from_header → Arrow table)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import rasterio
import rasterio.shutil
import shapely
from rasterio.crs import CRS as RioCRS
from rasterio.transform import Affine, from_origin
from rasterio.warp import transform_bounds

from rasteret import Collection, as_collection
from rasteret.index import BAND_METADATA_TYPE, band_metadata_from_header
from rasteret.index.schema import BBOX_TYPE
from rasteret.tiff.header import parse_header

CRS84 = RioCRS.from_string("OGC:CRS84")

# ----------------------------------------------------------------------------- writing


def write_cog(
    path: Path,
    data: np.ndarray,
    *,
    crs: str = "EPSG:32633",
    transform: Affine | None = None,
    nodata: float | None = None,
    blocksize: int = 512,
    compress: str = "DEFLATE",
    predictor: int | None = 2,
    overviews: int = 0,
    sparse: bool = False,
    scales: Sequence[float] | None = None,
    offsets: Sequence[float] | None = None,
    **options: Any,
) -> Path:
    """Write ``data`` ``(bands, rows, cols)`` as a COG with GDAL's COG driver."""
    data = np.asarray(data)
    if data.ndim == 2:
        data = data[np.newaxis]
    count, height, width = data.shape
    transform = transform or Affine(10.0, 0.0, 300000.0, 0.0, -10.0, 5000000.0)
    tmp = path.with_suffix(".src.tif")
    with rasterio.open(
        tmp,
        "w",
        driver="GTiff",
        width=width,
        height=height,
        count=count,
        dtype=data.dtype,
        crs=crs,
        transform=transform,
        nodata=nodata,
    ) as dst:
        dst.write(data)
        if scales is not None:
            dst.scales = tuple(scales)
        if offsets is not None:
            dst.offsets = tuple(offsets)
    creation: dict[str, Any] = {
        "BLOCKSIZE": blocksize,
        "COMPRESS": compress,
        "OVERVIEWS": "AUTO" if overviews else "NONE",
    }
    if overviews:
        creation["OVERVIEW_COUNT"] = overviews
        creation["OVERVIEW_RESAMPLING"] = "NEAREST"
    if predictor is not None and compress.upper() in ("DEFLATE", "LZW", "ZSTD"):
        creation["PREDICTOR"] = predictor
    if sparse:
        creation["SPARSE_OK"] = "TRUE"
    creation.update(options)
    rasterio.shutil.copy(tmp, path, driver="COG", **creation)
    tmp.unlink()
    return path


def write_ramp_cog(
    path: Path,
    *,
    count: int = 1,
    crs: str = "EPSG:32633",
    origin: tuple[float, float] = (400000.0, 5000000.0),
    res: float = 10.0,
    size: tuple[int, int] = (600, 500),
    dtype: str = "uint16",
    modulus: int = 997,
) -> Path:
    """A COG of ``count`` bands of ``arange % modulus`` written directly by GDAL's COG driver
    (256-px tiles, deflate, overviews), ``size`` = (width, height) px of ``res`` at
    ``origin`` (top left)."""
    width, height = size
    data = (np.arange(count * width * height) % modulus).reshape(count, height, width).astype(dtype)
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(
        path,
        "w",
        driver="COG",
        width=width,
        height=height,
        count=count,
        dtype=dtype,
        crs=crs,
        transform=from_origin(*origin, res, res),
        blocksize=256,
        compress="deflate",
    ) as dst:
        dst.write(data)
    return path


def write_gtiff(path: Path, data: np.ndarray, **profile: Any) -> Path:
    """Write ``data`` with the GTiff driver and explicit creation options (strips, JPEG...)."""
    data = np.asarray(data)
    if data.ndim == 2:
        data = data[np.newaxis]
    count, height, width = data.shape
    base = {
        "driver": "GTiff",
        "width": width,
        "height": height,
        "count": count,
        "dtype": data.dtype,
        "crs": "EPSG:32633",
        "transform": Affine(10.0, 0.0, 300000.0, 0.0, -10.0, 5000000.0),
    }
    base.update(profile)
    with rasterio.open(path, "w", **base) as dst:
        dst.write(data)
    return path


def smooth_image(shape: tuple[int, ...], dtype: str = "uint16", seed: int = 0) -> np.ndarray:
    """Deterministic, compressible but non-trivial test data."""
    rng = np.random.default_rng(seed)
    *_lead, rows, cols = shape
    y, x = np.mgrid[0:rows, 0:cols]
    base = (np.sin(x / 37.0) + np.cos(y / 23.0) + 2.0) * 1000.0
    out = np.empty(shape, dtype=np.float64)
    flat = out.reshape(-1, rows, cols)
    for k in range(flat.shape[0]):
        flat[k] = base + k * 100 + rng.integers(0, 50, size=(rows, cols))
    if np.dtype(dtype).kind == "u" and np.dtype(dtype).itemsize == 1:
        out = out / out.max() * 250
    return out.astype(dtype)


# ----------------------------------------------------------------------------- indexing


def band_struct(path: Path, band_index: int = 0) -> dict[str, Any]:
    """The ``{band}_metadata`` struct of one sample of a local TIFF."""
    header = parse_header(Path(path).read_bytes(), str(path))
    return band_metadata_from_header(header, band_index)


def record(
    record_id: str,
    when: dt.datetime,
    assets: Mapping[str, tuple[Path, int] | Path],
    *,
    href_of: Any = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One record: ``assets`` maps band → local path (or (path, band_index)).

    ``href_of(path)`` gives the href stored in the index (default: the local path).
    """
    row: dict[str, Any] = {"id": record_id, "datetime": when, "assets": {}, "metadata": {}}
    for band, value in assets.items():
        path, index = value if isinstance(value, tuple) else (value, 0)
        href = href_of(path) if href_of is not None else str(path)
        row["assets"][band] = {"href": href, "band_index": index}
        row["metadata"][band] = band_struct(path, index)
    row.update(extra or {})
    return row


def make_table(records: Sequence[Mapping[str, Any]], bands: Sequence[str]) -> pa.Table:
    """A collection table from :func:`record` dicts (bands missing in a record are null)."""
    asset_type = pa.struct(
        [(b, pa.struct([("href", pa.string()), ("band_index", pa.int64())])) for b in bands]
    )
    columns: dict[str, pa.Array] = {
        "id": pa.array([r["id"] for r in records], pa.string()),
        "datetime": pa.array([r["datetime"] for r in records], pa.timestamp("us", tz="UTC")),
    }
    boxes, bboxes = [], []
    for r in records:
        box = _footprint(r)
        boxes.append(shapely.to_wkb(box))
        xmin, ymin, xmax, ymax = box.bounds
        bboxes.append({"xmin": xmin, "ymin": ymin, "xmax": xmax, "ymax": ymax})
    columns["geometry"] = pa.array(boxes, pa.binary())
    columns["bbox"] = pa.array(bboxes, BBOX_TYPE)
    columns["assets"] = pa.array(
        [{b: r["assets"].get(b) for b in bands} for r in records], asset_type
    )
    for band in bands:
        columns[f"{band}_metadata"] = pa.array(
            [r["metadata"].get(band) for r in records], BAND_METADATA_TYPE
        )
    extra_keys = sorted({k for r in records for k in r} - {"id", "datetime", "assets", "metadata"})
    for key in extra_keys:
        columns[key] = pa.array([r.get(key) for r in records])
    return pa.table(columns)


def make_collection(records: Sequence[Mapping[str, Any]], bands: Sequence[str]) -> Collection:
    return as_collection(make_table(records, bands), name="test")


def _footprint(r: Mapping[str, Any]) -> shapely.Geometry:
    from pyproj import CRS, Transformer

    for meta in r["metadata"].values():
        if meta is None or meta.get("transform") is None:
            continue
        a, _b, c, _d, e, f = meta["transform"]
        w, h = meta["image_width"], meta["image_height"]
        xs = [c, c + a * w, c, c + a * w]
        ys = [f, f, f + e * h, f + e * h]
        crs = CRS.from_wkt(meta["crs_wkt"]) if meta.get("crs_wkt") else None
        if crs is not None:
            try:
                t = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
                xs, ys = t.transform(xs, ys)
            except Exception:  # non-Earth CRS: any footprint will do for these tests
                return shapely.box(0, 0, 1, 1)
        return shapely.box(min(xs), min(ys), max(xs), max(ys))
    return shapely.box(0, 0, 1, 1)


def gdal_bbox(path: Path) -> tuple[float, float, float, float]:
    """GDAL's CRS84 bounds of a file (edges densified with 21 points)."""
    with rasterio.open(path) as src:
        return transform_bounds(src.crs, CRS84, *src.bounds, densify_pts=21)


def rasterio_read(path: Path, *, overview_level: int | None = None, **kwargs: Any) -> np.ndarray:
    """The oracle: ``rasterio.open(path).read()``."""
    options = {} if overview_level is None else {"overview_level": overview_level}
    with rasterio.open(path, **options) as src:
        return src.read(**kwargs)


#: A UTM 33N origin on the 32N / 33N boundary (lon 12), and the side of the scenes there.
ZONE_EDGE_ORIGIN = (270_000.0, 5_212_000.0)
ZONE_EDGE_SIZE = 300


def zone_edge_scenes(
    root: Path, image: Any = None, *, nodata: float | None = None
) -> tuple[Collection, dict[int, Path], tuple[float, float, float, float]]:
    """One 10 m scene per UTM zone over the same ground at lon 12 (33N first, 32N snapped
    to its own 10 m grid), ``image(k)`` (default a smooth uint16 image, seed ``k``) as
    128-px COGs; records ``r32633`` / ``r32632`` a day apart, band ``B1``. Returns the
    collection, the paths by EPSG code and the 33N scene's bounds."""
    from rasteret.geo.transform import transform_bounds as project_bounds

    size = ZONE_EDGE_SIZE
    x, y = ZONE_EDGE_ORIGIN
    bounds_33 = (x, y - 10 * size, x + 10 * size, y)
    west, _, _, north = project_bounds(bounds_33, "EPSG:32633", "EPSG:32632")
    origin_32 = (west // 10 * 10, north // 10 * 10 + 10)
    paths = {}
    for k, (epsg, (ox, oy)) in enumerate([(32633, ZONE_EDGE_ORIGIN), (32632, origin_32)]):
        data = smooth_image((size, size), seed=k) if image is None else image(k)
        paths[epsg] = write_cog(
            root / f"z{epsg}.tif",
            data,
            crs=f"EPSG:{epsg}",
            transform=Affine(10.0, 0.0, ox, 0.0, -10.0, oy),
            nodata=nodata,
            blocksize=128,
        )
    when = dt.datetime(2024, 5, 1, tzinfo=dt.UTC)
    records = [
        record(f"r{epsg}", when + dt.timedelta(days=k), {"B1": path})
        for k, (epsg, path) in enumerate(paths.items())
    ]
    return make_collection(records, ["B1"]), paths, bounds_33
