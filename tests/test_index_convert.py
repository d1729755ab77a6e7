"""band_metadata_from_header and BandLevels against GDAL (rasterio) and tifffile.

COGs are written with rasterio into a temporary directory; block offsets are checked
against tifffile, grids against rasterio, and tiles decoded through the index views
against rasterio's pixels (so a wrong plane slice or overview transform fails).
"""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pyarrow as pa
import pytest

rasterio = pytest.importorskip("rasterio", reason="rasterio is the test oracle")
tifffile = pytest.importorskip("tifffile", reason="tifffile is the offsets oracle")
header_module = pytest.importorskip(
    "rasteret.tiff.header", reason="TIFF header parser not available yet"
)

from rasterio.transform import from_origin  # noqa: E402
from rasterio.windows import Window  # noqa: E402

from rasteret.index import BAND_METADATA_TYPE, BandLevels, band_metadata_from_header  # noqa: E402
from rasteret.tiff.decode import BlockDecoding, decode_block  # noqa: E402

W, H = 600, 500


def _write(
    path: Path,
    *,
    count: int,
    interleave: str,
    tiled: bool = True,
    mask: bool = False,
    dtype: str = "uint16",
    overviews: tuple[int, ...] = (2, 4),
) -> Path:
    profile = {
        "driver": "GTiff",
        "width": W,
        "height": H,
        "count": count,
        "dtype": dtype,
        "crs": "EPSG:32633",
        "transform": from_origin(500000, 5000000, 10, 10),
        "compress": "deflate",
        "predictor": 2,
        "interleave": interleave,
        "nodata": None if mask else 7,
    }
    if tiled:
        profile.update(tiled=True, blockxsize=256, blockysize=256)
    else:
        profile.update(tiled=False, blockysize=16)
    rng = np.random.default_rng(42)
    data = rng.integers(0, 200, size=(count, H, W)).astype(dtype)
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        if count >= 2:
            dst.scales = tuple(0.5 * (i + 1) for i in range(count))
            dst.offsets = tuple(float(i) - 1 for i in range(count))
        if mask:
            m = np.full((H, W), 255, np.uint8)
            m[100:300, 50:400] = 0
            dst.write_mask(m)
        if overviews:
            dst.build_overviews(list(overviews))
    return path


@pytest.fixture(scope="module")
def cogs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cogs")
    return {
        "planar": _write(root / "planar.tif", count=3, interleave="band"),
        "chunky": _write(root / "chunky.tif", count=3, interleave="pixel"),
        "mask": _write(root / "mask.tif", count=1, interleave="band", dtype="uint8", mask=True),
        "strips": _write(
            root / "strips.tif", count=2, interleave="band", tiled=False, overviews=()
        ),
    }


def _header(path: Path):
    return header_module.parse_header(path.read_bytes(), str(path))


def _pages(path: Path) -> tuple[list, list]:
    """tifffile pages of the image pyramid and of the mask pyramid, largest first."""
    with tifffile.TiffFile(path) as tif:
        pages = [
            (p.imagewidth, p.imagelength, p.subfiletype, p.dataoffsets, p.databytecounts)
            for p in tif.pages
        ]
    images = sorted((p for p in pages if not p[2] & 4), key=lambda p: -p[0])
    masks = sorted((p for p in pages if p[2] & 4), key=lambda p: -p[0])
    return images, masks


def _decode_level(path: Path, levels: BandLevels, level, row: int, col: int) -> np.ndarray:
    offset, count = level.block(row, col)
    with open(path, "rb") as f:
        f.seek(offset)
        payload = f.read(count)
    decoding = BlockDecoding.from_layout(levels.layout(level), levels.byte_order)
    return decode_block(payload, decoding, source=str(path))


@pytest.mark.parametrize("band", [0, 1, 2])
def test_planar_band_is_sliced_at_every_level(cogs: dict[str, Path], band: int) -> None:
    path = cogs["planar"]
    md = band_metadata_from_header(_header(path), band)
    images, _ = _pages(path)
    with rasterio.open(path) as src:
        assert md["planar_configuration"] == 2 and md["band_index"] == band
        assert (md["image_height"], md["image_width"]) == (src.height, src.width)
        assert (md["tile_height"], md["tile_width"]) == src.block_shapes[band]
        assert md["transform"] == pytest.approx(list(src.transform)[:6])
        assert md["epsg"] == 32633 and md["dtype"] == "uint16"
        assert md["nodata"] == src.nodata == 7
        assert md["scale"] == pytest.approx(src.scales[band])
        assert md["offset"] == pytest.approx(src.offsets[band])
        factors = src.overviews(band + 1)
    per_plane = math.ceil(W / 256) * math.ceil(H / 256)
    assert md["tile_offsets"] == list(images[0][3][band * per_plane : (band + 1) * per_plane])
    assert md["tile_byte_counts"] == list(images[0][4][band * per_plane : (band + 1) * per_plane])
    assert [o["image_width"] for o in md["overviews"]] == [math.ceil(W / f) for f in factors]
    for overview, page in zip(md["overviews"], images[1:], strict=True):
        n = math.ceil(overview["image_width"] / 256) * math.ceil(overview["image_height"] / 256)
        assert overview["tile_offsets"] == list(page[3][band * n : (band + 1) * n])
    assert md["mask"] is None
    pa.array([md], type=BAND_METADATA_TYPE)  # the dict matches the Arrow schema


@pytest.mark.parametrize("band", [0, 2])
def test_planar_tiles_decode_to_gdal_pixels_at_every_level(cogs: dict[str, Path], band: int):
    path = cogs["planar"]
    levels = BandLevels.from_struct(band_metadata_from_header(_header(path), band))
    assert len(levels.levels) == 3
    for index, level in enumerate(levels.levels):
        opts = {} if index == 0 else {"overview_level": index - 1}
        with rasterio.open(path, **opts) as src:
            assert level.transform == pytest.approx(tuple(src.transform)[:6])
            assert (level.height, level.width) == (src.height, src.width)
            row, col = level.tiles_down - 1, level.tiles_across - 1  # edge tile
            h = min(level.tile_height, level.height - row * level.tile_height)
            w = min(level.tile_width, level.width - col * level.tile_width)
            window = Window(col * level.tile_width, row * level.tile_height, w, h)
            expected = src.read(band + 1, window=window)
        decoded = _decode_level(path, levels, level, row, col)
        assert decoded.shape == (level.tile_height, level.tile_width, 1)
        np.testing.assert_array_equal(decoded[:h, :w, 0], expected)


def test_chunky_bands_share_blocks_and_select_their_sample(cogs: dict[str, Path]) -> None:
    path = cogs["chunky"]
    header = _header(path)
    structs = [band_metadata_from_header(header, b) for b in range(3)]
    images, _ = _pages(path)
    assert all(s["tile_offsets"] == list(images[0][3]) for s in structs)
    assert [s["band_index"] for s in structs] == [0, 1, 2]
    levels = BandLevels.from_struct(structs[1])
    assert levels.samples_per_block == 3
    decoded = _decode_level(path, levels, levels.overviews[0], 0, 0)
    with rasterio.open(path, overview_level=0) as src:
        expected = src.read(window=Window(0, 0, 256, 250))
    np.testing.assert_array_equal(np.moveaxis(decoded[:250, :256], -1, 0), expected)


def test_internal_mask_and_its_overviews(cogs: dict[str, Path]) -> None:
    path = cogs["mask"]
    md = band_metadata_from_header(_header(path), 0)
    _, masks = _pages(path)
    assert md["mask"] is not None
    assert (md["mask"]["image_width"], md["mask"]["image_height"]) == (W, H)
    assert md["mask"]["tile_offsets"] == list(masks[0][3])
    assert [m["image_width"] for m in md["mask"]["overviews"]] == [p[0] for p in masks[1:]]
    assert len(md["mask"]["overviews"]) == len(md["overviews"]) == 2
    levels = BandLevels.from_struct(md)
    for level in levels.levels:
        assert levels.mask_for(level) is not None
    mask_level = levels.mask
    assert mask_level.transform == levels.full.transform
    decoded = _decode_level(path, levels, mask_level, 0, 1)
    with rasterio.open(path) as src:
        expected = src.read_masks(1, window=Window(256, 0, 256, 256))
    np.testing.assert_array_equal(decoded[:, :, 0] != 0, expected != 0)


def test_strips_are_blocks_of_full_width(cogs: dict[str, Path]) -> None:
    path = cogs["strips"]
    md = band_metadata_from_header(_header(path), 1)
    images, _ = _pages(path)
    strips = math.ceil(H / 16)
    assert (md["tiled"], md["tile_width"], md["tile_height"]) == (False, W, 16)
    assert md["tile_offsets"] == list(images[0][3][strips : 2 * strips])
    levels = BandLevels.from_struct(md)
    assert (levels.full.tiles_down, levels.full.tiles_across) == (strips, 1)
    decoded = _decode_level(path, levels, levels.full, 3, 0)
    with rasterio.open(path) as src:
        expected = src.read(2, window=Window(0, 48, W, 16))
    np.testing.assert_array_equal(decoded[:, :, 0], expected)


def test_object_info_and_errors(cogs: dict[str, Path]) -> None:
    path = cogs["planar"]
    header = _header(path)
    plain = band_metadata_from_header(header)
    assert plain["file_size"] == header.file_size
    assert plain["etag"] is None and plain["last_modified"] is None
    info = SimpleNamespace(size=path.stat().st_size, etag='"abc"', last_modified="Tue, 02 Jan")
    md = band_metadata_from_header(header, 0, info)
    assert (md["file_size"], md["etag"], md["last_modified"]) == (
        path.stat().st_size,
        '"abc"',
        "Tue, 02 Jan",
    )
    with pytest.raises(ValueError, match=r"planar\.tif.*band_index 3"):
        band_metadata_from_header(header, 3)


def test_real_headers_round_trip_through_geoparquet(cogs: dict[str, Path], tmp_path: Path):
    import datetime as dt

    from index_tables import make_table, sample_records
    from rasteret import as_collection, load

    structs = {
        "B1": band_metadata_from_header(_header(cogs["planar"]), 1),
        "M": band_metadata_from_header(_header(cogs["mask"]), 0),
    }
    table = make_table(sample_records()[:1], bands=("B1", "M"))
    for band, struct in structs.items():
        index = table.schema.get_field_index(f"{band}_metadata")
        table = table.set_column(
            index, f"{band}_metadata", pa.array([struct], type=BAND_METADATA_TYPE)
        )
    collection = as_collection(table.set_column(1, "datetime", pa.array([dt.datetime(2024, 5, 2)])))
    collection.export(tmp_path / "real")
    loaded = load(tmp_path / "real")
    for band, struct in structs.items():
        assert loaded.table[f"{band}_metadata"].to_pylist() == [struct]
    mask = loaded.band_levels("M")[0].mask
    assert mask is not None and mask.offsets.tolist() == structs["M"]["mask"]["tile_offsets"]
