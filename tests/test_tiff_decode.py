"""Tile codec and reference reader against GDAL, on synthetic GeoTIFFs written by rasterio.

Every file is decoded with ``rasteret.tiff`` (our parser + ``read_image``) and compared
with ``rasterio.open(...).read(...)``: whole image, a window crossing block edges and
overview levels. Lossless codecs must be bit-identical. Lossy codecs (JPEG, lossy WebP)
are held to ``LOSSY_MAX_DN``: the decoders use libjpeg-turbo / libwebp like GDAL does
and were measured bit-identical to GDAL 3.12 here, but another build may differ by a
few DN at sharp edges (the corpus references, made with GDAL 3.10, differ by up to
119 DN on single pixels, mean < 3 DN: see test_corpus_conformance.py).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import pickle
import zlib
from pathlib import Path

import imagecodecs
import numpy as np
import pytest
import rasterio
import tifffile
from rasterio.enums import Resampling
from rasterio.transform import from_origin
from rasterio.windows import Window

from rasteret.errors import CorruptTiffError, TiffError, UnsupportedTiffError
from rasteret.tiff.decode import BlockDecoding, decode_block
from rasteret.tiff.header import parse_header
from rasteret.tiff.image import read_image

WIDTH, HEIGHT, BANDS = 300, 200, 3
WINDOW = (37, 45, 150, 101)  # col_off, row_off, width, height: crosses block edges
LOSSY_MAX_DN = 2

INT_DTYPES = ["uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64"]
FLOAT_DTYPES = ["float16", "float32", "float64"]


# ---------------------------------------------------------------- helpers


def make_array(dtype: str, bands: int = BANDS, seed: int = 0) -> np.ndarray:
    """Smooth gradients plus noise, the dtype's extremes and (floats) NaN/inf."""
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    rows, cols = np.mgrid[0:HEIGHT, 0:WIDTH]
    if dt.kind == "f":
        base = (rows * 3.25 - cols * 1.5)[None] + rng.normal(0, 50, (bands, HEIGHT, WIDTH))
        out = base.astype(dt)
        out[:, 5, 5:9] = [np.nan, np.inf, -np.inf, 0.0]
        return out
    info = np.iinfo(dt)
    span = min(int(info.max) - int(info.min), 2**40)
    base = (rows * 7 + cols * 3)[None] + rng.integers(0, 16, (bands, HEIGHT, WIDTH))
    out = (base % span + max(int(info.min), -(2**39))).astype(dt)
    out[:, 3, :4] = [info.min, info.max, info.min, info.max]  # predictor wrap-around
    return out


def write_gtiff(path: Path, array: np.ndarray, **options: object) -> Path:
    """Write ``array`` (bands, rows, cols) as a GeoTIFF with GDAL creation ``options``."""
    profile = {
        "driver": "GTiff",
        "width": array.shape[2],
        "height": array.shape[1],
        "count": array.shape[0],
        "dtype": array.dtype.name,
        "crs": "EPSG:32633",
        "transform": from_origin(500000, 4000000, 10, 10),
    }
    profile.update(options)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(array)
    return path


def fetcher(data: bytes, log: list | None = None):
    async def fetch(offset: int, length: int) -> bytes:
        if log is not None:
            log.append((offset, length))
        return data[offset : offset + length]

    return fetch


def read_ours(path: Path, **kwargs: object) -> np.ndarray:
    data = path.read_bytes()
    header = parse_header(data, str(path))
    return asyncio.run(read_image(header, fetcher(data), **kwargs))


def read_gdal(path: Path, level: int = 0, window: tuple[int, int, int, int] | None = None):
    opts = {"overview_level": level - 1} if level else {}
    with rasterio.open(path, **opts) as src:
        return src.read(window=Window(*window) if window else None)


def assert_same(ours: np.ndarray, ref: np.ndarray, lossy: bool = False) -> None:
    assert ours.shape == ref.shape
    assert ours.dtype == ref.dtype, (ours.dtype, ref.dtype)
    assert ours.flags.c_contiguous and ours.dtype.isnative
    if lossy:
        diff = np.abs(ours.astype(np.int64) - ref.astype(np.int64))
        assert diff.max() <= LOSSY_MAX_DN, f"max {diff.max()} DN, mean {diff.mean():.3f}"
    else:
        np.testing.assert_array_equal(ours, ref)


def check_against_gdal(path: Path, lossy: bool = False, levels: int = 1) -> None:
    assert_same(read_ours(path), read_gdal(path), lossy)
    assert_same(read_ours(path, window=WINDOW), read_gdal(path, window=WINDOW), lossy)
    for level in range(1, levels):
        assert_same(read_ours(path, level=level), read_gdal(path, level=level), lossy)


def layout_options(index: int) -> dict[str, object]:
    """Vary tiling, interleave and BigTIFF deterministically across cases."""
    tiled = index % 2 == 0
    options: dict[str, object] = {"interleave": "pixel" if (index // 2) % 2 == 0 else "band"}
    if tiled:
        options.update(tiled=True, blockxsize=64, blockysize=64)
    else:
        options.update(tiled=False, blockysize=48)  # 200 rows: a short last strip
    if index % 5 == 0:
        options["bigtiff"] = "YES"
    return options


# ---------------------------------------------------------------- lossless matrix

LOSSLESS_CASES = [
    (codec, dtype, endian)
    for codec, dtype, endian in itertools.product(
        ["DEFLATE", "LZW", "ZSTD"], INT_DTYPES + FLOAT_DTYPES, ["LITTLE", "BIG"]
    )
]


@pytest.mark.parametrize(("codec", "dtype", "endian"), LOSSLESS_CASES)
def test_predictor_codecs_match_gdal(tmp_path: Path, codec: str, dtype: str, endian: str) -> None:
    index = LOSSLESS_CASES.index((codec, dtype, endian))
    predictor = 3 if dtype in FLOAT_DTYPES else 2
    if index % 3 == 0 or dtype == "float16":  # GDAL writes predictor 3 for float16 only via NBITS
        predictor = 1
    path = write_gtiff(
        tmp_path / "p.tif",
        make_array(dtype, seed=index),
        compress=codec,
        predictor=predictor,
        endianness=endian,
        **layout_options(index),
    )
    check_against_gdal(path)


OTHER_CASES = [
    (codec, dtype)
    for codec in ["NONE", "PACKBITS", "LZMA", "LERC", "LERC_DEFLATE", "LERC_ZSTD"]
    for dtype in ["uint8", "int16", "uint32", "float32", "float64"]
    if not (codec == "PACKBITS" and dtype == "float64")
]


@pytest.mark.parametrize(("codec", "dtype"), OTHER_CASES)
def test_other_lossless_codecs_match_gdal(tmp_path: Path, codec: str, dtype: str) -> None:
    index = OTHER_CASES.index((codec, dtype))
    options = layout_options(index)
    if codec.startswith("LERC"):
        options["max_z_error"] = 0
    else:
        options["endianness"] = "BIG" if index % 2 else "LITTLE"
    array = make_array(dtype, seed=index)
    if codec.startswith("LERC") and array.dtype.kind == "f":
        array[~np.isfinite(array)] = 0  # LERC codes NaN as a mask (tested separately)
    path = write_gtiff(tmp_path / "o.tif", array, compress=codec, **options)
    check_against_gdal(path)


def test_lerc_float_nodata_mask_is_nan_like_gdal(tmp_path: Path) -> None:
    array = make_array("float32", bands=1)
    array[~np.isfinite(array)] = 0
    array[0, 20:40, 30:90] = np.nan
    path = write_gtiff(
        tmp_path / "l.tif", array, compress="LERC", max_z_error=0, nodata=np.nan, tiled=True
    )
    ours = read_ours(path)
    assert np.isnan(ours[0, 20:40, 30:90]).all()
    assert_same(ours, read_gdal(path))


@pytest.mark.parametrize("nbits", [1, 2, 4, 12, 24])
@pytest.mark.parametrize("endian", ["LITTLE", "BIG"])
def test_packed_bit_depths_match_gdal(tmp_path: Path, nbits: int, endian: str) -> None:
    dtype = "uint8" if nbits <= 8 else ("uint16" if nbits <= 16 else "uint32")
    array = (make_array(dtype) % (1 << nbits)).astype(dtype)
    options = layout_options(nbits)
    path = write_gtiff(
        tmp_path / "n.tif", array, nbits=nbits, endianness=endian, compress="DEFLATE", **options
    )
    check_against_gdal(path)


@pytest.mark.parametrize("predictor", [1, 3])
def test_float16_via_nbits_keeps_float16(tmp_path: Path, predictor: int) -> None:
    array = make_array("float32", bands=2)
    path = write_gtiff(tmp_path / "h.tif", array, nbits=16, compress="DEFLATE", predictor=predictor)
    ours, ref = read_ours(path), read_gdal(path)
    assert ours.dtype == np.float16  # native float16; GDAL 3.12 returns float16 too
    np.testing.assert_array_equal(ours.astype(np.float32), ref.astype(np.float32))


# ---------------------------------------------------------------- lossy codecs


@pytest.mark.parametrize(
    ("name", "bands", "options"),
    [
        ("ycbcr", 3, {"photometric": "YCBCR", "tiled": True}),
        ("ycbcr-strips", 3, {"photometric": "YCBCR", "blockysize": 32}),
        ("rgb", 3, {"photometric": "RGB", "tiled": True}),
        ("gray", 1, {"tiled": True, "jpeg_quality": 60}),
        ("band-interleaved", 3, {"interleave": "band", "tiled": True}),
        ("rgba", 4, {"tiled": True, "blockxsize": 128, "blockysize": 128}),
    ],
)
def test_jpeg_matches_gdal(tmp_path: Path, name: str, bands: int, options: dict) -> None:
    array = make_array("uint8", bands=bands)
    path = write_gtiff(tmp_path / f"{name}.tif", array, compress="JPEG", **options)
    with rasterio.open(path, "r+") as dst:
        dst.build_overviews([2, 4], Resampling.average)
    check_against_gdal(path, lossy=True, levels=3)


@pytest.mark.parametrize(
    ("bands", "options", "lossy"),
    [
        (3, {"webp_lossless": True}, False),
        (3, {"webp_level": 80}, True),
        (4, {"webp_lossless": True, "blockxsize": 128, "blockysize": 128}, False),
    ],
)
def test_webp_matches_gdal(tmp_path: Path, bands: int, options: dict, lossy: bool) -> None:
    path = write_gtiff(
        tmp_path / "w.tif", make_array("uint8", bands=bands), compress="WEBP", tiled=True, **options
    )
    check_against_gdal(path, lossy=lossy)


@pytest.mark.skipif(not imagecodecs.JPEGXL.available, reason="imagecodecs lacks libjxl")
def test_jpegxl_lossless_roundtrip(tmp_path: Path) -> None:
    # GDAL's wheel has no JPEG-XL codec: tifffile writes the file, the array is the oracle.
    array = np.moveaxis(make_array("uint8"), 0, -1)
    path = tmp_path / "jxl.tif"
    tifffile.imwrite(
        path,
        array,
        tile=(64, 64),
        compression="jpegxl",
        compressionargs={"lossless": True},
    )
    ours = read_ours(path)
    np.testing.assert_array_equal(ours, np.moveaxis(array, -1, 0))


# ---------------------------------------------------------------- overviews, sparse, masks


@pytest.mark.parametrize(
    ("dtype", "options"),
    [
        ("uint16", {"compress": "DEFLATE", "predictor": 2, "endianness": "BIG", "tiled": True}),
        ("float32", {"compress": "LZW", "predictor": 3, "blockysize": 16}),
        ("int8", {"compress": "ZSTD", "interleave": "band", "tiled": True, "bigtiff": "YES"}),
    ],
)
def test_overview_levels_match_gdal(tmp_path: Path, dtype: str, options: dict) -> None:
    path = write_gtiff(tmp_path / "ovr.tif", make_array(dtype), **options)
    with rasterio.open(path, "r+") as dst:
        dst.build_overviews([2, 4, 8], Resampling.nearest)
    check_against_gdal(path, levels=4)
    level2 = read_gdal(path, level=2)
    window = (3, 2, level2.shape[2] - 5, level2.shape[1] - 4)
    assert_same(read_ours(path, level=2, window=window), read_gdal(path, 2, window))


@pytest.mark.parametrize("nodata", [None, 7])
def test_sparse_blocks_filled_like_gdal(tmp_path: Path, nodata: int | None) -> None:
    path = tmp_path / "sparse.tif"
    profile = {
        "driver": "GTiff",
        "width": WIDTH,
        "height": HEIGHT,
        "count": 2,
        "dtype": "int16",
        "crs": "EPSG:4326",
        "transform": from_origin(0, 50, 0.1, 0.1),
        "tiled": True,
        "blockxsize": 64,
        "blockysize": 64,
        "compress": "DEFLATE",
        "sparse_ok": True,
        "nodata": nodata,
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(make_array("int16", bands=2)[:, :64, 64:128], window=Window(64, 0, 64, 64))
    header = parse_header(path.read_bytes(), str(path))
    assert (header.full.block_byte_counts == 0).sum() >= 10  # really sparse
    ours = read_ours(path)
    assert_same(ours, read_gdal(path))
    assert (ours[:, 100:, :] == (nodata or 0)).all()


def test_internal_mask_matches_gdal_dataset_mask(tmp_path: Path) -> None:
    path = tmp_path / "mask.tif"
    mask = np.zeros((HEIGHT, WIDTH), np.uint8)
    mask[30:150, 20:250] = 255
    with (
        rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True),
        rasterio.open(
            path,
            "w",
            driver="GTiff",
            width=WIDTH,
            height=HEIGHT,
            count=3,
            dtype="uint8",
            tiled=True,
            compress="DEFLATE",
            crs="EPSG:4326",
            transform=from_origin(0, 50, 0.1, 0.1),
        ) as dst,
    ):
        dst.write(make_array("uint8"))
        dst.write_mask(mask)
    header = parse_header(path.read_bytes(), str(path))
    assert header.masks, "GDAL wrote an internal mask IFD"
    ours = read_ours(path, mask=True)
    with rasterio.open(path) as src:
        np.testing.assert_array_equal(ours[0], src.dataset_mask())


# ---------------------------------------------------------------- reader behaviour


def test_window_fetches_only_touched_blocks_concurrently(tmp_path: Path) -> None:
    path = write_gtiff(
        tmp_path / "t.tif", make_array("uint16"), compress="DEFLATE", tiled=True, blockxsize=64,
        blockysize=64,
    )  # fmt: skip
    data = path.read_bytes()
    header = parse_header(data, str(path))
    in_flight = peak = 0
    calls: list[tuple[int, int]] = []

    async def slow_fetch(offset: int, length: int) -> bytes:
        nonlocal in_flight, peak
        calls.append((offset, length))
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        return data[offset : offset + length]

    window = (60, 60, 10, 10)  # 2 x 2 tiles
    ours = asyncio.run(read_image(header, slow_fetch, window=window))
    assert len(calls) == 4 and peak == 4
    assert_same(ours, read_gdal(path, window=window))


def test_truncated_file_raises_corrupt(tmp_path: Path) -> None:
    path = write_gtiff(tmp_path / "t.tif", make_array("uint8"), compress="DEFLATE", tiled=True)
    data = path.read_bytes()
    header = parse_header(data, str(path))
    cut = data[: int(header.full.block_offsets[-1]) + 10]
    with pytest.raises(CorruptTiffError, match=r"t\.tif.*block"):
        asyncio.run(read_image(header, fetcher(cut)))


def test_bad_window_and_level_raise_value_error(tmp_path: Path) -> None:
    path = write_gtiff(tmp_path / "t.tif", make_array("uint8"))
    with pytest.raises(ValueError, match="exceeds"):
        read_ours(path, window=(250, 0, 100, 10))
    with pytest.raises(ValueError, match="level 3"):
        read_ours(path, level=3)


# ---------------------------------------------------------------- decode_block directly


def _deflate_decoding(**changes: object) -> BlockDecoding:
    values = {"compression": 8, "dtype": "uint16", "bits_per_sample": 16, "block_width": 4}
    values["block_height"] = 3
    values.update(changes)
    return BlockDecoding(**values)


def test_big_endian_predictor2_swaps_before_accumulating() -> None:
    values = np.array([[1, 300, 65535, 2], [5, 6, 7, 8], [0, 65535, 1, 1]], np.uint16)
    diffs = np.diff(values.astype(np.int64), axis=1, prepend=0).astype(np.uint16)
    payload = zlib.compress(diffs.astype(">u2").tobytes())
    decoding = _deflate_decoding(predictor=2, byte_order=">")
    block = decode_block(payload, decoding)
    assert block.dtype == np.dtype("uint16") and block.dtype.isnative
    np.testing.assert_array_equal(block[..., 0], values)


def test_corrupt_payload_names_source_and_block() -> None:
    with pytest.raises(CorruptTiffError, match=r"s3://b/x\.tif.*block 7"):
        decode_block(b"\x78\x9cgarbage", _deflate_decoding(), source="s3://b/x.tif", block_index=7)


def _whole_stream(height: int = 64, width: int = 128) -> tuple[np.ndarray, bytes]:
    rng = np.random.default_rng(3)
    values = rng.integers(0, 4000, (height, width), dtype=np.uint16)
    return values, zlib.compress(values.tobytes(), 6)


def test_a_whole_deflate_stream_with_a_wrong_checksum_is_corrupt() -> None:
    """Every byte of the data intact, only the Adler-32 trailer wrong: ISA-L (the fast
    path) does not check it, so rasteret does; the decoders that do check decide."""
    values, payload = _whole_stream()
    decoding = _deflate_decoding(block_width=128, block_height=64)
    np.testing.assert_array_equal(decode_block(payload, decoding)[..., 0], values)
    wrong = payload[:-1] + bytes([payload[-1] ^ 0x01])
    with pytest.raises(CorruptTiffError, match=r"f\.tif.*block 2"):
        decode_block(wrong, decoding, source="f.tif", block_index=2)


@pytest.mark.parametrize("after", [b"\0" * 7, b"\xff\x01"])
def test_bytes_after_a_deflate_stream_are_ignored(after: bytes) -> None:
    """A block's bytes may run past its zlib stream (padding; libtiff ignores it): the
    trailer is then not the last four bytes, the fast path declines, and the stream
    still decodes to its values."""
    values, payload = _whole_stream()
    decoding = _deflate_decoding(block_width=128, block_height=64)
    np.testing.assert_array_equal(decode_block(payload + after, decoding)[..., 0], values)


def test_short_payload_is_an_error_never_zero_filled() -> None:
    short = zlib.compress(bytes(2 * 4 * 2))  # 2 rows of a 3-row tile
    with pytest.raises(CorruptTiffError, match="decodes to 16 bytes, expected 24"):
        decode_block(short, _deflate_decoding(), source="f.tif")
    strip = _deflate_decoding(tiled=False)  # a short last strip is legitimate...
    block = decode_block(zlib.compress(bytes(range(16))), strip)
    assert block.shape == (3, 4, 1) and (block[2] == 0).all()
    with pytest.raises(CorruptTiffError):  # ...but not when the caller needs 3 rows
        decode_block(zlib.compress(bytes(range(16))), strip, rows=3)
    with pytest.raises(CorruptTiffError):  # nor a partial row
        decode_block(zlib.compress(bytes(range(15))), strip)


def test_rows_a_short_block_lacks_read_zero_in_reused_memory() -> None:
    """The rows a short strip lacks are zero, not whatever the freed memory numpy hands
    out again held."""
    strip = _deflate_decoding(tiled=False, block_width=256, block_height=64)
    payload = zlib.compress(np.full((40, 256), 7, "<u2").tobytes())
    for _ in range(10):  # a dirty array freed just before each decode allocates
        dirty = np.full((64, 256, 1), 0xFFFF, np.uint16)
        del dirty
        block = decode_block(payload, strip)
        assert block.shape == (64, 256, 1)
        assert (block[:40] == 7).all() and (block[40:] == 0).all()


@pytest.mark.parametrize(
    ("changes", "feature"),
    [
        ({"compression": 6}, "OJPEG"),
        ({"compression": 34676}, "SGILog"),
        ({"compression": 65535}, "compression 65535"),
        ({"predictor": 255}, "predictor 255"),
        ({"photometric": 6, "ycbcr_subsampling": (1, 4), "dtype": "uint8", "samples": 3}, "1x4"),
        ({"photometric": 5, "dtype": "uint8", "samples": 5}, "CMYK"),
    ],
)
def test_unsupported_features_are_named(changes: dict, feature: str) -> None:
    values = {"bits_per_sample": 8 if changes.get("dtype") == "uint8" else 16, **changes}
    decoding = _deflate_decoding(**values)
    with pytest.raises(UnsupportedTiffError, match=feature) as info:
        decode_block(b"", decoding, source="a.tif")
    assert info.value.source == "a.tif"
    with pytest.raises(UnsupportedTiffError):
        decoding.check("a.tif")


def test_block_decoding_is_hashable_json_and_picklable(tmp_path: Path) -> None:
    path = write_gtiff(tmp_path / "j.tif", make_array("uint8"), compress="JPEG", tiled=True)
    header = parse_header(path.read_bytes(), str(path))
    decoding = BlockDecoding.from_layout(header.full, header.byte_order)
    assert decoding.jpeg_tables
    text = json.dumps(decoding.to_dict())
    again = BlockDecoding.from_dict(json.loads(text))
    assert again == decoding and hash(again) == hash(decoding)
    assert {decoding: 1}[again] == 1
    decoding.check()  # compiles the plan; pickling must still work
    assert pickle.loads(pickle.dumps(decoding)) == decoding


def test_from_layout_rejects_unrepresentable_samples(tmp_path: Path) -> None:
    path = write_gtiff(tmp_path / "u.tif", make_array("uint8", bands=1))
    header = parse_header(path.read_bytes(), str(path))
    from dataclasses import replace

    odd = replace(header.full, bits_per_sample=40, dtype="uint64")
    with pytest.raises(TiffError, match="40-bit"):
        BlockDecoding.from_layout(odd, "<", source="u.tif")
