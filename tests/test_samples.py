"""The sample COG writer and the Sentinel-2-like generator, checked against GDAL and tifffile."""

from __future__ import annotations

import asyncio
import struct
from pathlib import Path

import numpy as np
import pytest
import rasterio
import tifffile
from rasterio.enums import Resampling

from rasteret.samples import make_sentinel2_like, reduce_level, write_cog

UTM_TRANSFORM = (10.0, 0.0, 399960.0, 0.0, -10.0, 5300040.0)


def _pattern(shape: tuple[int, ...], dtype: str, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "f":
        return rng.normal(100, 30, shape).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(max(info.min, -3000), min(info.max, 3000), shape, endpoint=True).astype(
        dtype
    )


CASES = [
    # dtype, shape, compression, predictor, interleave, tile
    ("uint16", (1, 600, 700), "deflate", 2, "pixel", 256),
    ("int16", (1, 300, 257), "zstd", 2, "pixel", 128),
    ("uint8", (3, 200, 300), "lzw", 1, "pixel", 128),
    ("uint8", (2, 200, 300), "none", 1, "band", 64),
    ("float32", (1, 250, 250), "deflate", 3, "pixel", 128),
    ("float32", (2, 130, 140), "lzw", 2, "band", 64),
    ("float64", (1, 100, 90), "zstd", 3, "pixel", 64),
    ("int32", (1, 100, 90), "lzma", 2, "pixel", 64),
    ("uint16", (1, 100, 90), "packbits", 1, "pixel", 64),
]


@pytest.mark.parametrize(
    ("dtype", "shape", "compression", "predictor", "interleave", "tile"), CASES
)
def test_gdal_and_tifffile_read_back_exactly_what_was_written(
    tmp_path: Path, dtype, shape, compression, predictor, interleave, tile
) -> None:
    data = _pattern(shape, dtype)
    path = tmp_path / "x.tif"
    written = write_cog(
        path,
        data,
        transform=UTM_TRANSFORM,
        epsg=32633,
        nodata=7,
        tile=tile,
        compression=compression,
        predictor=predictor,
        interleave=interleave,
    )
    with rasterio.open(path) as src:
        assert src.read().dtype == np.dtype(dtype)
        np.testing.assert_array_equal(src.read(), data)
        assert src.crs.to_epsg() == 32633
        assert tuple(src.transform)[:6] == UTM_TRANSFORM
        assert src.nodata == 7
        assert src.count == shape[0]
        assert src.block_shapes[0] == (tile, tile)
        assert src.overviews(1) == [2, 4]
        assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        expected = {"pixel": "PIXEL", "band": "BAND"}[interleave] if shape[0] > 1 else None
        assert src.tags(ns="IMAGE_STRUCTURE").get("INTERLEAVE") == expected or shape[0] == 1
    with tifffile.TiffFile(path) as tif:
        assert len(tif.pages) == 3
        assert all(page.is_tiled for page in tif.pages)
        assert tif.pages[1].subfiletype == 1 and tif.pages[2].subfiletype == 1
        full = tif.pages[0].asarray()
        full = full if full.ndim == 3 else full[..., np.newaxis]
        if interleave == "band" and shape[0] > 1:
            np.testing.assert_array_equal(full, data)
        else:
            np.testing.assert_array_equal(np.moveaxis(full, -1, 0), data)
    assert [len(image.offsets) for image in written.images] == [
        shape[0] ** (interleave == "band") * -(-shape[1] // (tile * f)) * -(-shape[2] // (tile * f))
        for f in (1, 2, 4)
    ]


def test_layout_puts_every_ifd_before_the_tiles_and_overview_data_first(tmp_path: Path) -> None:
    data = _pattern((1, 700, 600), "uint16")
    path = tmp_path / "cog.tif"
    written = write_cog(path, data, transform=UTM_TRANSFORM, epsg=32633, tile=256)
    raw = path.read_bytes()
    assert raw.startswith(b"II*\0")
    assert raw[8:38] == b"GDAL_STRUCTURAL_METADATA_SIZE="
    with tifffile.TiffFile(path) as tif:
        ifd_offsets = [page.offset for page in tif.pages]
    assert ifd_offsets == [image.ifd_offset for image in written.images]
    assert max(ifd_offsets) < written.header_size
    starts = [min(image.offsets) for image in written.images]
    assert written.header_size <= starts[2] < starts[1] < starts[0]
    assert written.file_size == len(raw)
    for image in written.images:  # GDAL block leader (size) and trailer (last 4 bytes)
        for offset, count in zip(image.offsets, image.byte_counts, strict=True):
            assert struct.unpack("<I", raw[offset - 4 : offset])[0] == count
            assert (
                raw[offset + count : offset + count + 4] == raw[offset + count - 4 : offset + count]
            )


def test_average_overviews_match_gdal(tmp_path: Path) -> None:
    data = _pattern((1, 512, 512), "uint16", seed=3)
    data[0, :100, :37] = 0  # nodata region, excluded from GDAL's averages too
    ours = tmp_path / "ours.tif"
    write_cog(ours, data, transform=UTM_TRANSFORM, epsg=32633, nodata=0, overviews=(2, 4))
    gdal = tmp_path / "gdal.tif"
    profile = dict(
        driver="GTiff",
        width=512,
        height=512,
        count=1,
        dtype="uint16",
        nodata=0,
        crs="EPSG:32633",
        transform=rasterio.Affine(*UTM_TRANSFORM),
    )
    with rasterio.open(gdal, "w", **profile) as dst:
        dst.write(data)
        dst.build_overviews([2, 4], Resampling.average)
    for level in (0, 1):
        with (
            rasterio.open(ours, overview_level=level) as a,
            rasterio.open(gdal, overview_level=level) as b,
        ):
            mine, theirs = a.read(1).astype(int), b.read(1).astype(int)
        np.testing.assert_array_equal(mine, theirs)


def test_nearest_overviews_match_gdal_and_odd_sizes_round_up(tmp_path: Path) -> None:
    data = _pattern((1, 101, 203), "uint8")
    ours = tmp_path / "n.tif"
    write_cog(ours, data, transform=UTM_TRANSFORM, epsg=32633, tile=64, resampling="nearest")
    gdal = tmp_path / "gdal.tif"
    profile = dict(
        driver="GTiff",
        width=203,
        height=101,
        count=1,
        dtype="uint8",
        crs="EPSG:32633",
        transform=rasterio.Affine(*UTM_TRANSFORM),
    )
    with rasterio.open(gdal, "w", **profile) as dst:
        dst.write(data)
        dst.build_overviews([2, 4], Resampling.nearest)
    for level, shape in ((0, (51, 102)), (1, (26, 51))):
        with (
            rasterio.open(ours, overview_level=level) as a,
            rasterio.open(gdal, overview_level=level) as b,
        ):
            assert a.shape == b.shape == shape
            np.testing.assert_array_equal(a.read(), b.read())
    even = data[:, :100, :200]
    np.testing.assert_array_equal(reduce_level(even, 4, resampling="nearest"), even[:, ::4, ::4])


def test_sparse_tiles_are_left_out_and_read_as_nodata(tmp_path: Path) -> None:
    data = _pattern((1, 256, 256), "uint16")
    data[0, :128, :128] = 9
    path = tmp_path / "sparse.tif"
    written = write_cog(
        path,
        data,
        transform=UTM_TRANSFORM,
        epsg=32633,
        nodata=9,
        tile=128,
        sparse=True,
        overviews=(),
    )
    assert written.images[0].byte_counts[0] == 0 and written.images[0].offsets[0] == 0
    assert all(count > 0 for count in written.images[0].byte_counts[1:])
    with rasterio.open(path) as src:
        np.testing.assert_array_equal(src.read(), data)
        assert src.overviews(1) == []


def test_rotated_geographic_and_bigtiff_files(tmp_path: Path) -> None:
    data = _pattern((1, 64, 64), "int16")
    rotated = (10.0, 2.0, 500000.0, 1.5, -10.0, 4000000.0)
    write_cog(tmp_path / "r.tif", data, transform=rotated, epsg=32610, tile=32, overviews=(2,))
    with rasterio.open(tmp_path / "r.tif") as src:
        assert tuple(src.transform)[:6] == pytest.approx(rotated)
        assert src.crs.to_epsg() == 32610
    lonlat = (0.001, 0.0, 12.0, 0.0, -0.001, 47.0)
    write_cog(tmp_path / "g.tif", data, transform=lonlat, epsg=4326, tile=32, bigtiff=True)
    with rasterio.open(tmp_path / "g.tif") as src:
        assert src.crs.to_epsg() == 4326
        assert tuple(src.transform)[:6] == pytest.approx(lonlat)
        np.testing.assert_array_equal(src.read(), data)
    with tifffile.TiffFile(tmp_path / "g.tif") as tif:
        assert tif.is_bigtiff


def test_invalid_arguments_are_rejected(tmp_path: Path) -> None:
    data = _pattern((1, 32, 32), "uint16")
    with pytest.raises(ValueError, match="multiple of 16"):
        write_cog(tmp_path / "a.tif", data, transform=UTM_TRANSFORM, epsg=32633, tile=100)
    with pytest.raises(ValueError, match="predictor 3"):
        write_cog(tmp_path / "a.tif", data, transform=UTM_TRANSFORM, epsg=32633, predictor=3)
    with pytest.raises(ValueError, match="compression"):
        write_cog(tmp_path / "a.tif", data, transform=UTM_TRANSFORM, epsg=32633, compression="x")


def test_sentinel2_like_scenes_are_valid_georeferenced_cogs(tmp_path: Path) -> None:
    records = make_sentinel2_like(
        tmp_path, scenes=4, size=256, zones=(32632, 32633), band_resolution={"SCL": 20.0}
    )
    assert [r["epsg"] for r in records] == [32632, 32633, 32632, 32633]
    assert len({r["id"] for r in records}) == 4
    assert [r["datetime"].isoformat() for r in records][:2] == [
        "2024-01-01T10:30:00+00:00",
        "2024-01-31T10:30:00+00:00",
    ]
    ndvi_means = []
    for record in records:
        assert set(record["hrefs"]) == {"B04", "B08", "SCL"}
        assert 0 <= record["eo:cloud_cover"] <= 100
        west, south, east, north = record["bbox"]
        assert west < 12.0 < east and south < 47.0 < north
        bands = {}
        for band, href in record["hrefs"].items():
            with rasterio.open(href) as src:
                assert src.crs.to_epsg() == record["epsg"]
                assert tuple(src.bounds) == pytest.approx(record["bounds"])
                assert src.nodata == 0
                assert src.overviews(1) == [2, 4]
                assert src.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
                bands[band] = src.read(1)
                if band == "SCL":
                    assert src.dtypes[0] == "uint8" and src.res == (20.0, 20.0)
                    assert src.shape == (128, 128)
                else:
                    assert src.dtypes[0] == "uint16" and src.res == (10.0, 10.0)
                    assert src.scales == (1e-4,) and src.offsets == (-0.1,)
        red, nir = bands["B04"].astype(float), bands["B08"].astype(float)
        assert ((red == 0) == (nir == 0)).all()
        valid = red > 0
        assert 0.05 < valid.mean() < 1.0  # a no-data swath edge, but mostly data
        np.testing.assert_array_equal(bands["SCL"] == 0, ~valid[::2, ::2])
        ndvi_means.append(float(((nir - red) / (nir + red + 1e-9))[valid].mean()))
    assert max(ndvi_means) - min(ndvi_means) > 0.1  # seasonal variation


def test_sentinel2_like_is_deterministic(tmp_path: Path) -> None:
    first = make_sentinel2_like(tmp_path / "a", scenes=2, size=64, tile=32, seed=5)
    second = make_sentinel2_like(tmp_path / "b", scenes=2, size=64, tile=32, seed=5)
    for a, b in zip(first, second, strict=True):
        for band in a["hrefs"]:
            assert Path(a["hrefs"][band]).read_bytes() == Path(b["hrefs"][band]).read_bytes()


def test_rasteret_parser_reads_a_sample_cog_header_in_one_request(tmp_path: Path) -> None:
    from rasteret.tiff.header import read_header

    data = _pattern((1, 2048, 2048), "uint16")
    path = tmp_path / "one.tif"
    written = write_cog(path, data, transform=UTM_TRANSFORM, epsg=32633, overviews=(2, 4, 8, 16))
    raw = path.read_bytes()
    calls: list[tuple[int, int]] = []

    async def fetch(offset: int, length: int) -> bytes:
        calls.append((offset, length))
        return raw[offset : offset + length]

    header = asyncio.run(read_header(fetch, str(path)))
    assert len(calls) == 1 and calls[0][0] == 0 and calls[0][1] >= written.header_size
    assert [image.kind for image in header.images] == ["full"] + ["overview"] * 4
    assert [image.width for image in header.images] == [2048, 1024, 512, 256, 128]
    assert header.geo.epsg == 32633 and header.geo.transform == UTM_TRANSFORM
    full = header.images[0]
    assert tuple(full.block_offsets) == written.images[0].offsets
    assert tuple(full.block_byte_counts) == written.images[0].byte_counts
