"""Bbox AOIs are read without Shapely, with Shapely's own coordinates.

A bbox tuple stays a box (``Geometries.boxes``) and reaches the read path as
``RingPolygon`` s. Oracles: Shapely itself (``shapely.box`` + ``segmentize`` +
``transform``, the path every other geometry takes) for coordinates, bounds and whole
reads, and ``sys.modules`` of a fresh process for the import.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import shapely

from _testcollections import zone_edge_scenes
from rasteret.geo.rasterize import rasterize
from rasteret.geo.rings import RingPolygon, densify_ring
from rasteret.geo.transform import to_crs, transform_bounds
from rasteret.read import get_numpy, read_aoi_windows
from rasteret.read.geometry import (
    Geometries,
    GeometryError,
    coerce_geometries,
    transform_geometries,
)


def _random_boxes(rng: np.random.Generator, n: int, center: tuple[float, float], span: float):
    x = center[0] + rng.uniform(-span, span, n)
    y = center[1] + rng.uniform(-span, span, n)
    w = rng.uniform(span * 1e-4, span, n) * rng.choice([1.0, 1 / 3, 7.0], n)
    h = rng.uniform(span * 1e-4, span, n)
    return np.column_stack([x, y, x + w, y + h])


@pytest.mark.parametrize(
    ("src", "dst", "center", "span"),
    [
        ("EPSG:4326", "EPSG:32633", (12.0, 47.0), 0.5),
        ("EPSG:4326", "EPSG:32632", (11.7, 46.9), 3.0),
        ("EPSG:4326", "EPSG:3857", (-70.1, -33.4), 10.0),
        ("EPSG:32633", "EPSG:4326", (500_000.0, 5_200_000.0), 40_000.0),
        ("EPSG:32633", "EPSG:32633", (500_000.0, 5_200_000.0), 40_000.0),
    ],
)
def test_box_coordinates_equal_shapely(src, dst, center, span) -> None:
    boxes = _random_boxes(np.random.default_rng(7), 200, center, span)
    mine = Geometries(boxes, to_crs(src)).in_crs(dst)
    theirs = transform_geometries(shapely.box(*boxes.T), to_crs(src), to_crs(dst))
    assert all(isinstance(p, RingPolygon) for p in mine)
    for polygon, shape in zip(mine, theirs, strict=True):
        expected = shapely.get_coordinates(shape)
        assert polygon.exterior.shape == expected.shape
        assert np.array_equal(polygon.exterior, expected)  # bit for bit
        assert polygon.bounds == shape.bounds


def test_densify_matches_segmentize_on_uneven_segments() -> None:
    ring = np.array([[0.0, 0.0], [10.0, 0.1], [3.3, 7.7], [0.0, 0.0]])
    for step in (0.7, 1.0, 2.5, 10.0, 100.0):
        expected = shapely.get_coordinates(shapely.segmentize(shapely.Polygon(ring), step))
        assert np.array_equal(densify_ring(ring, step), expected)


def test_boxes_are_kept_and_checked() -> None:
    one = coerce_geometries((1.0, 2.0, 3.0, 4.0))
    assert one.boxes is not None and one.boxes.tolist() == [[1.0, 2.0, 3.0, 4.0]]
    assert one.crs == to_crs("EPSG:4326")
    several = coerce_geometries([(0, 0, 1, 1), (2, 2, 5, 3)], geometry_crs="EPSG:32633")
    assert len(several) == 2 and several.total_bounds() == (0.0, 0.0, 5.0, 3.0)
    assert shapely.equals(several.geometries, shapely.box(*several.boxes.T)).all()
    mixed = coerce_geometries([(0, 0, 1, 1), shapely.box(2, 2, 5, 3)])
    assert mixed.boxes is None and len(mixed) == 2  # any other geometry: Shapely
    with pytest.raises(GeometryError, match=r"invalid bbox \(3, 0, 1, 1\)"):
        coerce_geometries((3, 0, 1, 1))
    with pytest.raises(GeometryError, match="invalid bbox"):
        coerce_geometries([(0, 0, 1, 1), (0, 5, 1, 1)])
    with pytest.raises(GeometryError, match="need finite values"):
        coerce_geometries((-np.inf, 0.0, np.inf, 1.0))
    with pytest.raises(GeometryError, match="need finite values"):
        coerce_geometries([(0.0, 0.0, 1.0, 1.0), (0.0, np.nan, 1.0, 2.0)])


def test_box_outside_the_crs_domain_raises() -> None:
    box = (0.0, 80.0, 10.0, 95.0)  # latitude 95: no point of any projection
    boxes = Geometries(np.array([box]), to_crs("EPSG:4326"))
    shapes = Geometries(shapely.box([box[0]], *box[1:]), to_crs("EPSG:4326"))
    with pytest.raises(GeometryError, match="cannot be projected") as shapely_error:
        shapes.in_crs("EPSG:32633")
    with pytest.raises(GeometryError, match="cannot be projected") as box_error:
        boxes.in_crs("EPSG:32633")
    assert str(box_error.value) == str(shapely_error.value)


def test_intersects_box_equals_shapely() -> None:
    rng = np.random.default_rng(3)
    polygons = Geometries(_random_boxes(rng, 60, (12.0, 47.0), 1.0), to_crs("EPSG:4326"))
    local = polygons.in_crs("EPSG:32633")  # densified, curved quadrilaterals
    shapes = [shapely.Polygon(p.exterior) for p in local]
    boxes = _random_boxes(rng, 400, (285_000.0, 5_210_000.0), 120_000.0)
    agree = hits = 0
    for polygon, shape in zip(local, shapes, strict=True):
        for box in boxes:
            expected = bool(shapely.intersects(shape, shapely.box(*box)))
            hits += expected
            agree += polygon.intersects_box(tuple(box)) == expected
    assert agree == len(local) * len(boxes)
    assert 0 < hits < agree  # both outcomes occur
    inner = local[0].bounds  # a box inside the polygon, no edge crossing
    cx, cy = (inner[0] + inner[2]) / 2, (inner[1] + inner[3]) / 2
    assert local[0].intersects_box((cx - 1, cy - 1, cx + 1, cy + 1))


def test_ring_polygon_rasterizes_as_its_shapely_polygon() -> None:
    from rasteret.geo.grid import GridSpec

    grid = GridSpec("EPSG:32633", (10.0, 0.0, 0.0, 0.0, -10.0, 1000.0), (100, 100))
    ring = densify_ring(np.array([[5, 5], [905, 95], [955, 905], [35, 815], [5, 5.0]]), 37.0)
    for touched in (False, True):
        mine = rasterize([RingPolygon(ring)], grid, all_touched=touched)
        theirs = rasterize([shapely.Polygon(ring)], grid, all_touched=touched)
        assert mine.any() and np.array_equal(mine, theirs)
    moved = rasterize(
        RingPolygon(ring), grid, geometry_crs="EPSG:32632", all_touched=False
    )  # reprojected vertices, as for a Shapely polygon
    assert np.array_equal(moved, rasterize(shapely.Polygon(ring), grid, geometry_crs="EPSG:32632"))


@pytest.fixture(scope="module")
def zones(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("box_zones")
    collection, _, bounds_33 = zone_edge_scenes(root)
    index = root / "index.parquet"
    collection.export(index)
    lonlat = transform_bounds(bounds_33, "EPSG:32633", "EPSG:4326")
    return {"collection": collection, "index": index, "lonlat": lonlat}


def _inner(bounds: tuple[float, ...], a: float, b: float) -> tuple[float, float, float, float]:
    minx, miny, maxx, maxy = bounds
    w, h = maxx - minx, maxy - miny
    return (minx + a * w, miny + a * h, minx + b * w, miny + b * h)


@pytest.mark.parametrize("how", ["native", "two_zones", "target_crs", "all_touched"])
def test_box_reads_equal_shapely_reads(zones: dict, how: str) -> None:
    collection = zones["collection"]
    boxes = [_inner(zones["lonlat"], 0.1, 0.6), _inner(zones["lonlat"], 0.45, 1.3)]
    options: dict = {"all_touched": how == "all_touched"}
    if how == "target_crs":
        options |= {"target_crs": "EPSG:32633", "resolution": 10.0}
    elif how != "two_zones":
        collection = collection.select_records(["r32633"])
    mine = read_aoi_windows(collection, boxes, "B1", **options)
    theirs = read_aoi_windows(collection, list(shapely.box(*np.array(boxes).T)), "B1", **options)
    assert len(mine) == len(theirs) >= 2
    for a, b in zip(mine, theirs, strict=True):
        assert (a.record_id, a.geometry_id, a.grid) == (b.record_id, b.geometry_id, b.grid)
        assert np.array_equal(a.data, b.data)
        assert np.array_equal(a.mask, b.mask)
    assert any(w.mask.any() and not w.mask.all() for w in mine)  # the geometry cuts pixels


@pytest.mark.parametrize("where", [(0.1, 0.6), (0.5, 1.4), (-0.3, 0.2)])
def test_box_stack_across_zones_equals_shapely(zones: dict, where) -> None:
    box = _inner(zones["lonlat"], *where)  # the dominant CRS picked by footprint tests
    mine = get_numpy(zones["collection"], box, "B1")
    theirs = get_numpy(zones["collection"], shapely.box(*box), "B1")
    assert mine.grids == theirs.grids
    assert np.array_equal(mine.data, theirs.data) and np.array_equal(mine.mask, theirs.mask)
    assert mine.records.equals(theirs.records)


def test_bbox_read_never_imports_shapely(zones: dict) -> None:
    script = (
        "import json, sys\n"
        "import rasteret\n"
        "args = json.loads(sys.argv[1])\n"
        "collection = rasteret.load(args['index'])\n"
        "stack = collection.get_numpy(tuple(args['bbox']), ['B1'])\n"
        "found = {'shape': list(stack.data.shape), 'shapely': 'shapely' in sys.modules}\n"
        "print(json.dumps(found))\n"
    )
    one_zone = {"index": str(zones["index"]), "bbox": _inner(zones["lonlat"], 0.2, 0.5)}
    # the index holds both zones: the footprint test runs without Shapely too
    out = subprocess.run(
        [sys.executable, "-c", script, json.dumps(one_zone)],
        capture_output=True,
        text=True,
        check=True,
    )
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert found["shape"][-2:] == list(
        get_numpy(zones["collection"], tuple(one_zone["bbox"]), "B1").data.shape[-2:]
    )
    assert found["shapely"] is False


@pytest.mark.parametrize("groupby", [None, "solar_day"])
def test_engine_open_imports_composites_only_when_asked(zones: dict, groupby) -> None:
    script = (
        "import json, sys\n"
        "import xarray as xr\n"
        "import rasteret\n"
        "args = json.loads(sys.argv[1])\n"
        "collection = rasteret.load(args['index'])\n"
        "options = {} if args['groupby'] is None else {'groupby': args['groupby']}\n"
        "ds = xr.open_dataset(\n"
        "    collection, engine='rasteret', bands=['B1'], group='epsg32633_10m', **options\n"
        ")\n"
        "values = ds[list(ds.data_vars)[0]].isel(time=0)[:8, :8].values\n"
        "found = {'sum': int(values.sum()), 'steps': ds.sizes['time'],\n"
        "         'composite': 'rasteret.backend.composite' in sys.modules,\n"
        "         'shapely': 'shapely' in sys.modules}\n"
        "print(json.dumps(found))\n"
    )
    args = {"index": str(zones["index"]), "groupby": groupby}
    out = subprocess.run(
        [sys.executable, "-c", script, json.dumps(args)], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr[-2000:]
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert found["sum"] > 0
    assert found["composite"] is (groupby is not None)
    assert found["shapely"] is False
    assert found["steps"] == 1  # the one record on the 33N grid (one group)
