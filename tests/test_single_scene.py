"""``xr.open_dataset("scene.tif", engine="rasteret")``: one GeoTIFF (local or a URL) on
its own grid: every band equals rasterio's read, coordinates / CRS / transform equal
rioxarray's, the header is read once (object-server request log), overviews are groups
of ``open_datatree``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
import rioxarray
import xarray as xr
from rasterio.transform import from_origin

from _testcollections import rasterio_read, smooth_image, write_cog
from rasteret.backend import RasteretBackendEntrypoint
from rasteret.backend.scene import looks_like_scene
from rasteret.errors import ObjectNotFoundError, TiffError
from rasteret.testing.objserver import ObjectServer

NAME = "scene_20240315.tif"


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three uint16 bands, 700 x 600 px, 256 px tiles, two overviews, nodata, scale."""
    root = tmp_path_factory.mktemp("scene")
    return write_cog(
        root / NAME,
        smooth_image((3, 600, 700), seed=3),
        crs="EPSG:32632",
        transform=from_origin(600000.0, 5300000.0, 20.0, 20.0),
        nodata=0,
        blocksize=256,
        overviews=2,
        scales=[0.5, 1.0, 1.0],
        offsets=[-10.0, 0.0, 0.0],
    )


def test_scene_names_without_io_and_never_claimed_without_engine() -> None:
    """``looks_like_scene`` recognises GeoTIFF names without I/O; the engine still does not
    claim them (``xr.open_dataset("x.tif")`` without ``engine=`` stays rioxarray's)."""
    engine = RasteretBackendEntrypoint()
    for name in ("a.tif", "B.TIFF", "https://host/x/y.tif?sig=abc", "s3://bucket/k/scene.tif"):
        assert looks_like_scene(name), name
        assert not engine.guess_can_open(name), name
    assert looks_like_scene(Path("/nowhere/missing.tif"))  # no I/O: a name is enough
    for name in ("a.nc", "a.tif.aux.xml", "https://host/a.tif/", "s3://bucket/tif", 42):
        assert not looks_like_scene(name), name


def test_local_scene_equals_rasterio_and_rioxarray(scene: Path) -> None:
    ds = xr.open_dataset(scene, engine="rasteret")
    assert list(ds.data_vars) == ["b1", "b2", "b3"]
    assert "id" not in ds.coords and ds["time"].values == np.datetime64("2024-03-15")
    expected = rasterio_read(scene)
    for k, band in enumerate(ds.data_vars):
        assert ds[band].dims == ("y", "x") and ds[band].dtype == np.uint16
        np.testing.assert_array_equal(ds[band].values, expected[k])
    rio = rioxarray.open_rasterio(scene)
    np.testing.assert_array_equal(ds.x.values, rio.x.values)
    np.testing.assert_array_equal(ds.y.values, rio.y.values)
    assert ds.b1.rio.crs == rio.rio.crs
    assert ds.b1.rio.transform() == rio.rio.transform()
    assert ds.b1.rio.nodata == rio.rio.nodata == 0
    with rasterio.open(scene) as src:  # scale / offset: scalar coordinates, raw values
        assert float(ds.b1_scale_factor) == src.scales[0]
        assert float(ds.b1_add_offset) == src.offsets[0]
    scaled = xr.open_dataset(scene, engine="rasteret", bands=["b1"], mask_and_scale=True)
    assert list(scaled.data_vars) == ["b1"]
    valid = expected[0] != 0
    np.testing.assert_allclose(scaled.b1.values[valid], expected[0][valid] * 0.5 - 10.0)
    assert np.isnan(scaled.b1.values[~valid]).all()


def test_scene_with_dask_chunks_and_overviews(scene: Path) -> None:
    ds = xr.open_dataset(scene, engine="rasteret", chunks={})
    assert ds.b2.chunks is not None and ds.b2.encoding["chunks"] == (256, 256)
    assert set(ds.b2.encoding["preferred_chunks"]) == {"y", "x"}
    np.testing.assert_array_equal(ds.b2.compute().values, rasterio_read(scene, indexes=2))
    tree = xr.open_datatree(scene, engine="rasteret")
    groups = sorted(tree.groups)
    assert len(groups) == 4  # root, full resolution, two overviews
    for level, name in enumerate(groups[2:]):
        overview = tree[name].to_dataset()
        assert overview.b3.dims == ("y", "x")
        np.testing.assert_array_equal(
            overview.b3.values, rasterio_read(scene, overview_level=level, indexes=3)
        )
    opened = xr.open_dataset(scene, engine="rasteret", overview_level=1)
    np.testing.assert_array_equal(opened.b1.values, rasterio_read(scene, overview_level=1)[0])


def test_url_scene_reads_its_header_once(scene: Path) -> None:
    with ObjectServer(scene.parent) as server:
        ds = xr.open_dataset(server.url_for(NAME), engine="rasteret")
        opening = server.records()
        assert len(opening) == 1 and opening[0].start == 0  # one prefix request: the header
        server.reset()
        loaded = ds.load()
        reads = server.records()
        assert reads and all(r.start is not None and r.start > 0 for r in reads)  # tiles only
        for k, band in enumerate(("b1", "b2", "b3")):
            np.testing.assert_array_equal(loaded[band].values, rasterio_read(scene)[k])
        assert ds.attrs["rasteret_source"] == server.url_for(NAME)


def test_missing_and_broken_scenes_raise_naming_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.tif"
    with pytest.raises(ObjectNotFoundError, match=r"missing\.tif"):
        xr.open_dataset(missing, engine="rasteret")
    broken = tmp_path / "broken.tif"
    broken.write_bytes(b"not a tiff at all" * 10)
    with pytest.raises(TiffError, match=r"broken\.tif"):
        xr.open_dataset(broken, engine="rasteret")
