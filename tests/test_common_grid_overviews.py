"""``get_numpy(..., target_crs=, resolution=)`` on a target coarser than the data reads
the overview GDAL would choose (the same planning as ``read_window``), over HTTP from the
object server: the bytes fetched are about the overview's, and the pixels equal GDAL's
on that overview level.

Oracles: the level follows GDAL's ``GDALBandGetBestOverviewLevel2`` rule
(``rasteret.geo.overview.choose_overview``); for a same-CRS target at exactly the
overview's resolution the pixels equal ``rasterio``'s ``src.read(out_shape=...)``, where
GDAL's RasterIO picks the overview itself; for warped targets they equal
``rasterio.warp.reproject`` of the overview level read with
``rasterio.open(path, overview_level=k)`` (``reproject`` of an array never reads
overviews, so it is given the level GDAL would pick).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
import shapely
from rasterio.enums import Resampling
from rasterio.warp import reproject

from rasteret.geo import GridSpec, transform_bounds
from rasteret.ingest import build_from_files
from rasteret.read.aoi import get_numpy
from rasteret.samples import make_sentinel2_like


@pytest.fixture
def served(object_server, tmp_path: Path):  # type: ignore[no-untyped-def]
    records = make_sentinel2_like(
        tmp_path, scenes=1, size=1024, bands=("B04",), zones=(32632,), overviews=(2, 4, 8)
    )
    href = records[0]["hrefs"]["B04"]
    url = object_server.url_for(str(Path(href).relative_to(tmp_path.resolve())))
    collection = build_from_files(
        [url],
        name="ovr",
        workspace_dir=tmp_path / "workspace",
        group_by=lambda u: (u.rsplit("/", 2)[-2], u.rsplit("/", 1)[-1].split(".")[0]),
    )
    return object_server, collection, records[0], href


def _level_bytes(collection, level: int | None) -> int:  # type: ignore[no-untyped-def]
    levels = collection.band_levels("B04")[0]
    chosen = levels.full if level is None else levels.overviews[level]
    return int(chosen.byte_counts.sum())


def _reproject_level(href: str, level: int, grid: GridSpec, resampling: str) -> np.ndarray:
    with rasterio.open(href, overview_level=level) as src:
        data, transform, crs = src.read(1), src.transform, src.crs
    out = np.zeros(grid.shape, data.dtype)
    reproject(
        data,
        out,
        src_transform=transform,
        src_crs=crs,
        dst_transform=rasterio.Affine(*grid.transform),
        dst_crs=grid.crs.to_wkt(),
        resampling=getattr(Resampling, resampling),
        src_nodata=0,
        dst_nodata=0,
    )
    return out


def test_coarse_same_crs_read_fetches_the_overview(served) -> None:  # type: ignore[no-untyped-def]
    server, collection, record, href = served
    a, b, c, d, e, f = record["transform"]
    grid = GridSpec("EPSG:32632", (4 * a, b, c, d, 4 * e, f), (256, 256))  # the x4 grid
    aoi = shapely.box(*grid.bounds)
    server.reset()
    coarse = get_numpy(collection, aoi, "B04", geometry_crs=32632, grid=grid, resampling="average")
    coarse_bytes = server.bytes_sent
    assert coarse.shape == (1, 256, 256) and coarse.dtype == np.uint16
    overview_x4 = _level_bytes(collection, 1)
    full = _level_bytes(collection, None)
    assert coarse_bytes <= overview_x4 * 1.1 + 4096, (coarse_bytes, overview_x4)
    assert coarse_bytes < full / 8
    # GDAL's RasterIO picks the x4 overview itself for this read
    with rasterio.open(href) as src:
        gdal = src.read(1, out_shape=(256, 256), resampling=Resampling.average)
    np.testing.assert_array_equal(coarse.data[0], gdal)

    server.reset()
    forced = get_numpy(
        collection,
        aoi,
        "B04",
        geometry_crs=32632,
        grid=grid,
        resampling="average",
        overviews=False,
    )
    assert server.bytes_sent > 4 * coarse_bytes  # the whole full-resolution image
    assert forced.shape == coarse.shape


@pytest.mark.parametrize(
    ("resolution", "resampling", "level"),
    [(40, "average", 1), (40, "mode", 1), (35, "nearest", 1), (25, "bilinear", 0)],
)
def test_warped_coarse_read_equals_gdal_on_that_level(  # type: ignore[no-untyped-def]
    served, resolution: float, resampling: str, level: int
) -> None:
    """Into the next UTM zone: the level GDAL's rule picks (x4 for 40 m average and
    mode, x4 for 35 m nearest thanks to its 1.2 oversampling threshold, x2 for 25 m
    bilinear), warped exactly as GDAL warps that level."""
    server, collection, record, href = served
    inner = shapely.box(*record["bounds"]).buffer(-1500)
    server.reset()
    stack = get_numpy(
        collection,
        inner,
        "B04",
        geometry_crs=32632,
        target_crs="EPSG:32633",
        resolution=resolution,
        resampling=resampling,
    )
    fetched = server.bytes_sent
    assert fetched <= _level_bytes(collection, level) * 1.1 + 4096
    grid = stack.grids[0]
    gdal = _reproject_level(href, level, grid, resampling)
    inside = stack.mask[0]
    assert inside.mean() > 0.5
    ours = stack.data[0]
    if resampling == "bilinear":  # documented: downsampling bilinear within a few DN
        assert np.percentile(np.abs(ours[inside].astype(int) - gdal[inside]), 99) <= 12
    elif resampling == "nearest":
        assert (ours[inside] == gdal[inside]).mean() >= 0.999
    else:  # area kernels: bit-identical to GDAL on the same level
        np.testing.assert_array_equal(ours[inside], gdal[inside])
    # and not the full-resolution answer, which differs on many pixels
    if resampling == "average":
        with rasterio.open(href) as src:
            data = src.read(1)
            out = np.zeros(grid.shape, data.dtype)
            reproject(
                data,
                out,
                src_transform=src.transform,
                src_crs=src.crs,
                dst_transform=rasterio.Affine(*grid.transform),
                dst_crs="EPSG:32633",
                resampling=Resampling.average,
                src_nodata=0,
                dst_nodata=0,
            )
        assert (out[inside] != ours[inside]).mean() > 0.05


def test_target_at_native_resolution_reads_full_resolution(served) -> None:  # type: ignore[no-untyped-def]
    server, collection, record, _ = served
    bounds = transform_bounds(record["bounds"], "EPSG:32632", "EPSG:32633")
    aoi = shapely.box(*bounds).buffer(-3000)
    server.reset()
    get_numpy(collection, aoi, "B04", geometry_crs=32633, target_crs="EPSG:32633", resolution=10)
    assert server.bytes_sent > _level_bytes(collection, 0)  # more than the x2 overview
