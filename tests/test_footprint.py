"""CRS84 footprints of grids, checked against GDAL's ``transform_bounds`` (rasterio)."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from rasterio.crs import CRS as RioCRS
from rasterio.warp import transform_bounds

from rasteret.geo import FootprintError, grid_footprint

CRS84 = RioCRS.from_string("OGC:CRS84")


def _gdal_bounds(transform, width, height, crs):
    a, b, c, d, e, f = transform
    xs = [c, c + a * width + b * height]
    ys = [f, f + d * width + e * height]
    return transform_bounds(
        RioCRS.from_user_input(crs), CRS84, min(xs), min(ys), max(xs), max(ys), densify_pts=21
    )


@pytest.mark.parametrize(
    ("transform", "width", "height", "crs"),
    [
        ((10.0, 0.0, 399960.0, 0.0, -10.0, 5000040.0), 10980, 10980, 32633),  # Sentinel-2 tile
        ((30.0, 0.0, 200000.0, 0.0, -30.0, 7800000.0), 7000, 7000, "EPSG:32610"),  # far north
        ((0.01, 0.0, -10.0, 0.0, -0.01, 50.0), 2000, 1000, 4326),
        ((25.0, 0.0, 3000000.0, 0.0, -25.0, 3000000.0), 4000, 4000, 3035),  # LAEA Europe
        ((500.0, 0.0, -2000000.0, 0.0, -500.0, -1000000.0), 2000, 2000, 3413),  # off-pole polar
        ((-10.0, 0.0, 500000.0, 0.0, 10.0, 4000000.0), 300, 200, 32633),  # flipped axes
    ],
)
def test_bbox_matches_gdal(transform, width, height, crs):
    fp = grid_footprint(transform, width, height, crs)
    expected = _gdal_bounds(transform, width, height, crs)
    np.testing.assert_allclose(fp.bbox, expected, atol=1e-6)
    assert fp.geometry.is_valid and fp.geometry.geom_type == "Polygon"
    assert not fp.crosses_antimeridian and not fp.contains_pole
    np.testing.assert_allclose(fp.geometry.bounds, expected, atol=1e-6)


def test_edges_are_densified():
    fp = grid_footprint((10.0, 0, 399960.0, 0, -10.0, 5000040.0), 10980, 10980, 32633)
    assert len(fp.geometry.exterior.coords) == 4 * 22 + 1  # 21 extra points per edge
    assert shapely.from_wkb(fp.wkb).equals(fp.geometry)


def test_four_value_transform_equals_six_value():
    six = grid_footprint((10.0, 0.0, 399960.0, 0.0, -10.0, 5000040.0), 100, 100, 32633)
    four = grid_footprint((10.0, 399960.0, -10.0, 5000040.0), 100, 100, 32633)
    assert four.geometry.equals(six.geometry)


def test_antimeridian_is_split_and_bbox_wraps():
    transform = (100.0, 0.0, 500000.0, 0.0, -100.0, 7000000.0)  # UTM 60N, 400 km east
    fp = grid_footprint(transform, 4000, 1000, 32660)
    assert fp.crosses_antimeridian
    assert fp.geometry.geom_type == "MultiPolygon" and len(fp.geometry.geoms) == 2
    xmin, _, xmax, _ = fp.bbox
    assert xmin > xmax  # wraps across 180°, not a globe-spanning box
    np.testing.assert_allclose(fp.bbox, _gdal_bounds(transform, 4000, 1000, 32660), atol=1e-6)
    # both halves touch the antimeridian and together cover < 12° of longitude
    east, west = sorted(fp.geometry.geoms, key=lambda g: -g.bounds[0])
    assert east.bounds[2] == pytest.approx(180.0) and west.bounds[0] == pytest.approx(-180.0)
    assert (180 - xmin) + (xmax + 180) < 12


def test_geographic_grid_over_the_antimeridian():
    fp = grid_footprint((0.1, 0.0, 170.0, 0.0, -0.1, 10.0), 200, 100, 4326)
    assert fp.crosses_antimeridian
    assert fp.bbox == pytest.approx((170.0, 0.0, -170.0, 10.0))
    assert fp.geometry.area == pytest.approx(200.0)


def test_grid_around_the_pole_covers_every_longitude():
    fp = grid_footprint((1000.0, 0.0, -2000000.0, 0.0, -1000.0, 2000000.0), 4000, 4000, 3413)
    assert fp.contains_pole and not fp.crosses_antimeridian
    assert fp.bbox[0] == -180.0 and fp.bbox[2] == 180.0 and fp.bbox[3] == 90.0
    assert fp.geometry.is_valid
    assert fp.geometry.contains(shapely.Point(0.0, 89.0))
    assert fp.geometry.contains(shapely.Point(179.0, 75.0))
    assert not fp.geometry.contains(shapely.Point(0.0, 50.0))
    assert fp.bbox[1] == pytest.approx(fp.geometry.bounds[1])


def test_no_crs_or_empty_grid_is_an_error():
    with pytest.raises(FootprintError, match="no CRS"):
        grid_footprint((1.0, 0.0, 0.0, 0.0, -1.0, 0.0), 10, 10, "")
    with pytest.raises(FootprintError, match="no pixels"):
        grid_footprint((1.0, 0.0, 0.0, 0.0, -1.0, 0.0), 0, 10, 4326)
    with pytest.raises(FootprintError, match="cannot transform"):
        grid_footprint((1.0, 0.0, 0.0, 0.0, -1.0, 0.0), 10, 10, "not a crs")
