"""``rasteret.geo.warp`` against ``rasterio.warp.reproject`` (GDAL) on the same inputs.

Measured on these inputs (see docs/grids.md): across UTM zones 32N -> 33N nearest,
bilinear and cubic are identical to GDAL on (nearly) every pixel; average / mode / min /
max / median are bit-identical everywhere tested: aligned factors 2, 3, 4, 5, 2x3 for
uint8 / uint16 / int16 / float32 with and without nodata, fractional factors and
across UTM zones.
"""

from __future__ import annotations

import dask
import numpy as np
import pytest
import xarray as xr
from affine import Affine
from rasterio.crs import CRS
from rasterio.warp import Resampling, reproject

from rasteret.geo import GridSpec, source_window, transform_bounds, warp, warp_array

SOURCE = GridSpec("EPSG:32632", (10.0, 0.0, 700000.0, 0.0, -10.0, 5210000.0), (400, 400))
GDAL_NAMES = {"median": "med"}


def _smooth(seed: int, shape=(400, 400)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0 : shape[0], 0 : shape[1]]
    wave = np.sin(x / 17.0 + seed) * np.cos(y / 23.0) * 400 + 1500
    return (wave + rng.normal(0, 60, shape)).clip(1000, 2600).astype(np.uint16)


def _with_nodata(data: np.ndarray) -> np.ndarray:
    data = data.copy()
    data[:25] = 0  # a nodata border
    data[:, -18:] = 0
    data[150:190, 200:260] = 0  # a nodata hole
    return data


def _gdal(src: np.ndarray, source: GridSpec, target: GridSpec, resampling: str, nodata=0):
    # without a nodata, rasterio initialises the output to 0; ours fills NaN for floats
    fill = np.nan if nodata is None and src.dtype.kind == "f" else nodata
    out = np.full(target.shape, 0 if fill is None else fill, src.dtype)
    reproject(
        src,
        out,
        src_transform=Affine(*source.transform),
        src_crs=CRS.from_wkt(source.crs.to_wkt()),
        dst_transform=Affine(*target.transform),
        dst_crs=CRS.from_wkt(target.crs.to_wkt()),
        resampling=getattr(Resampling, GDAL_NAMES.get(resampling, resampling)),
        src_nodata=nodata,
        dst_nodata=fill,
    )
    return out


def _cross_zone_target(resolution: float) -> GridSpec:
    bounds = transform_bounds(SOURCE.bounds, SOURCE.crs, "EPSG:32633")
    return GridSpec.from_bbox(bounds, "EPSG:32633", resolution)


@pytest.mark.parametrize("resampling", ["nearest", "bilinear", "cubic"])
def test_point_kernels_across_utm_zones_match_gdal(resampling: str) -> None:
    src = _with_nodata(_smooth(1))
    target = _cross_zone_target(10.0)
    ours = warp_array(src, SOURCE, target, resampling=resampling, src_nodata=0)
    gdal = _gdal(src, SOURCE, target, resampling)
    assert ours.dtype == np.uint16
    valid_mismatch = int(((ours == 0) != (gdal == 0)).sum())
    assert valid_mismatch <= target.height * target.width * 1e-3
    differ = ours.astype(int) - gdal.astype(int)
    identical = float((differ == 0).mean())
    if resampling == "nearest":
        assert identical >= 0.999, f"nearest identical on {identical:.5f}"
    else:  # documented tolerance: 1 DN (rounding) on all but 0.1% of pixels
        assert float((np.abs(differ) <= 1).mean()) >= 0.999
    assert (gdal != 0).mean() > 0.6  # a real overlap, not an empty comparison


def test_nearest_ties_are_rare_and_counted() -> None:
    src = _smooth(2)
    target = _cross_zone_target(7.0)  # a resolution change: many fractional positions
    ours = warp_array(src, SOURCE, target, resampling="nearest", src_nodata=0)
    gdal = _gdal(src, SOURCE, target, "nearest")
    mismatched = int((ours != gdal).sum())
    assert mismatched <= ours.size * 1e-3, f"{mismatched} of {ours.size} pixels differ"


AREA = ["average", "mode", "min", "max", "median"]
#: (dtype, nodata, values): small value ranges so that means land on exact .5 ties and
#: modes tie often; nodata None = every pixel valid.
AREA_INPUTS = [
    ("uint8", 0, (1, 7)),
    ("uint8", None, (1, 7)),  # (valid 0s would be nudged off the implicit fill 0)
    ("uint16", 0, (1000, 1010)),
    ("int16", -300, (-299, 300)),
    ("float32", 0.0, (1, 9)),
    ("float32", None, (1, 9)),
]


def _area_source(dtype: str, nodata, values, seed: int) -> np.ndarray:
    src = np.random.default_rng(seed).integers(*values, SOURCE.shape)
    src = (src * 0.25 if dtype == "float32" else src).astype(dtype)
    if nodata is not None:
        src[:25] = nodata  # a nodata border, a hole and scattered nodata in the blocks
        src[:, -18:] = nodata
        src[150:190, 200:260] = nodata
        src[5:300:7, 5:300:3] = nodata
    return src


@pytest.mark.parametrize("factor", [2, 3, 4, (2, 3), (3, 2), 5])
@pytest.mark.parametrize("resampling", [*AREA, "nearest"])
def test_area_kernels_exact_on_aligned_factors(resampling: str, factor) -> None:
    """Bit-identical to GDAL for every dtype, with and without nodata (GDAL's weighted
    incremental mean makes exact .5 ties round the same way)."""
    target = SOURCE.coarsen(factor)
    for k, (dtype, nodata, values) in enumerate(AREA_INPUTS):
        src = _area_source(dtype, nodata, values, seed=k)
        ours = warp_array(src, SOURCE, target, resampling=resampling, src_nodata=nodata)
        gdal = _gdal(src, SOURCE, target, resampling, nodata=nodata)
        assert ours.dtype == src.dtype
        np.testing.assert_array_equal(ours, gdal, err_msg=f"{dtype} nodata={nodata}")
    if resampling == "average":  # the case that used to differ: exact .5 ties
        ties = _mean_ties(_area_source("uint8", 0, (1, 7), seed=0), target)
        assert ties > 20, "the inputs must hold exact .5 ties for this test to mean anything"


def _mean_ties(src: np.ndarray, target: GridSpec) -> int:
    fy = SOURCE.height // target.height
    fx = SOURCE.width // target.width
    h, w = SOURCE.height // fy, SOURCE.width // fx
    blocks = src[: h * fy, : w * fx].reshape(h, fy, w, fx).astype(float)
    valid = blocks > 0
    with np.errstate(invalid="ignore"):
        mean = (blocks * valid).sum((1, 3)) / valid.sum((1, 3))
    return int(np.isclose(mean % 1, 0.5).sum())


@pytest.mark.parametrize("resampling", AREA)
def test_area_kernels_exact_across_utm_zones_and_fractional_factors(resampling: str) -> None:
    """GDAL's footprint rule (the two mapped corners of each target pixel, the
    covered-fraction weights of the edge rows / columns, float32 weighted mode counts)
    makes the area kernels bit-identical beyond aligned factors too."""
    src = _with_nodata(_smooth(7))
    if resampling == "mode":
        src = np.where(src == 0, 0, src // 100).astype(np.uint16)  # categorical-like
    same_crs = GridSpec.from_bbox(SOURCE.bounds, SOURCE.crs, 25.0)  # x2.5
    for target in (same_crs, _cross_zone_target(20.0), _cross_zone_target(7.0)):
        ours = warp_array(src, SOURCE, target, resampling=resampling, src_nodata=0)
        gdal = _gdal(src, SOURCE, target, resampling)
        np.testing.assert_array_equal(ours, gdal, err_msg=str(target))
        assert (gdal != 0).mean() > 0.5


def test_weighted_mode_of_float_data_matches_gdal() -> None:
    """Non-8/16-bit dtypes take GDAL's ``GWKModeRealType`` path (first value seen wins
    until a value seen before outweighs it)."""
    src = np.random.default_rng(8).integers(1, 5, SOURCE.shape).astype(np.float32)
    src[150:190, 200:260] = 0
    for target in (GridSpec.from_bbox(SOURCE.bounds, SOURCE.crs, 13.0), _cross_zone_target(20)):
        ours = warp_array(src, SOURCE, target, resampling="mode", src_nodata=0)
        np.testing.assert_array_equal(ours, _gdal(src, SOURCE, target, "mode", nodata=0.0))


@pytest.mark.parametrize("resampling", ["nearest", "bilinear", "cubic", "average", "max"])
def test_no_nodata_bleed(resampling: str) -> None:
    """Valid data lie in [1000, 2600] and nodata is 0: any bleed would pull values below
    1000; every nodata source pixel under a target centre stays nodata."""
    src = _with_nodata(_smooth(4))
    target = _cross_zone_target(10.0 if resampling not in ("average", "max") else 20.0)
    ours = warp_array(src, SOURCE, target, resampling=resampling, src_nodata=0)
    valid = ours != 0
    assert valid.mean() > 0.5
    if resampling != "cubic":  # cubic's negative lobes may legitimately undershoot
        assert ours[valid].min() >= 1000
    if resampling in ("nearest", "bilinear", "cubic"):
        from rasteret.geo.coords import source_coordinates

        sx, sy = source_coordinates(SOURCE, target)
        inside = (sx >= 0) & (sy >= 0) & (sx < 400) & (sy < 400)
        rows = np.clip(np.floor(sy).astype(int), 0, 399)
        cols = np.clip(np.floor(sx).astype(int), 0, 399)
        centre_nodata = inside & (src[rows, cols] == 0)
        assert centre_nodata.sum() > 1000
        assert not valid[centre_nodata].any()


def test_float_nan_nodata_and_integer_dtype_kept() -> None:
    src = _smooth(5).astype(np.float32)
    src[:40] = np.nan
    target = _cross_zone_target(10.0)
    ours = warp_array(src, SOURCE, target, resampling="bilinear")
    assert ours.dtype == np.float32
    assert np.isnan(ours).any() and np.nanmin(ours) >= 1000
    ints = warp_array(_smooth(5), SOURCE, target, resampling="mode", src_nodata=0)
    assert ints.dtype == np.uint16


def test_lazy_warp_equals_eager_and_reads_only_needed_chunks() -> None:
    src = _with_nodata(_smooth(6))
    source = xr.DataArray(
        np.stack([src, src // 2 + 600]),
        dims=("time", "y", "x"),
        coords={"time": [0, 1], **SOURCE.coords},
        attrs={"_FillValue": 0},
    ).chunk({"time": 1, "y": 100, "x": 100})
    # the source CRS for from_xarray
    source = source.assign_coords(spatial_ref=xr.Variable((), 0, {"crs_wkt": SOURCE.crs.to_wkt()}))
    target = _cross_zone_target(10.0)
    lazy = warp(source, target, resampling="bilinear", chunks=128, error_threshold=0)
    assert lazy.chunks[-2][0] == 128 and lazy.dims == ("time", "y", "x")
    assert GridSpec.from_xarray(lazy) == target
    with dask.config.set(scheduler="synchronous"):
        values = lazy.values
    eager = warp_array(
        source.values, SOURCE, target, resampling="bilinear", src_nodata=0, error_threshold=0
    )
    np.testing.assert_array_equal(values, eager)
    # every warp task depends on the source chunks its footprint touches, not all 16
    graph = dict(lazy.data.__dask_graph__())
    src_name = source.data.name
    deps = [
        {k for k in _keys(v) if k[0] == src_name}
        for key, v in graph.items()
        if isinstance(key, tuple) and str(key[0]).startswith("warp-") and "coords" not in key[0]
    ]
    # (128-px target chunks over 100-px source chunks, rotated ~1.4 deg: at most 3 x 3)
    assert deps and max(len(d) for d in deps) <= 9 and np.mean([len(d) for d in deps]) <= 6
    window = source_window(SOURCE, target, None)
    assert window is not None and window.height <= 400


def _keys(task) -> list:
    found = []
    if isinstance(task, tuple) and task and isinstance(task[0], str) and len(task) >= 3:
        found.append(task)
    if isinstance(task, (tuple, list)):
        for item in task:
            found.extend(_keys(item))
    if hasattr(task, "dependencies"):
        found.extend(task.dependencies)
    return found


def test_bad_resampling_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown resampling 'lanczos'"):
        warp_array(_smooth(0), SOURCE, SOURCE, resampling="lanczos")


def test_lazy_area_warp_in_row_chunks_is_bit_identical_to_gdal() -> None:
    """GDAL lays its approximate transformer along whole destination rows: row chunks
    spanning the full width (``chunks=(rows, -1)``) reproduce it exactly."""
    src = _with_nodata(_smooth(9))
    source = xr.DataArray(
        src[None], dims=("time", "y", "x"), coords={"time": [0], **SOURCE.coords}
    ).chunk({"y": 100, "x": 100})
    source = source.assign_coords(spatial_ref=xr.Variable((), 0, {"crs_wkt": SOURCE.crs.to_wkt()}))
    target = _cross_zone_target(20.0)
    lazy = warp(source, target, resampling="average", src_nodata=0, chunks=(48, -1))
    assert len(lazy.chunks[-2]) > 1
    with dask.config.set(scheduler="synchronous"):
        values = lazy.values[0]
    np.testing.assert_array_equal(values, _gdal(src, SOURCE, target, "average"))


def test_a_shared_nearest_index_gathers_what_warp_array_gives() -> None:
    """The nearest index map of a target window into a source crop (derived once, shared
    by every band) gathers the same pixels as ``warp_array``, into a given buffer, and a
    crop of another shape is refused."""
    from rasteret.geo.nearest import nearest_index
    from rasteret.geo.warp import gather_nearest
    from rasteret.geo.window import Window

    source = GridSpec("EPSG:32632", (10.0, 0, 699960.0, 0, -10.0, 5300040.0), (600, 600))
    target = GridSpec.from_bbox(
        transform_bounds((701000, 5296000, 704000, 5299000), "EPSG:32632", "EPSG:32633"),
        "EPSG:32633",
        10,
    )
    window = Window(5, 7, target.height - 10, target.width - 12)
    crop = source_window(source, target, window)
    rng = np.random.default_rng(3)
    data = rng.integers(0, 1000, (2, *source.shape), dtype=np.uint16)
    data[:, ::7, ::5] = 0  # nodata pixels
    piece = data[:, crop.row_off : crop.row_stop, crop.col_off : crop.col_stop]
    expected = warp_array(data, source, target, src_nodata=0, window=window)
    shared = nearest_index(source, target, window, crop)
    out = np.empty((2, *window.shape), np.uint16)
    gather_nearest(piece, shared, 0, 0, out)
    np.testing.assert_array_equal(out, expected)
    via_warp_array = warp_array(
        piece, source, target, src_nodata=0, window=window, coordinates=shared
    )
    np.testing.assert_array_equal(via_warp_array, expected)
    with pytest.raises(ValueError, match="crop"):
        gather_nearest(piece[:, 1:], shared, 0, 0)


def test_separable_nearest_index_equals_the_per_pixel_map() -> None:
    """Same CRS, no rotation: the map built from one row and one column of coordinates is
    the per-pixel map (``centre_pixel`` on ``source_coordinates``), index for index, over
    finer and coarser targets, fractional offsets, windows and crops partly outside."""
    from rasteret.geo.coords import source_coordinates
    from rasteret.geo.nearest import separable_nearest_index
    from rasteret.geo.resampling import centre_pixel
    from rasteret.geo.window import Window

    rng = np.random.default_rng(5)
    checked = 0
    for _ in range(60):
        res = float(rng.choice([10.0, 20.0, 60.0]))
        source = GridSpec("EPSG:32633", (res, 0.0, 500000.0, 0.0, -res, 4200000.0), (300, 400))
        tres = float(rng.choice([7.0, 10.0, 13.3, 30.0]))
        x0 = 500000.0 + float(rng.uniform(-500.0, 3000.0))
        y0 = 4200000.0 - float(rng.uniform(-500.0, 3000.0))
        target = GridSpec("EPSG:32633", (tres, 0.0, x0, 0.0, -tres, y0), (120, 150))
        window = Window(int(rng.integers(0, 40)), int(rng.integers(0, 40)), 70, 90)
        crop = Window(int(rng.integers(-5, 100)), int(rng.integers(-5, 100)), 150, 120)
        fast = separable_nearest_index(source, target, window, crop)
        assert fast is not None
        sx, sy = source_coordinates(source, target, window)
        iy, ix, inside = centre_pixel(sx - crop.col_off, sy - crop.row_off, crop.height, crop.width)
        np.testing.assert_array_equal(fast.inside, inside)
        np.testing.assert_array_equal(fast.index, iy * crop.width + ix)
        checked += int(inside.any()) + int((~inside).any())
    assert checked > 60  # both pixels inside and outside the crop were compared
    rotated = GridSpec("EPSG:32633", (10.0, 1.0, 500000.0, 0.0, -10.0, 4200000.0), (50, 50))
    _assert_offset_blocks()
    other_crs = GridSpec("EPSG:32632", (10.0, 0.0, 500000.0, 0.0, -10.0, 4200000.0), (50, 50))
    plain = GridSpec("EPSG:32633", (10.0, 0.0, 500000.0, 0.0, -10.0, 4200000.0), (50, 50))
    whole = Window(0, 0, 50, 50)
    assert separable_nearest_index(rotated, plain, whole, whole) is None
    assert separable_nearest_index(other_crs, plain, whole, whole) is None


def _assert_offset_blocks() -> None:
    """Same pixel size, any shift: the map is one block copied one for one (``block``
    describes the index and inside exactly); another pixel size is no block."""
    from rasteret.geo.nearest import separable_nearest_index
    from rasteret.geo.window import Window

    rng = np.random.default_rng(11)
    source = GridSpec("EPSG:32633", (10.0, 0.0, 500000.0, 0.0, -10.0, 4200000.0), (300, 400))
    for _ in range(40):
        x0 = 500000.0 + float(rng.uniform(-800.0, 4500.0))
        y0 = 4200000.0 - float(rng.uniform(-800.0, 3500.0))
        target = GridSpec("EPSG:32633", (10.0, 0.0, x0, 0.0, -10.0, y0), (120, 150))
        window = Window(int(rng.integers(0, 40)), int(rng.integers(0, 40)), 70, 90)
        crop = Window(int(rng.integers(-5, 100)), int(rng.integers(-5, 100)), 150, 120)
        fast = separable_nearest_index(source, target, window, crop)
        assert fast is not None
        if not fast.inside.any():
            assert fast.block is None
            continue
        block = fast.block
        assert block is not None
        inside = np.zeros_like(fast.inside)
        inside[block.rows, block.cols] = True
        np.testing.assert_array_equal(fast.inside, inside)
        rows = np.arange(block.src_rows.start, block.src_rows.stop)
        cols = np.arange(block.src_cols.start, block.src_cols.stop)
        expected = rows[:, None] * crop.width + cols[None, :]
        np.testing.assert_array_equal(fast.index[block.rows, block.cols], expected)
    finer = GridSpec("EPSG:32633", (7.0, 0.0, 500100.0, 0.0, -7.0, 4199900.0), (50, 50))
    whole = Window(0, 0, 50, 50)
    assert separable_nearest_index(source, finer, whole, Window(0, 0, 300, 400)).block is None


@pytest.mark.parametrize(
    ("dtype", "src_nodata", "fill"),
    [
        ("uint16", 0, 0),
        ("uint16", None, 0),
        ("float32", -9999.0, -9999.0),
        ("float32", None, np.nan),
    ],
)
def test_offset_block_copy_equals_the_gather(dtype: str, src_nodata, fill) -> None:  # type: ignore[no-untyped-def]
    """``gather_nearest`` on a plain-offset map copies a block: the same values, fill
    and nudged clashes (a valid value equal to the fill) as the per-pixel gather."""
    from rasteret.geo.nearest import separable_nearest_index
    from rasteret.geo.warp import _gather_index, gather_nearest
    from rasteret.geo.window import Window

    rng = np.random.default_rng(3)
    source = GridSpec("EPSG:32633", (10.0, 0.0, 500000.0, 0.0, -10.0, 4200000.0), (300, 400))
    crop = Window(20, 30, 150, 120)
    data = rng.integers(0, 4, (2, 150, 120)).astype(dtype)  # many 0s: nodata and fill clashes
    if dtype == "float32":
        data[0, 5:9, 5:9] = np.nan
        data[data == 3] = -9999.0
    used = 0
    for x0, y0 in ((500_453.0, 4_199_612.0), (500_050.0, 4_199_950.0), (501_203.0, 4_198_788.0)):
        target = GridSpec("EPSG:32633", (10.0, 0.0, x0, 0.0, -10.0, y0), (80, 90))
        fast = separable_nearest_index(source, target, Window(0, 0, 80, 90), crop)
        assert fast is not None and fast.block is not None
        got = gather_nearest(data, fast, src_nodata, fill)
        expected = _gather_index(data, fast.index, fast.inside, src_nodata, fill)
        np.testing.assert_array_equal(got, expected)
        used += int((~fast.inside).any())
    assert used  # a grid reaching past the crop was compared too
