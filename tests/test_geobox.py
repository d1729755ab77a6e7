"""odc-geo interop: ``GeoBox`` ⇄ ``GridSpec`` round trips, ``affine`` conversions, and
reads onto a GeoBox (engine ``geobox=`` / ``like=``, ``get_numpy`` / ``get_xarray``
``grid=`` / ``like=``) against the equivalent GridSpec and rasterio window reads."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
import rasterio.transform
import shapely
import xarray as xr
from affine import Affine
from odc.geo.geobox import GeoBox
from rasterio.windows import Window as RioWindow

from _testcollections import make_collection, record, smooth_image, write_cog
from rasteret.geo import GridError, GridSpec

T0 = dt.datetime(2024, 6, 1, 10, 30)
NATIVE = Affine(10.0, 0.0, 300000.0, 0.0, -10.0, 5000000.0)
CUSTOM_WKT = (
    'PROJCRS["custom LAEA",BASEGEOGCRS["WGS 84",DATUM["World Geodetic System 1984",'
    'ELLIPSOID["WGS 84",6378137,298.257223563]]],CONVERSION["LAEA",METHOD["Lambert '
    'Azimuthal Equal Area",ID["EPSG",9820]],PARAMETER["Latitude of natural origin",52,'
    'ANGLEUNIT["degree",0.0174532925199433]],PARAMETER["Longitude of natural origin",10,'
    'ANGLEUNIT["degree",0.0174532925199433]],PARAMETER["False easting",4321000,'
    'LENGTHUNIT["metre",1]],PARAMETER["False northing",3210000,LENGTHUNIT["metre",1]]],'
    'CS[Cartesian,2],AXIS["easting",east,ORDER[1],LENGTHUNIT["metre",1]],'
    'AXIS["northing",north,ORDER[2],LENGTHUNIT["metre",1]]]'
)


@pytest.fixture(scope="module")
def scenes(tmp_path_factory: pytest.TempPathFactory) -> tuple[object, list[Path]]:
    """Two records of one band on one 10 m UTM grid (600 x 500 px, 256 px tiles)."""
    root = tmp_path_factory.mktemp("geobox")
    paths = []
    for k in range(2):
        path = root / f"s{k}.tif"
        write_cog(path, smooth_image((1, 500, 600), seed=k), transform=NATIVE, blocksize=256)
        paths.append(path)
    records = [record(f"s{k}", T0 + dt.timedelta(days=k), {"B1": p}) for k, p in enumerate(paths)]
    return make_collection(records, ["B1"]), paths


def _crop_geobox() -> GeoBox:
    """An aligned crop of the native grid: rows 100-219, cols 130-299 (crosses tiles)."""
    return GeoBox((120, 170), NATIVE @ Affine.translation(130, 100), "EPSG:32633")


def _rasterio_window(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read(1, window=RioWindow(130, 100, 170, 120))


@pytest.mark.parametrize(
    "geobox",
    [
        GeoBox((30, 40), Affine(10, 0, 300000, 0, -10, 5000000), "EPSG:32633"),
        GeoBox.from_bbox((11.0, 46.0, 12.5, 47.25), "EPSG:4326", resolution=0.05),
        GeoBox((7, 9), Affine(8.0, 6.0, 1000.0, 6.0, -8.0, 2000.0), "EPSG:3857"),  # rotated
        GeoBox((12, 11), Affine(100, 0, 4321000, 0, -100, 3210000), CUSTOM_WKT),
    ],
    ids=["utm", "lonlat", "rotated", "custom-wkt"],
)
def test_geobox_round_trips_through_gridspec(geobox: GeoBox) -> None:
    grid = GridSpec.from_geobox(geobox)
    assert grid.shape == (geobox.shape.y, geobox.shape.x)
    assert grid.affine == geobox.affine and grid.transform == tuple(geobox.affine)[:6]
    assert grid.crs == geobox.crs.proj
    back = grid.to_geobox()
    assert back == geobox
    assert (back.crs, back.affine, back.shape) == (geobox.crs, geobox.affine, geobox.shape)
    if grid.is_axis_aligned:
        (ydim, xdim) = geobox.dims
        np.testing.assert_allclose(grid.coords["x"], geobox.coords[xdim].values, rtol=0, atol=1e-9)
        np.testing.assert_allclose(grid.coords["y"], geobox.coords[ydim].values, rtol=0, atol=1e-9)


def test_affine_conversions_match_rasterio() -> None:
    grid = GridSpec.from_affine("EPSG:32633", NATIVE, (500, 600))
    assert grid == GridSpec("EPSG:32633", (10.0, 0.0, 300000.0, 0.0, -10.0, 5000000.0), (500, 600))
    assert isinstance(grid.affine, Affine) and grid.affine == NATIVE
    rows, cols = np.array([0, 17, 499]), np.array([0, 333, 599])
    xs, ys = rasterio.transform.xy(grid.affine, rows, cols)  # pixel centres
    ours_x, ours_y = grid.pixel_to_xy(cols + 0.5, rows + 0.5)
    np.testing.assert_array_equal(ours_x, xs)
    np.testing.assert_array_equal(ours_y, ys)
    assert grid.bounds == rasterio.transform.array_bounds(500, 600, grid.affine)[:4]
    with pytest.raises(GridError, match="singular"):
        GridSpec.from_affine("EPSG:32633", Affine(0, 0, 0, 0, 0, 0), (2, 2))


def test_odc_geo_is_not_imported_by_rasteret() -> None:
    code = (
        "import sys, rasteret, rasteret.geo.grid, rasteret.geo.odc, rasteret.backend.entrypoint;"
        "import rasteret.read.aoi_engine, rasteret.read.window;"
        "from rasteret.geo import GridSpec; GridSpec('EPSG:4326', (1, 0, 0, 0, -1, 0), (2, 2));"
        "assert not [m for m in sys.modules if m.startswith('odc')], 'odc imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_engine_reads_onto_a_geobox(scenes) -> None:  # type: ignore[no-untyped-def]
    collection, paths = scenes
    geobox = _crop_geobox()
    on_geobox = xr.open_dataset(collection, engine="rasteret", geobox=geobox).load()
    on_grid = xr.open_dataset(collection, engine="rasteret", grid=GridSpec.from_geobox(geobox))
    xr.testing.assert_identical(on_geobox, on_grid.load())
    np.testing.assert_array_equal(on_geobox.x.values, geobox.coords["x"].values)
    np.testing.assert_array_equal(on_geobox.y.values, geobox.coords["y"].values)
    for t, path in enumerate(paths):  # aligned crop: exactly GDAL's window read
        np.testing.assert_array_equal(on_geobox.B1.isel(time=t).values, _rasterio_window(path))
    # like=: a GeoBox, or an xarray object with a CRS (here the dataset just read)
    for like in (geobox, on_geobox):
        same = xr.open_dataset(collection, engine="rasteret", like=like)
        xr.testing.assert_identical(same.load(), on_geobox)
    assert GridSpec.from_xarray(on_geobox) == GridSpec.from_geobox(geobox)


def test_engine_reprojects_onto_a_geobox_like_onto_its_gridspec(scenes) -> None:  # type: ignore[no-untyped-def]
    collection, _ = scenes
    geobox = GeoBox.from_bbox((300500, 4996000, 305000, 4999500), "EPSG:32633", resolution=25)
    geobox = geobox.to_crs("EPSG:32632")  # another zone, another resolution
    on_geobox = xr.open_dataset(collection, engine="rasteret", geobox=geobox).load()
    on_grid = xr.open_dataset(collection, engine="rasteret", grid=GridSpec.from_geobox(geobox))
    xr.testing.assert_identical(on_geobox, on_grid.load())
    assert on_geobox.B1.shape == (2, geobox.shape.y, geobox.shape.x)
    assert (on_geobox.B1.values > 0).mean() > 0.5  # the scenes cover most of it
    np.testing.assert_array_equal(on_geobox.x.values, geobox.coords["x"].values)


def test_get_numpy_and_get_xarray_onto_a_geobox(scenes) -> None:  # type: ignore[no-untyped-def]
    collection, paths = scenes
    geobox = _crop_geobox()
    area = shapely.box(*geobox.extent.boundingbox[:4])
    crs = "EPSG:32633"
    stack = collection.get_numpy([area], "B1", geometry_crs=crs, grid=geobox)
    same = collection.get_numpy([area], "B1", geometry_crs=crs, grid=GridSpec.from_geobox(geobox))
    np.testing.assert_array_equal(stack.data, same.data)
    for t, path in enumerate(paths):
        np.testing.assert_array_equal(stack.data[t], _rasterio_window(path))
    ds = collection.get_xarray([area], "B1", geometry_crs=crs, like=geobox)
    np.testing.assert_array_equal(ds.x.values, geobox.coords["x"].values)
    np.testing.assert_array_equal(ds.y.values, geobox.coords["y"].values)
    np.testing.assert_array_equal(ds.B1.isel(geometry=0).values, stack.data)


def test_target_grid_arguments_are_checked(scenes) -> None:  # type: ignore[no-untyped-def]
    collection, _ = scenes
    geobox = _crop_geobox()
    with pytest.raises(ValueError, match="only one of grid= / geobox="):
        xr.open_dataset(
            collection, engine="rasteret", grid=GridSpec.from_geobox(geobox), geobox=geobox
        )
    with pytest.raises(GridError, match="has no CRS"):
        xr.open_dataset(collection, engine="rasteret", geobox=GeoBox((2, 2), NATIVE, None))
    with pytest.raises(
        TypeError, match=r"like= must be a rasteret\.geo\.GridSpec, an odc\.geo GeoBox"
    ):
        collection.get_numpy([shapely.box(0, 0, 1, 1)], "B1", like=object())
    with pytest.raises(GridError, match="like= the xarray object has no CRS"):
        xr.open_dataset(
            collection,
            engine="rasteret",
            like=xr.Dataset(coords={"x": [1.0, 2.0], "y": [1.0, 2.0]}),
        )
