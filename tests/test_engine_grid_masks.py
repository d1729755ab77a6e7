"""Internal masks (a GDAL mask band stored in the COG) on the engine's target grid: a pixel
its record's mask clears reads as the record's nodata, exactly as GDAL's warp of the file
(``rasterio.warp.reproject`` of the band honours its per-dataset mask) — on the same
lattice (a copy), shifted by a fraction of a pixel (a block copy), in another CRS (the
nearest gather) and with a resampling kernel; read over HTTP. With ``mask_and_scale=True``
a pixel without data is NaN, on target grids and native grids alike."""

from __future__ import annotations

import datetime as dt
from datetime import UTC
from pathlib import Path

import numpy as np
import pytest
import rasterio
import xarray as xr
from affine import Affine
from rasterio.warp import Resampling, reproject

from _testcollections import make_collection, record
from rasteret.geo import GridSpec
from rasteret.testing.objserver import ObjectServer

ORIGIN = (300000.0, 5000000.0)
SIZE = 96
NODATA = 7  # the second record's declared nodata


def _masked_cog(
    path: Path, data: np.ndarray, mask: np.ndarray | None, nodata: float | None
) -> Path:
    """A tiled GeoTIFF written by GDAL with an internal (per-dataset) mask: 32-px deflate
    tiles, no overviews (GDAL's ``reproject`` of a band reads the full resolution)."""
    profile = {
        "driver": "GTiff", "width": SIZE, "height": SIZE, "count": 1, "dtype": data.dtype,
        "crs": "EPSG:32633", "nodata": nodata, "tiled": True, "blockxsize": 32,
        "blockysize": 32, "compress": "deflate",
        "transform": Affine(10.0, 0.0, ORIGIN[0], 0.0, -10.0, ORIGIN[1]),
    }  # fmt: skip
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), rasterio.open(path, "w", **profile) as dst:
        dst.write(data, 1)
        if mask is not None:
            dst.write_mask(mask)
    return path


@pytest.fixture(scope="module")
def masked(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("gridmasks")
    rng = np.random.default_rng(11)
    paths = []
    # a masked record without nodata, one with nodata, and one without a mask in the same
    # store array as the first (records placed once both of their windows are decoded)
    for k, (nodata, masked) in enumerate(((None, True), (NODATA, True), (None, False))):
        data = rng.integers(10, 1000, (SIZE, SIZE)).astype(np.uint16)
        mask = np.full((SIZE, SIZE), 255, np.uint8)
        mask[10 + 20 * k : 40 + 20 * k, 5:50] = 0  # a cleared block, different per record
        mask[rng.random((SIZE, SIZE)) < 0.05] = 0  # and scattered pixels
        if nodata is not None:
            data[60:70, 60:90] = nodata  # nodata where the mask keeps the pixel
        paths.append(_masked_cog(root / f"m{k}.tif", data, mask if masked else None, nodata))
    when = dt.datetime(2024, 8, 1, 10, tzinfo=UTC)
    with ObjectServer(root) as server:
        rows = [
            record(f"m{k}", when + dt.timedelta(days=k), {"b": p}, href_of=_served(server, root))
            for k, p in enumerate(paths)
        ]
        yield server, make_collection(rows, ["b"]), paths


def _served(server: ObjectServer, root: Path):  # type: ignore[no-untyped-def]
    return lambda path: server.url_for(str(Path(path).relative_to(root)))


def _gdal(path: Path, target: GridSpec, resampling: str) -> np.ndarray:
    """GDAL's warp of the file onto ``target``, filled with the record's nodata (0 without
    one). Without nodata GDAL's warper honours the internal mask itself; with both it
    ignores the mask (it says so), while rasteret treats a pixel as invalid when either
    says so — as its native reads do — so there the oracle warps GDAL's masked read (the
    mask's cleared pixels set to nodata)."""
    with rasterio.open(path) as src:
        fill = src.nodata if src.nodata is not None else 0
        out = np.full(target.shape, fill, np.uint16)
        if src.nodata is None:
            source = rasterio.band(src, 1)
            extra = {}
        else:
            source = np.where(src.read_masks(1) != 0, src.read(1), src.nodata)
            extra = {"src_transform": src.transform, "src_crs": src.crs, "src_nodata": fill}
        reproject(
            source, out, dst_transform=Affine(*target.transform[:6]), dst_crs=target.crs,
            dst_nodata=fill, resampling=Resampling[resampling], **extra,
        )  # fmt: skip
    return out


def _targets() -> dict[str, tuple[GridSpec, str]]:
    left, top = ORIGIN
    lattice = (left - 40, top - 700, left + 600, top + 30)  # reaches past the scene
    shifted = (left + 3, top - 903, left + 903, top - 3)  # 3 m off the lattice
    return {
        "same lattice": (GridSpec.from_bbox(lattice, "EPSG:32633", 10), "nearest"),
        "sub-pixel shift": (GridSpec.from_bbox(shifted, "EPSG:32633", 10), "nearest"),
        "other CRS": (GridSpec.from_bbox(_lonlat_box(), "EPSG:4326", 0.0001), "nearest"),
        "bilinear": (GridSpec.from_bbox(shifted, "EPSG:32633", 20), "bilinear"),
    }


def _lonlat_box() -> tuple[float, float, float, float]:
    from rasteret.geo import transform_bounds

    left, top = ORIGIN
    inner = (left + 50, top - SIZE * 10 + 50, left + SIZE * 10 - 50, top - 50)
    return transform_bounds(inner, "EPSG:32633", "EPSG:4326")


@pytest.mark.parametrize("case", list(_targets()))
def test_target_grid_reads_masked_pixels_as_nodata_like_gdal(masked, case: str) -> None:  # type: ignore[no-untyped-def]
    server, collection, paths = masked
    target, resampling = _targets()[case]
    ds = xr.open_dataset(
        collection, engine="rasteret", grid=target, resampling=resampling, chunks={}
    )
    server.reset()
    cube = ds["b"].values
    assert server.requests > 0
    assert cube.shape[0] == 3
    for k, path in enumerate(paths):
        expected = _gdal(path, target, resampling)
        if k < 2:
            cleared = (expected == (NODATA if k else 0)).mean()
            assert cleared > 0.05, "the case must show masked pixels"
        np.testing.assert_array_equal(cube[k], expected, err_msg=f"{case}: record {k}")


@pytest.mark.parametrize("case", ["same lattice", "other CRS"])
def test_mask_and_scale_on_a_target_grid_is_nan_where_a_record_has_no_data(
    masked,  # type: ignore[no-untyped-def]
    case: str,
) -> None:
    """Float, NaN where GDAL's warp has no value (masked, the record's nodata, outside its
    grid) — also for the records without a nodata, which read 0 there before."""
    _, collection, paths = masked
    target, resampling = _targets()[case]
    ds = xr.open_dataset(collection, engine="rasteret", grid=target, mask_and_scale=True)
    cube = ds["b"].values
    assert cube.dtype == np.float32
    for k, path in enumerate(paths):
        expected = _gdal(path, target, resampling).astype(np.float32)
        expected[expected == (NODATA if k == 1 else 0)] = np.nan  # valid data are >= 10
        if k < 2 or case == "same lattice":  # masked, or reaching past the scene
            assert np.isnan(expected).mean() > 0.05
        np.testing.assert_array_equal(cube[k], expected, err_msg=f"{case}: record {k}")


def test_mask_and_scale_on_the_native_grid_applies_the_internal_mask(masked) -> None:  # type: ignore[no-untyped-def]
    """NaN where rasterio's masked read has no value: the mask's cleared pixels and the
    record's nodata; the raw dataset keeps the values and the mask as ``b_mask``."""
    _, collection, paths = masked
    raw = xr.open_dataset(collection, engine="rasteret")
    decoded = xr.open_dataset(collection, engine="rasteret", mask_and_scale=True)
    assert "b_mask" in raw and decoded["b"].dtype == np.float32
    for k, path in enumerate(paths):
        with rasterio.open(path) as src:
            values = src.read(1)
            invalid = src.read_masks(1) == 0
            if src.nodata is not None:
                invalid |= values == src.nodata
        np.testing.assert_array_equal(raw["b"].values[k], values)
        expected = np.where(invalid, np.nan, values.astype(np.float32))
        np.testing.assert_array_equal(decoded["b"].values[k], expected)
        assert invalid.any() == (k < 2)


@pytest.mark.parametrize("case", list(_targets()))
def test_get_numpy_on_a_target_grid_honours_internal_masks_like_gdal(masked, case: str) -> None:  # type: ignore[no-untyped-def]
    """The AOI reads onto a target grid (``get_numpy(grid=...)``: one batch, each record's
    pixels decoded or warped straight into its slot as they arrive) clear what each
    record's mask clears, and keep every other pixel GDAL's warp has: the data where
    valid, the fill (the record's nodata, else 0) where not."""
    import shapely

    server, collection, paths = masked
    target, resampling = _targets()[case]
    server.reset()
    stack = collection.get_numpy(
        shapely.box(*target.bounds), ["b"], geometry_crs=target.crs, grid=target,
        resampling=resampling,
    )  # fmt: skip
    assert server.requests > 0 and stack.grids[0] == target
    assert stack.shape == (3, *target.shape)  # one band: (records, h, w)
    order = stack.records["record_id"].to_pylist()
    assert order == ["m0", "m1", "m2"]
    for k, path in enumerate(paths):
        expected = _gdal(path, target, resampling)
        fill = NODATA if k == 1 else 0
        valid = stack.mask[k]
        if k < 2:
            assert (~valid).mean() > 0.05, "the case must show masked pixels"
        np.testing.assert_array_equal(valid, expected != fill, err_msg=f"{case}: record {k}")
        np.testing.assert_array_equal(
            stack.data[k][valid], expected[valid], err_msg=f"{case}: record {k}"
        )


def test_get_numpy_on_a_target_grid_fills_outside_the_geometry_and_absent_bands(masked) -> None:  # type: ignore[no-untyped-def]
    """A triangle in another CRS, two bands, one of them absent from the second record:
    every pixel outside the triangle, masked by the record or without the band is
    invalid and holds ``fill_value``; the others hold GDAL's warp of the file."""
    import shapely

    server, _, paths = masked
    root = paths[0].parent
    when = dt.datetime(2024, 8, 1, 10, tzinfo=UTC)
    rows = [
        record("p", when, {"b": paths[0], "c": paths[2]}, href_of=_served(server, root)),
        record("q", when + dt.timedelta(days=1), {"b": paths[1]}, href_of=_served(server, root)),
    ]
    collection = make_collection(rows, ["b", "c"])
    target, _ = _targets()["other CRS"]
    left, bottom, right, top = target.bounds
    triangle = shapely.Polygon([(left, bottom), (right, bottom), (left, top)])
    stack = collection.get_numpy(
        triangle, ["b", "c"], geometry_crs=target.crs, grid=target, fill_value=3
    )
    assert stack.shape == (2, 2, *target.shape)
    from rasteret.geo import geometry_mask

    inside = geometry_mask([triangle], target, invert=True)
    assert 0.3 < inside.mean() < 0.7
    cases = {(0, 0): paths[0], (0, 1): paths[2], (1, 0): paths[1], (1, 1): None}
    for (k, c), path in cases.items():
        valid, data = stack.mask[k, c], stack.data[k, c]
        if path is None:  # the band is absent from the record
            assert not valid.any() and (data == 3).all()
            continue
        expected = _gdal(path, target, "nearest")
        has = inside & (expected != (NODATA if k == 1 else 0))
        np.testing.assert_array_equal(valid, has, err_msg=f"record {k}, band {c}")
        np.testing.assert_array_equal(data[has], expected[has])
        assert (data[~has] == 3).all(), f"record {k}, band {c}: fill where invalid"
