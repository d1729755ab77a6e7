"""JPEG 2000 tiles: TIFF Compression 34712 (and Aperio's 33003 / 33005) decode.

Which oracle, and why: GDAL's GTiff driver cannot *write* JPEG 2000 tiles (its
``COMPRESS`` choices stop at LERC / WebP / JXL), so the files are written by
:func:`rasteret.samples.write_cog` with lossless (reversible 5/3) OpenJPEG codestreams.
The oracle is then the array that was written (lossless: decoding must return it
exactly) and, where the installed GDAL can read the file, rasterio's read as well
(:func:`_gdal_read`; GDAL 3.12 in rasterio 1.5 cannot: "missing codec JP2000", because
its libtiff has no JPEG 2000 codec). Aperio's 33003 (YCbCr components) is checked
against Pillow's independent YCbCr → RGB conversion. Hostile streams must fail with
the typed error before OpenJPEG runs.
"""

from __future__ import annotations

import datetime as dt
import struct
from pathlib import Path

import imagecodecs
import numpy as np
import pytest
import rasterio
import zarr
from PIL import Image
from rasterio.errors import RasterioIOError

from _testcollections import make_collection, record, smooth_image
from rasteret.errors import CorruptTiffError, UnsupportedTiffError
from rasteret.samples import reduce_level, write_cog
from rasteret.store import open_store
from rasteret.tiff import BlockDecoding, decode_block
from rasteret.tiff.header import parse_header
from rasteret.tiff.jpeg2k import j2k_header

T0 = dt.datetime(2024, 6, 1, 10, 0)
TRANSFORM = (10.0, 0.0, 300000.0, 0.0, -10.0, 5000000.0)


def _gdal_read(path: Path) -> np.ndarray | None:
    """rasterio's read of ``path``, or ``None`` when this GDAL cannot decode the tiles."""
    try:
        with rasterio.open(path) as src:
            return src.read()
    except RasterioIOError as exc:
        assert "JP2000" in str(exc) or "codec" in str(exc).lower(), exc
        return None


def _written(path: Path, data: np.ndarray, **options: object) -> Path:
    write_cog(path, data, transform=TRANSFORM, epsg=32633, compression="jpeg2000", **options)
    gdal = _gdal_read(path)
    if gdal is not None:  # a GDAL with a JPEG 2000 codec: it must agree with the input too
        np.testing.assert_array_equal(gdal, data)
    return path


def _store_pixels(collection: object, band: str) -> np.ndarray:
    store = open_store(collection)  # type: ignore[arg-type]
    return zarr.open_group(store, mode="r")[f"{store.groups[0]}/{band}"][0]


def test_uint16_single_band(tmp_path: Path) -> None:
    data = smooth_image((1, 200, 150), seed=2) * 13  # uses all 16 bits
    path = _written(tmp_path / "u16.tif", data, tile=64, overviews=(2,), nodata=0)
    header = parse_header(path.read_bytes(), str(path))
    assert [image.compression for image in header.images] == [34712, 34712]
    collection = make_collection([record("j", T0, {"B1": path})], ["B1"])
    # the Zarr codec path (VirtualStore) and the window-read path
    np.testing.assert_array_equal(_store_pixels(collection, "B1"), data[0])
    window = collection.read_window(bands="B1", bounds=(300000, 4998000, 301500, 5000000))
    np.testing.assert_array_equal(window, data)
    # the overview IFD (written as reduce_level's average, losslessly)
    overview = collection.read_window(
        bands="B1", bounds=(300000, 4998000, 301500, 5000000), res=20.0
    )
    np.testing.assert_array_equal(overview, reduce_level(data, 2, nodata=0))


@pytest.mark.parametrize("interleave", ["pixel", "band"])
def test_three_band_uint8(tmp_path: Path, interleave: str) -> None:
    data = smooth_image((3, 130, 170), dtype="uint8", seed=5)
    path = _written(
        tmp_path / f"rgb_{interleave}.tif", data, tile=64, overviews=(), interleave=interleave
    )
    bands = ["R", "G", "B"]
    collection = make_collection(
        [record("rgb", T0, {b: (path, k) for k, b in enumerate(bands)})], bands
    )
    for k, band in enumerate(bands):
        np.testing.assert_array_equal(_store_pixels(collection, band), data[k])
    points = [
        (300000 + 5 + 10 * c, 5000000 - 5 - 10 * r) for r, c in [(0, 0), (129, 169), (64, 63)]
    ]
    table = collection.sample_points(points, bands, geometry_crs=32633)
    got = np.array(table["value"].to_pylist()).reshape(3, 3)
    expected = [[data[k, r, c] for k in range(3)] for r, c in [(0, 0), (129, 169), (64, 63)]]
    np.testing.assert_array_equal(got, expected)


def _rgb(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (64, 64, 3)).astype(np.uint8)


@pytest.mark.parametrize("compression", [34712, 33005])
@pytest.mark.parametrize("codecformat", ["J2K", "JP2"])
def test_rgb_tags_decode_the_components(compression: int, codecformat: str) -> None:
    rgb = _rgb()
    payload = imagecodecs.jpeg2k_encode(rgb, level=0, codecformat=codecformat)
    decoding = BlockDecoding(compression, "uint8", 64, 64, samples=3)
    np.testing.assert_array_equal(decode_block(payload, decoding), rgb)


def test_aperio_ycbcr_is_converted_to_rgb() -> None:
    rgb = _rgb(1)
    ycc = np.asarray(Image.fromarray(rgb).convert("YCbCr"))
    expected = np.asarray(Image.fromarray(ycc, "YCbCr").convert("RGB")).astype(int)
    payload = imagecodecs.jpeg2k_encode(ycc, level=0, codecformat="J2K", mct=False)
    assert j2k_header(payload).transform is False
    decoding = BlockDecoding(33003, "uint8", 64, 64, samples=3)
    got = decode_block(payload, decoding).astype(int)
    assert np.abs(got - expected).max() <= 1  # libtiff's vs Pillow's fixed-point tables
    # a stream that applied the multiple-component transform itself is already RGB
    with_mct = imagecodecs.jpeg2k_encode(rgb, level=0, codecformat="J2K", mct=True)
    np.testing.assert_array_equal(decode_block(with_mct, decoding), rgb)


def test_partial_block_rows_and_signed_samples() -> None:
    data = (np.arange(40 * 64) % 3001 - 1500).astype(np.int16).reshape(40, 64)
    payload = imagecodecs.jpeg2k_encode(data, level=0, codecformat="J2K")
    decoding = BlockDecoding(34712, "int16", 64, 64, bits_per_sample=16, sample_format=2)
    block = decode_block(payload, decoding, rows=40)  # a short stream: the rest is zero
    np.testing.assert_array_equal(block[:40, :, 0], data)
    assert (block[40:] == 0).all()
    with pytest.raises(CorruptTiffError, match="declares 40 rows, 41 needed"):
        decode_block(payload, decoding, rows=41, source="s.tif")


def _patched_siz(payload: bytes, **fields: int) -> bytes:
    """``payload`` with SIZ fields replaced (offsets of the codestream's SIZ segment)."""
    offsets = {"xsiz": 8, "ysiz": 12, "xtsiz": 24, "ytsiz": 28}
    out = bytearray(payload)
    for name, value in fields.items():
        struct.pack_into(">I", out, offsets[name], value)
    return bytes(out)


def test_hostile_streams_are_refused_before_decoding() -> None:
    grey = (np.arange(64 * 64) % 251).astype(np.uint8).reshape(64, 64)
    payload = imagecodecs.jpeg2k_encode(grey, level=0, codecformat="J2K")
    grey_block = BlockDecoding(34712, "uint8", 64, 64)
    np.testing.assert_array_equal(decode_block(payload, grey_block)[..., 0], grey)
    big = imagecodecs.jpeg2k_encode(np.tile(grey, (2, 2)), level=0, codecformat="J2K")
    big_block = BlockDecoding(34712, "uint8", 128, 128)
    cases = [
        (_patched_siz(payload, xsiz=65536, ysiz=65536), grey_block, "declares a 65536 x 65536"),
        (_patched_siz(big, xtsiz=1, ytsiz=1), big_block, "16384 codestream tiles"),
        (payload, BlockDecoding(34712, "uint8", 64, 64, samples=3), "1 components"),
        (payload, BlockDecoding(34712, "int8", 64, 64, sample_format=2), "unsigned 8-bit"),
        (b"\x00" * 64, grey_block, "no SOC \\+ SIZ"),
        (payload[: len(payload) // 2], grey_block, "cannot decode block 7"),
    ]
    for data, decoding, message in cases:
        with pytest.raises(CorruptTiffError, match=message) as caught:
            decode_block(data, decoding, source="hostile.tif", block_index=7)
        assert caught.value.source == "hostile.tif"
    wide = imagecodecs.jpeg2k_encode(grey.astype(np.uint16) * 200, level=0, codecformat="J2K")
    with pytest.raises(CorruptTiffError, match="16-bit samples, block has uint8"):
        decode_block(wide, grey_block)


def test_unsupported_layouts_are_named() -> None:
    floating = BlockDecoding(34712, "float32", 64, 64, bits_per_sample=32, sample_format=3)
    with pytest.raises(UnsupportedTiffError, match="JPEG 2000 sample type"):
        floating.check("f.tif")
    predicted = BlockDecoding(34712, "uint16", 64, 64, bits_per_sample=16, predictor=2)
    with pytest.raises(UnsupportedTiffError, match="predictor 2"):
        decode_block(b"", predicted, source="p.tif")
    # chroma subsampled components (Aperio 33003 may use 4:2:2): named, not mis-decoded
    payload = bytearray(imagecodecs.jpeg2k_encode(_rgb(), level=0, codecformat="J2K"))
    payload[42 + 3 * 1 + 1] = 2  # SIZ: XRsiz of the second component
    ycbcr = BlockDecoding(33003, "uint8", 64, 64, samples=3)
    with pytest.raises(UnsupportedTiffError, match="subsampled components") as caught:
        decode_block(bytes(payload), ycbcr, source="s.tif")
    assert caught.value.source == "s.tif"
