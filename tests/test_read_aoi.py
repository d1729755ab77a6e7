"""AOI reads (get_numpy / get_xarray) against rasterio.mask.mask and rasterio.warp.reproject."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pyarrow as pa
import pytest
import rasterio
import rasterio.mask
import shapely
from rasterio.transform import from_origin
from rasterio.warp import Resampling, reproject

from _testcollections import make_collection, record, smooth_image, write_cog
from rasteret.errors import BandNotFoundError
from rasteret.geo.grid import GridSpec
from rasteret.read import (
    GeometryCRSError,
    GeometryError,
    NoDataError,
    RaggedShapesError,
    UnsupportedGeometryError,
    get_numpy,
    get_xarray,
    read_aoi_windows,
)
from rasteret.read.result import ImpliedMask

T0 = dt.datetime(2024, 5, 1, 10, 0)
ORIGIN = (300000.0, 5000000.0)


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Two dates of one 10 m grid (uint16, nodata 0 with a nodata border), one 20 m band."""
    root = tmp_path_factory.mktemp("aoi")
    paths = {}
    for k in range(2):
        data = smooth_image((1, 700, 900), seed=k)
        data[0, :, :35] = 0  # nodata border
        data[0, 300:320, 400:460] = 0
        paths[f"b{k}"] = write_cog(
            root / f"b{k}.tif", data, nodata=0, blocksize=256, scales=[1e-4], offsets=[-0.1]
        )
    coarse = smooth_image((1, 350, 450), dtype="uint8", seed=7)
    paths["scl"] = write_cog(
        root / "scl.tif", coarse, transform=from_origin(*ORIGIN, 20, 20), blocksize=256
    )
    records = [
        record(f"r{k}", T0 + dt.timedelta(days=k), {"B1": paths[f"b{k}"], "SCL": paths["scl"]})
        for k in range(2)
    ]
    return {"collection": make_collection(records, ["B1", "SCL"]), "paths": paths}


def _polygons() -> list[shapely.Geometry]:
    x, y = ORIGIN
    return [
        shapely.Polygon(
            [
                (x + 333.3, y - 101.7),
                (x + 2800.1, y - 640.2),
                (x + 1500.5, y - 3900.9),
                (x - 200.0, y - 2000.0),
            ]
        ),  # crosses the western edge and the nodata border
        shapely.box(x + 8500.2, y - 6900.7, x + 9700.0, y - 5555.5),  # partial overlap (SE)
        shapely.MultiPolygon(
            [
                shapely.box(x + 3000.3, y - 3000.2, x + 3400.5, y - 2800.4),
                shapely.Point(x + 4200, y - 3100).buffer(230.7),
            ]
        ),
        shapely.Point(x + 4300, y - 3100).buffer(95.3, quad_segs=3),  # small, near the hole
    ]


@pytest.mark.parametrize("all_touched", [False, True])
def test_native_windows_equal_rasterio_mask(scene: dict, all_touched: bool) -> None:
    polygons = _polygons()
    windows = read_aoi_windows(
        scene["collection"], polygons, "B1", geometry_crs="EPSG:32633", all_touched=all_touched
    )
    assert [(w.record_id, w.geometry_id) for w in windows] == [
        (r, g) for r in ("r0", "r1") for g in range(4)
    ]
    for w in windows:
        with rasterio.open(scene["paths"]["b" + w.record_id[1]]) as src:
            geom = [polygons[w.geometry_id]]
            expected, transform = rasterio.mask.mask(src, geom, crop=True, all_touched=all_touched)
            masked, _ = rasterio.mask.mask(
                src, geom, crop=True, all_touched=all_touched, filled=False
            )
        assert w.data.dtype == np.uint16
        np.testing.assert_array_equal(w.data[0], expected[0])
        assert isinstance(w.validity, ImpliedMask)  # nodata 0 is the fill: no mask array
        np.testing.assert_array_equal(w.mask[0], ~np.ma.getmaskarray(masked)[0])
        assert w.grid.transform == tuple(transform)[:6]


@pytest.mark.parametrize(("bands", "fill_value"), [(["B1"], 9999), (["SCL"], None)])
def test_masks_kept_as_arrays_where_the_pixels_cannot_tell(
    scene: dict, bands: list[str], fill_value: int | None
) -> None:
    """A fill other than the nodata, or a band without nodata (SCL: only the outside of
    the geometry is invalid), keeps the validity as an array; ``get_numpy``'s stack
    derives it from the pixels only when every window can. Masks equal rasterio's."""
    x, y = ORIGIN
    box = shapely.box(x - 100, y - 900, x + 700, y - 100)  # the nodata border, and outside
    triangle = shapely.Polygon([(x + 300, y - 100), (x + 2000, y - 400), (x + 900, y - 1900)])
    windows = read_aoi_windows(
        scene["collection"], [box, triangle], bands, geometry_crs=32633, fill_value=fill_value
    )
    for w in windows:
        assert isinstance(w.validity, np.ndarray)
        for c, band in enumerate(bands):
            path = scene["paths"]["scl" if band == "SCL" else "b" + w.record_id[1]]
            with rasterio.open(path) as src:
                geom = [[box, triangle][w.geometry_id]]
                masked, _ = rasterio.mask.mask(src, geom, crop=True, filled=False)
            np.testing.assert_array_equal(w.mask[c], ~np.ma.getmaskarray(masked)[0])
            if fill_value is not None:
                assert (w.data[c][~w.mask[c]] == fill_value).all() and (~w.mask[c]).any()
    stack = get_numpy(scene["collection"], triangle, "B1", geometry_crs=32633)
    assert isinstance(stack.validity, ImpliedMask) and stack.mask.shape == stack.shape
    windows = read_aoi_windows(scene["collection"], triangle, "B1", geometry_crs=32633)
    np.testing.assert_array_equal(stack.mask, np.stack([w.mask[0] for w in windows]))
    assert stack.mask.any() and not stack.mask.all()


def test_all_touched_edge_on_pixel_boundary(scene: dict) -> None:
    x, y = ORIGIN
    box = shapely.MultiPolygon(  # the window reaches below the box's bottom edge
        [
            shapely.box(x + 3000, y - 3000, x + 3400.5, y - 2800),
            shapely.Point(x + 4200, y - 3100).buffer(230.7),
        ]
    )
    got = get_numpy(scene["collection"], box, "B1", geometry_crs=32633, all_touched=True)
    with rasterio.open(scene["paths"]["b0"]) as src:
        expected, _ = rasterio.mask.mask(src, [box], crop=True, all_touched=True)
    np.testing.assert_array_equal(got.data[0], expected[0])


def test_get_numpy_identity_and_shapes(scene: dict) -> None:
    x, y = ORIGIN
    boxes = [
        shapely.box(x + 1000, y - 2000, x + 1500, y - 1500),
        shapely.box(x + 3000, y - 900, x + 3500, y - 400),
    ]
    stack = get_numpy(scene["collection"], boxes, "B1", geometry_crs=32633)
    assert stack.shape == (4, 50, 50) and stack.dtype == np.uint16
    assert np.asarray(stack).shape == (4, 50, 50) and stack.mask.shape == (4, 50, 50)
    table = stack.records
    assert table.column_names[:3] == ["record_id", "datetime", "geometry_id"]
    assert table["record_id"].to_pylist() == ["r0", "r0", "r1", "r1"]
    assert table["geometry_id"].to_pylist() == [0, 1, 0, 1]
    assert table["crs"].to_pylist() == ["EPSG:32633"] * 4
    assert table["transform"][1].as_py() == [10.0, 0.0, x + 3000, 0.0, -10.0, y - 400]
    # several bands → [N, C, H, W] in the requested order
    two = get_numpy(scene["collection"], boxes[:1], ["B1", "B1"], geometry_crs=32633)
    assert two.shape == (2, 2, 50, 50)
    # the same geometries in lon/lat (densified reprojection) hit the same records
    from pyproj import Transformer

    to_ll = Transformer.from_crs(32633, 4326, always_xy=True)
    ll = shapely.transform(boxes[0], lambda c: np.column_stack(to_ll.transform(c[:, 0], c[:, 1])))
    again = get_numpy(scene["collection"], [ll], "B1")  # default geometry CRS: EPSG:4326
    assert again.records["record_id"].to_pylist() == ["r0", "r1"]
    assert 50 <= again.shape[-1] <= 52 and 50 <= again.shape[-2] <= 52  # curved edges


def test_get_numpy_stacks_the_windows_it_read_without_a_copy(scene: dict) -> None:
    """The windows of one shape are read into one array, which is the stack (no second
    copy of a large result): values and masks equal the per-window reads (rasterio's
    ``mask`` in the test above); arrays that are not one array's views in order are
    copied as ``np.stack`` copies them."""
    from rasteret.read import read_aoi_windows
    from rasteret.read.result import stack_views

    x, y = ORIGIN
    boxes = [
        shapely.box(x + 1000, y - 2000, x + 1500, y - 1500),
        shapely.box(x + 3000, y - 900, x + 3500, y - 400),
    ]
    stack = get_numpy(scene["collection"], boxes, ["B1", "B1"], geometry_crs=32633)
    windows = read_aoi_windows(scene["collection"], boxes, ["B1", "B1"], geometry_crs=32633)
    np.testing.assert_array_equal(stack.data, np.stack([w.data for w in windows]))
    np.testing.assert_array_equal(stack.mask, np.stack([w.mask for w in windows]))
    block = np.arange(24).reshape(4, 2, 3).copy()  # owns its memory, as a read's block
    assert stack_views(list(block)) is block
    reordered = [block[1], block[0], block[2], block[3]]
    assert stack_views(reordered) is not block
    np.testing.assert_array_equal(stack_views(reordered), np.stack(reordered))
    assert stack_views(list(block[:3])) is not block  # not the whole array: a copy


def test_geometry_inputs_agree(scene: dict) -> None:
    x, y = ORIGIN
    box = shapely.box(x + 1000.5, y - 2000, x + 1500, y - 1500.5)
    reference = get_numpy(scene["collection"], box, "B1", geometry_crs=32633).data
    wkb = shapely.to_wkb(box)
    geojson = json.loads(shapely.to_geojson(box))
    crs_meta = {
        b"ARROW:extension:name": b"geoarrow.wkb",
        b"ARROW:extension:metadata": json.dumps({"crs": "EPSG:32633"}).encode(),
    }
    table = pa.table({"name": ["a"], "geometry": pa.array([wkb])}).cast(
        pa.schema(
            [pa.field("name", pa.string()), pa.field("geometry", pa.binary(), metadata=crs_meta)]
        )
    )
    for value in (
        box.bounds,
        wkb,
        [wkb],
        geojson,
        {"type": "Feature", "geometry": geojson},
        pa.array([wkb]),
        box.wkt,
    ):
        got = get_numpy(scene["collection"], value, "B1", geometry_crs=32633)
        np.testing.assert_array_equal(got.data, reference)
    np.testing.assert_array_equal(get_numpy(scene["collection"], table, "B1").data, reference)


def test_bad_inputs_raise_clear_errors(scene: dict) -> None:
    c = scene["collection"]
    x, y = ORIGIN
    box = shapely.box(x + 1000, y - 2000, x + 1500, y - 1500)
    table = pa.table({"geometry": pa.array([shapely.to_wkb(box)])})
    with pytest.raises(GeometryCRSError, match="missing GeoArrow CRS metadata"):
        get_numpy(c, table, "B1")
    with pytest.raises(GeometryError, match="invalid WKB"):
        get_numpy(c, b"\x01\x03\x00garbage", "B1", geometry_crs=32633)
    with pytest.raises(BandNotFoundError, match=r"Band\(s\) not found: \['B9'\]"):
        get_numpy(c, box, "B9", geometry_crs=32633)
    with pytest.raises(NoDataError, match="No valid data found"):
        get_numpy(c, shapely.box(0, 0, 10, 10), "B1", geometry_crs=32633)
    with pytest.raises(UnsupportedGeometryError, match="sample_points"):
        get_numpy(c, shapely.Point(x + 10, y - 10), "B1", geometry_crs=32633)
    with pytest.raises(RaggedShapesError, match="grid="):
        get_numpy(
            c, [box, shapely.box(x + 1000, y - 2000, x + 1800, y - 1500)], "B1", geometry_crs=32633
        )
    with pytest.raises(ValueError, match="different grids"):
        get_numpy(c, box, ["B1", "SCL"], geometry_crs=32633)


def test_apply_scale_and_fill_value(scene: dict) -> None:
    x, y = ORIGIN
    box = shapely.box(x - 100, y - 500, x + 500, y - 100)  # includes the nodata border
    raw = get_numpy(scene["collection"], box, "B1", geometry_crs=32633)
    scaled = get_numpy(scene["collection"], box, "B1", geometry_crs=32633, apply_scale=True)
    assert scaled.dtype == np.float32
    assert np.isnan(scaled.data[~raw.mask]).all() and (~raw.mask).any()
    np.testing.assert_allclose(
        scaled.data[raw.mask], raw.data[raw.mask] * np.float32(1e-4) - np.float32(0.1), rtol=1e-6
    )
    filled = get_numpy(scene["collection"], box, "B1", geometry_crs=32633, fill_value=9999)
    assert (filled.data[~raw.mask] == 9999).all()


def test_get_xarray_union_grid(scene: dict) -> None:
    x, y = ORIGIN
    boxes = [
        shapely.box(x + 1000, y - 2000, x + 1500, y - 1500),
        shapely.box(x + 1200, y - 900, x + 1900, y - 400),
    ]
    ds = get_xarray(scene["collection"], boxes, "B1", geometry_crs=32633)
    assert ds["B1"].dims == ("time", "geometry", "y", "x") and ds["B1"].dtype == np.uint16
    assert ds.sizes == {"time": 2, "geometry": 2, "y": 160, "x": 90}
    assert list(ds["id"].values) == ["r0", "r1"]
    assert float(ds.x[0]) == x + 1005 and float(ds.y[0]) == y - 405  # pixel centres
    one = get_numpy(scene["collection"], boxes[0], "B1", geometry_crs=32633)
    sub = ds["B1"].sel(geometry=0).isel(y=slice(110, 160), x=slice(0, 50)).values
    np.testing.assert_array_equal(sub, one.data)
    assert not ds["B1_valid"].sel(geometry=0).isel(y=slice(0, 100)).any()


def test_get_xarray_of_one_window_per_record_is_the_read_itself(scene: dict) -> None:
    """One geometry inside both records: every (time, geometry) cell is one window read
    whole, so the bands are views of that read (not copies) with ``get_numpy``'s values
    and validity (rasterio's ``mask`` in the tests above), the polygon's outside filled."""
    x, y = ORIGIN
    polygon = shapely.Polygon([(x + 1000, y - 2000), (x + 1500, y - 1500), (x + 1000, y - 1500)])
    ds = get_xarray(scene["collection"], polygon, "B1", geometry_crs=32633)
    stack = get_numpy(scene["collection"], polygon, "B1", geometry_crs=32633)
    assert ds["B1"].shape == (2, 1, *stack.shape[-2:]) and list(ds["id"].values) == ["r0", "r1"]
    np.testing.assert_array_equal(ds["B1"].values[:, 0], stack.data)
    np.testing.assert_array_equal(ds["B1_valid"].values[:, 0], stack.mask)
    assert not stack.mask.all() and stack.mask.any()  # the triangle's outside is invalid
    assert ds["B1"].values.base is not None  # a view of the read, not a copy


# ----------------------------------------------------------------------------- common grid


@pytest.fixture(scope="module")
def zones(tmp_path_factory: pytest.TempPathFactory) -> dict:
    from rasteret.ingest import build_from_table
    from rasteret.samples import make_sentinel2_like

    root = tmp_path_factory.mktemp("zones")
    recs = make_sentinel2_like(
        root,
        scenes=2,
        size=512,
        zones=(32632, 32633),
        bands=("B04",),
        interval_days=0,
        overviews=(),
    )
    table = pa.table(
        {
            "id": [r["id"] for r in recs],
            "datetime": [r["datetime"] for r in recs],
            "assets": [r["assets"] for r in recs],
        }
    )
    return {"collection": build_from_table(table), "records": recs}


def test_cross_zone_stack_is_one_aligned_cube(zones: dict) -> None:
    aoi = shapely.box(11.99, 46.99, 12.01, 47.005)  # on the 32N / 33N boundary (lon 12)
    stack = get_numpy(zones["collection"], aoi, "B04", target_crs="EPSG:32633", resolution=10)
    assert stack.shape[0] == 2 and stack.dtype == np.uint16
    assert set(stack.records["crs"].to_pylist()) == {"EPSG:32633"}
    assert len({tuple(t) for t in stack.records["transform"].to_pylist()}) == 1
    grid = stack.grids[0]
    for i, rid in enumerate(stack.records["record_id"].to_pylist()):
        rec = next(r for r in zones["records"] if r["id"] == rid)
        expected = np.zeros(grid.shape, np.uint16)
        with rasterio.open(rec["hrefs"]["B04"]) as src:
            reproject(
                rasterio.band(src, 1),
                expected,
                dst_transform=rasterio.Affine(*grid.transform),
                dst_crs="EPSG:32633",
                dst_nodata=0,
                resampling=Resampling.nearest,
            )
        inside = stack.mask[i]
        assert inside.mean() > 0.3
        agree = (stack.data[i][inside] == expected[inside]).mean()
        assert agree >= 0.999, agree
        # no nodata bleed: every valid pixel has a non-nodata value
        assert (stack.data[i][inside] != 0).all()


def test_explicit_grid(zones: dict) -> None:
    left, bottom, right, top = zones["records"][0]["bounds"]  # zone 32N
    cx, cy = (left + right) / 2 // 20 * 20, (bottom + top) / 2 // 20 * 20
    grid = GridSpec.from_bbox((cx, cy, cx + 1000, cy + 1000), "EPSG:32632", 20)
    stack = get_numpy(
        zones["collection"], shapely.box(*grid.bounds), "B04", geometry_crs=32632, grid=grid
    )
    assert stack.shape[1:] == (50, 50)
    assert stack.grids[0] == grid and stack.shape[0] == 2
    assert stack.mask.all()  # the scene in 33N covers the same ground


def test_get_gdf_rows_equal_rasterio_mask(scene: dict) -> None:
    """The original's ``get_gdf``: a row per (record, geometry, band), the AOI table's
    columns joined on ``geometry_id``; each window equals ``rasterio.mask.mask``."""
    import geopandas as gpd
    from affine import Affine

    polygons = _polygons()
    fields = gpd.GeoDataFrame(
        {"field": [f"f{k}" for k in range(4)]}, geometry=polygons, crs="EPSG:32633"
    )
    frame = scene["collection"].get_gdf(fields, ["B1", "SCL"])
    assert isinstance(frame, gpd.GeoDataFrame) and frame.crs.to_epsg() == 32633
    assert len(frame) == 2 * 4 * 2  # records x geometries x bands
    assert list(frame.columns[:11]) == [
        "record_id", "datetime", "cloud_cover", "collection", "geometry_id", "geometry",
        "band", "data", "mask", "transform", "crs",
    ]  # fmt: skip
    assert list(frame["field"]) == [f"f{g}" for g in frame["geometry_id"]]
    for row in frame[frame["band"] == "B1"].itertuples():
        with rasterio.open(scene["paths"]["b" + row.record_id[1]]) as src:
            geom = [polygons[row.geometry_id]]
            expected, transform = rasterio.mask.mask(src, geom, crop=True)
        np.testing.assert_array_equal(row.data, expected[0])
        assert row.data.dtype == np.uint16 and row.data.shape == row.mask.shape
        assert (
            isinstance(row.transform, Affine) and tuple(row.transform)[:6] == tuple(transform)[:6]
        )
        assert row.crs == "EPSG:32633" and row.geometry.equals(polygons[row.geometry_id])
    scl = frame[frame["band"] == "SCL"].iloc[0]
    assert scl["transform"].a == 20.0  # each band on its own grid
    taken = fields.rename(columns={"field": "band"})
    with pytest.raises(ValueError, match=r"\['band'\] collide"):
        scene["collection"].get_gdf(taken, "B1")


def test_get_gdf_keeps_windows_in_their_own_crs(zones: dict) -> None:
    """Windows of two UTM zones, which ``get_numpy`` would reproject onto one grid, stay
    in their native CRS, one row each."""
    aoi = shapely.box(11.99, 46.99, 12.01, 47.005)
    from rasteret.read import get_gdf

    frame = get_gdf(zones["collection"], [aoi], "B04")
    windows = read_aoi_windows(zones["collection"], [aoi], "B04")
    assert sorted(frame["crs"]) == ["EPSG:32632", "EPSG:32633"]
    assert frame.crs.to_epsg() == 4326 and frame.geometry.iloc[0].equals(aoi)
    for row, window in zip(frame.itertuples(), windows, strict=True):
        assert row.record_id == window.record_id
        np.testing.assert_array_equal(row.data, window.data[0])
