"""``rasteret.geo.rasterize`` against ``rasterio.features.rasterize`` (GDAL) pixel for pixel."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from affine import Affine
from rasterio.features import geometry_mask as rio_geometry_mask
from rasterio.features import rasterize as rio_rasterize
from shapely.geometry import MultiPolygon, Polygon, box

from rasteret.geo import GridSpec, geometry_mask, rasterize

GRID = GridSpec("EPSG:32633", (10.0, 0.0, 500000.0, 0.0, -10.0, 5200000.0), (120, 150))


def _polygons() -> list[tuple[str, object]]:
    rng = np.random.default_rng(7)
    x0, y0 = 500000.0, 5200000.0
    shapes: list[tuple[str, object]] = []
    # a star with many sloped edges
    angles = np.linspace(0, 2 * np.pi, 23, endpoint=False)
    radii = np.where(np.arange(23) % 2 == 0, 420.0, 170.0)
    star = Polygon(np.c_[x0 + 700 + radii * np.cos(angles), y0 - 600 + radii * np.sin(angles)])
    shapes.append(("star", star))
    # a square with a hole, off the pixel edges
    outer = box(x0 + 103.3, y0 - 1003.7, x0 + 901.9, y0 - 207.2)
    hole = box(x0 + 353.1, y0 - 711.4, x0 + 602.6, y0 - 402.9)
    shapes.append(("holed", outer.difference(hole)))
    # a multipolygon of two random convex hulls, one crossing the grid edge
    parts = []
    for cx, cy in ((x0 + 1250, y0 - 900), (x0 + 1480, y0 - 150)):
        pts = np.c_[cx + rng.normal(0, 140, 30), cy + rng.normal(0, 140, 30)]
        parts.append(shapely.MultiPoint(pts).convex_hull)
    shapes.append(("multi", MultiPolygon(parts)))
    # a box exactly on pixel edges and a thin sliver thinner than a pixel
    shapes.append(("aligned", box(x0 + 200, y0 - 300, x0 + 400, y0 - 100)))
    sliver = Polygon([(x0 + 20, y0 - 1100), (x0 + 1300, y0 - 1080), (x0 + 1300, y0 - 1076)])
    shapes.append(("sliver", sliver))
    # random polygons with holes
    for k in range(4):
        cx, cy = x0 + rng.uniform(200, 1300), y0 - rng.uniform(200, 1000)
        ring = shapely.MultiPoint(np.c_[cx + rng.normal(0, 200, 40), cy + rng.normal(0, 200, 40)])
        hull = ring.convex_hull
        shapes.append((f"random{k}", hull.difference(hull.centroid.buffer(60, quad_segs=5))))
    return shapes


POLYGONS = _polygons()


@pytest.mark.parametrize("all_touched", [False, True])
@pytest.mark.parametrize(("name", "geometry"), POLYGONS, ids=[n for n, _ in POLYGONS])
def test_rasterize_equals_rasterio(name: str, geometry: object, all_touched: bool) -> None:
    ours = rasterize(geometry, GRID, all_touched=all_touched)
    gdal = rio_rasterize(
        [(geometry, 1)],
        out_shape=GRID.shape,
        transform=Affine(*GRID.transform),
        all_touched=all_touched,
        dtype="uint8",
    ).astype(bool)
    assert gdal.sum() > 0
    np.testing.assert_array_equal(ours, gdal, err_msg=f"{name} all_touched={all_touched}")


def test_spans_burned_in_bands_of_rows_equal_rasterio(monkeypatch: pytest.MonkeyPatch) -> None:
    """The scanline spans are burned a band of rows at a time: bands of 7 rows (cutting
    every shape) give GDAL's masks."""
    import importlib

    module = importlib.import_module(
        "rasteret.geo.rasterize"
    )  # rasteret.geo.rasterize: the function
    monkeypatch.setattr(module, "_BURN_ROWS", 7)
    for name, geometry in POLYGONS:
        gdal = rio_rasterize(
            [(geometry, 1)], out_shape=GRID.shape, transform=Affine(*GRID.transform), dtype="uint8"
        ).astype(bool)
        np.testing.assert_array_equal(rasterize(geometry, GRID), gdal, err_msg=name)


@pytest.mark.parametrize("all_touched", [False, True])
def test_many_geometries_and_geometry_mask(all_touched: bool) -> None:
    geometries = [g for _, g in POLYGONS]
    ours = geometry_mask(geometries, GRID, all_touched=all_touched)
    gdal = rio_geometry_mask(
        geometries, out_shape=GRID.shape, transform=Affine(*GRID.transform), all_touched=all_touched
    )
    np.testing.assert_array_equal(ours, gdal)
    inverted = geometry_mask(geometries, GRID, all_touched=all_touched, invert=True)
    np.testing.assert_array_equal(inverted, ~gdal)


def test_geometry_in_another_crs_is_reprojected() -> None:
    geometry = box(500300.0, 5199200.0, 501100.0, 5199900.0)
    lonlat = shapely.transform(
        geometry,
        lambda xy: np.column_stack(
            __import__("rasteret.geo", fromlist=["transform_points"]).transform_points(
                xy[:, 0], xy[:, 1], "EPSG:32633", "EPSG:4326"
            )
        ),
    )
    ours = rasterize(lonlat, GRID, geometry_crs="EPSG:4326")
    direct = rasterize(geometry, GRID)
    assert (ours != direct).sum() <= 2 * (ours.shape[0] + ours.shape[1])  # edge pixels only
    assert ours.sum() == pytest.approx(direct.sum(), rel=0.05)


def test_non_polygon_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="LineString"):
        rasterize(shapely.LineString([(0, 0), (1, 1)]), GRID)
