"""``GridSpec``, CRS transforms and overview choice, against rasterio / GDAL where they apply."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import rasterio.transform
import rasterio.warp
import rasterio.windows
from affine import Affine

from rasteret.geo import GridError, GridSpec, Window, choose_overview, transform_bounds
from rasteret.geo.transform import CRSError, to_crs

GRID = GridSpec("EPSG:32633", (10.0, 0.0, 500000.0, 0.0, -10.0, 5200000.0), (300, 400))


def test_from_bbox_aligns_like_gdalwarp_tap() -> None:
    grid = GridSpec.from_bbox((500003.0, 5199001.0, 500997.0, 5199995.0), "EPSG:32633", 20)
    assert grid.transform == (20.0, 0.0, 500000.0, 0.0, -20.0, 5200000.0)
    assert grid.shape == (50, 50)
    assert grid.bounds == (500000.0, 5199000.0, 501000.0, 5200000.0)
    centred = GridSpec.from_bbox((3.0, 1.0, 97.0, 95.0), 32633, 10, align="center")
    assert centred.coords["x"][0] % 10 == 0 and centred.bounds[0] == -5.0
    floating = GridSpec.from_bbox((3.0, 1.0, 97.0, 95.0), 32633, 10, align="floating")
    assert (
        floating.transform[2] == 3.0
        and floating.transform[5] == 95.0
        and floating.shape == (10, 10)
    )
    anchored = GridSpec.from_bbox((3.0, 1.0, 97.0, 95.0), 32633, 10, align=(2.5, 0.5))
    assert anchored.transform[2] == 2.5 and anchored.transform[5] == 100.5
    assert GridSpec.from_bbox((3.0, 1.0, 97.0, 95.0), 32633, 10, align=anchored) == anchored


def test_coords_bounds_and_windows_match_rasterio() -> None:
    affine = Affine(*GRID.transform)
    xs, _ = rasterio.transform.xy(affine, [0] * 400, list(range(400)))
    _, ys = rasterio.transform.xy(affine, list(range(300)), [0] * 300)
    np.testing.assert_allclose(GRID.coords["x"], xs)
    np.testing.assert_allclose(GRID.coords["y"], ys)
    assert GRID.bounds == rasterio.transform.array_bounds(300, 400, affine)[:4]
    bounds = (500123.0, 5197456.0, 501234.0, 5199876.0)
    ref = rasterio.windows.from_bounds(*bounds, transform=affine)
    window = GRID.window_of(bounds)
    assert window.row_off == int(np.floor(ref.row_off))
    assert window.col_off == int(np.floor(ref.col_off))
    assert window.row_off + window.height == int(np.ceil(ref.row_off + ref.height))
    assert window.col_off + window.width == int(np.ceil(ref.col_off + ref.width))
    sub = GRID.crop(window)
    assert sub.bounds[0] <= bounds[0] and sub.bounds[2] >= bounds[2]
    assert GRID[10:20, 5:9].shape == (10, 4)
    assert GRID.window_of((0, 0, 10, 10)).is_empty  # far away: empty, clipped


def test_pixel_mapping_round_trips() -> None:
    cols, rows = np.array([0.5, 17.25, 399.5]), np.array([0.5, 100.75, 299.5])
    x, y = GRID.pixel_to_xy(cols, rows)
    back_c, back_r = GRID.xy_to_pixel(x, y)
    np.testing.assert_allclose(back_c, cols)
    np.testing.assert_allclose(back_r, rows)


def test_value_semantics() -> None:
    same = GridSpec(32633, list(GRID.transform), (300, 400))
    assert same == GRID and hash(same) == hash(GRID)
    assert GridSpec("EPSG:32632", GRID.transform, GRID.shape) != GRID
    assert pickle.loads(pickle.dumps(GRID)) == GRID
    with pytest.raises(AttributeError):
        GRID.shape = (1, 1)  # type: ignore[misc]
    assert "EPSG:32633" in repr(GRID) and "300x400" in repr(GRID)
    assert GRID.coarsen(3).shape == (100, 134) and GRID.coarsen(3).resolution == (30.0, 30.0)
    assert GRID.zoom_to((150, 200)).resolution == (20.0, 20.0)
    assert GridSpec.from_coords(GRID.coords["x"], GRID.coords["y"], GRID.crs) == GRID
    assert GridSpec.from_shape(GRID.bounds, GRID.crs, GRID.shape) == GRID


def test_bad_grids_are_clear_errors() -> None:
    with pytest.raises(GridError, match="no pixels"):
        GridSpec(32633, GRID.transform, (0, 5))
    with pytest.raises(GridError, match="resolution must be positive"):
        GridSpec.from_bbox((0, 0, 1, 1), 32633, 0)
    with pytest.raises(GridError, match="empty"):
        GridSpec.from_bbox((1, 0, 1, 1), 32633, 1)
    with pytest.raises(CRSError, match="crs is missing"):
        to_crs(None)
    with pytest.raises(CRSError, match="not a CRS"):
        to_crs("EPSG:not-a-code")
    with pytest.raises(GridError, match="align"):
        GridSpec.from_bbox((0, 0, 10, 10), 32633, 1, align="middle")
    assert Window(0, 0, 5, 5).intersection(Window(10, 10, 2, 2)).is_empty


def test_transform_bounds_matches_rasterio() -> None:
    bounds = GRID.bounds
    ours = transform_bounds(bounds, "EPSG:32633", "EPSG:4326")
    ref = rasterio.warp.transform_bounds("EPSG:32633", "EPSG:4326", *bounds, densify_pts=21)
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-9)
    across = transform_bounds(bounds, "EPSG:32633", "EPSG:32632")
    ref = rasterio.warp.transform_bounds("EPSG:32633", "EPSG:32632", *bounds, densify_pts=21)
    np.testing.assert_allclose(across, ref, rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    ("target", "resampling", "expected"),
    [
        (10.0, "nearest", None),  # full resolution
        (19.0, "nearest", 0),  # 20 m < 19 * 1.2
        (20.0, "average", 0),  # exactly the 2x overview (GDAL's 1.01 slack)
        (19.0, "average", None),  # the 2x overview is coarser than asked
        (24.0, "nearest", 0),  # nearest may take an overview up to 1.2x coarser
        (33.0, "nearest", 0),  # 40 m is not < 33 * 1.2 = 39.6
        (34.0, "nearest", 1),  # 40 m < 34 * 1.2 = 40.8
        (80.0, "average", 2),  # the coarsest level that is not coarser than asked
        (1000.0, "average", 2),
    ],
)
def test_choose_overview_follows_gdal(target: float, resampling: str, expected) -> None:  # type: ignore[no-untyped-def]
    assert choose_overview(10.0, [20.0, 40.0, 80.0], target, resampling=resampling) == expected
