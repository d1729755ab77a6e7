"""AOI reads onto one target grid keep no validity array where the pixels imply it.

Two scenes of the same ground, one per UTM zone (32N is warped, 33N copied onto a 33N
grid), uint16 with nodata 9999 and a nodata border; the geometry reaches past the scenes,
so part of its window has no source at all. Oracles: GDAL's nearest ``reproject`` and
rasterio's geometry mask for pixels, and the same read with a fill other than the
nodata (which keeps its validity as an array) for the mask.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import shapely
from affine import Affine

from _testcollections import ZONE_EDGE_ORIGIN, ZONE_EDGE_SIZE, smooth_image, zone_edge_scenes
from rasteret.read import get_numpy
from rasteret.read.aoi_engine import read_aoi
from rasteret.read.result import ImpliedMask

rasterio = pytest.importorskip("rasterio", reason="rasterio (GDAL) is the pixel oracle")
from rasterio.features import geometry_mask  # noqa: E402
from rasterio.warp import Resampling, reproject  # noqa: E402

NODATA = 9999
ORIGIN_33, SIZE = ZONE_EDGE_ORIGIN, ZONE_EDGE_SIZE  # on the 32N / 33N boundary (lon 12)


@pytest.fixture(scope="module")
def zones(tmp_path_factory: pytest.TempPathFactory) -> dict:
    def image(k: int) -> np.ndarray:
        data = smooth_image((SIZE, SIZE), seed=k) % 9000 + 1  # no valid pixel is 9999
        data[:30] = NODATA  # a nodata border
        return data.astype(np.uint16)

    root = tmp_path_factory.mktemp("implied_grid")
    collection, paths, _ = zone_edge_scenes(root, image, nodata=NODATA)
    return {"collection": collection, "paths": paths}


def _geometry() -> shapely.Polygon:
    x, y = ORIGIN_33  # from inside the scene to 600 m past its east edge, one corner cut
    east = x + 10 * SIZE + 600
    corners = [(x + 1500, y - 100), (east, y - 100), (east, y - 2500), (x + 2500, y - 2500)]
    return shapely.Polygon(corners)


def _expected(path: Path, grid, inside: np.ndarray) -> np.ndarray:  # type: ignore[no-untyped-def]
    out = np.full(grid.shape, NODATA, np.uint16)
    with rasterio.open(path) as src:
        reproject(
            rasterio.band(src, 1),
            out,
            dst_transform=Affine(*grid.transform),
            dst_crs="EPSG:32633",
            src_nodata=NODATA,
            dst_nodata=NODATA,
            resampling=Resampling.nearest,
        )
    out[~inside] = NODATA
    return out


def test_cross_zone_windows_imply_their_validity_and_equal_gdal(zones: dict) -> None:
    kwargs = {"geometry_crs": 32633, "target_crs": "EPSG:32633", "resolution": 10}
    read = read_aoi(zones["collection"], _geometry(), ["B1"], one_grid=True, **kwargs)
    assert all(isinstance(w.validity, ImpliedMask) for w in read.windows)
    stack = get_numpy(zones["collection"], _geometry(), "B1", **kwargs)
    assert isinstance(stack.validity, ImpliedMask)
    grid = stack.grids[0]
    inside = ~geometry_mask([_geometry()], grid.shape, Affine(*grid.transform))
    # the same read with a fill no pixel holds keeps its validity as an array
    kept = get_numpy(zones["collection"], _geometry(), "B1", fill_value=7, **kwargs)
    assert isinstance(kept.validity, np.ndarray)
    np.testing.assert_array_equal(stack.mask, kept.mask)
    assert (kept.data[~kept.mask] == 7).all()
    np.testing.assert_array_equal(stack.data[stack.mask], kept.data[kept.mask])
    east = grid.shape[1] - 50  # past the scenes' east edge: no source, inside the geometry
    for i, rid in enumerate(stack.records["record_id"].to_pylist()):
        expected = _expected(zones["paths"][int(rid[1:])], grid, inside)
        data, mask = stack.data[i], stack.mask[i]
        assert (data[:, east:] == NODATA).all() and not mask[:, east:].any()
        assert (data[~inside] == NODATA).all() and not mask[~inside].any() and (~inside).any()
        agree = (data == expected).mean()  # nearest: GDAL's pixel picks, up to rounding
        assert agree >= (1.0 if rid == "r32633" else 0.999), (rid, agree)
        np.testing.assert_array_equal(mask, data != NODATA)
        assert mask.mean() > 0.3 and (~mask[inside]).any()  # the nodata border is invalid
