"""Decoding only the top rows of a block (``decode_block(stop=k)``), against GDAL.

A window that ends inside a tile needs its rows from the top of the tile down to the
window's last row: deflate, LZW and uncompressed blocks are decoded that far and no
further. Oracles: rasterio's read of the same rows, the conformance corpus' full decode,
and a stream whose tail is destroyed (a prefix decode must not touch it; a full decode
must fail on it).
"""

from __future__ import annotations

import itertools
import zlib
from pathlib import Path

import imagecodecs
import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin
from rasterio.windows import Window

from rasteret.errors import CorruptTiffError
from rasteret.tiff.decode import BlockDecoding, decode_block
from rasteret.tiff.decompress import PREFIX_CODECS
from rasteret.tiff.header import parse_header

BLOCK = 64
CASES = [
    # (GDAL compression, dtype, predictor, byte order)
    ("DEFLATE", "uint16", 2, "LITTLE"),
    ("DEFLATE", "int16", 2, "BIG"),
    ("DEFLATE", "uint8", 1, "LITTLE"),
    ("DEFLATE", "float32", 3, "LITTLE"),
    ("DEFLATE", "float64", 3, "BIG"),
    ("DEFLATE", "uint32", 2, "BIG"),
    ("LZW", "uint16", 2, "LITTLE"),
    ("LZW", "float32", 1, "BIG"),
    ("NONE", "int16", 1, "BIG"),
    ("NONE", "float32", 1, "LITTLE"),
]


def _array(dtype: str, bands: int) -> np.ndarray:
    rng = np.random.default_rng(7)
    rows, cols = np.mgrid[0 : 3 * BLOCK - 20, 0 : 2 * BLOCK + 9]  # partial edge tiles
    base = (rows * 5 + cols * 3)[None] + rng.integers(0, 40, (bands, *rows.shape))
    if np.dtype(dtype).kind == "f":
        return (base * 0.37 - 500.0).astype(dtype)
    return (base % np.iinfo(dtype).max).astype(dtype)


def _write(path: Path, array: np.ndarray, **options: object) -> Path:
    profile = {
        "driver": "GTiff", "width": array.shape[2], "height": array.shape[1],
        "count": array.shape[0], "dtype": array.dtype.name, "crs": "EPSG:32633",
        "transform": from_origin(500000, 4000000, 10, 10), "tiled": True,
        "blockxsize": BLOCK, "blockysize": BLOCK, **options,
    }  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(array)
    return path


def _blocks(path: Path) -> tuple[BlockDecoding, list[tuple[int, int, bytes]]]:
    data = path.read_bytes()
    header = parse_header(data, str(path))
    full = header.full
    decoding = BlockDecoding.from_layout(full, header.byte_order, str(path))
    blocks = []
    for n, (offset, count) in enumerate(
        zip(full.block_offsets, full.block_byte_counts, strict=True)
    ):
        row, col = divmod(n, full.blocks_across)
        blocks.append((row, col, data[int(offset) : int(offset) + int(count)]))
    return decoding, blocks


@pytest.mark.parametrize(("codec", "dtype", "predictor", "endian"), CASES)
def test_top_rows_of_every_block_equal_gdal(
    tmp_path: Path, codec: str, dtype: str, predictor: int, endian: str
) -> None:
    bands = 3
    options: dict[str, object] = {"compress": codec, "interleave": "pixel", "endianness": endian}
    if predictor > 1:
        options["predictor"] = predictor
    path = _write(tmp_path / "p.tif", _array(dtype, bands), **options)
    decoding, blocks = _blocks(path)
    assert decoding.compression in PREFIX_CODECS
    with rasterio.open(path) as src:
        height, width = src.height, src.width
        for (row, col, payload), stop in itertools.product(blocks, (1, 17, BLOCK - 1)):
            top, left = row * BLOCK, col * BLOCK
            rows = min(BLOCK, height - top)
            stop = min(stop, rows)
            part = decode_block(payload, decoding, source=str(path), rows=rows, stop=stop)
            assert part.shape == (stop, BLOCK, bands), (row, col, stop)
            assert part.dtype == np.dtype(dtype) and part.dtype.isnative
            cols = min(BLOCK, width - left)
            window = Window(left, top, cols, stop)
            expected = np.moveaxis(src.read(window=window), 0, -1)
            np.testing.assert_array_equal(part[:, :cols], expected)


def test_stop_at_or_past_the_block_decodes_it_whole(tmp_path: Path) -> None:
    path = _write(tmp_path / "w.tif", _array("uint16", 1), compress="DEFLATE", predictor=2)
    decoding, blocks = _blocks(path)
    payload = blocks[0][2]
    whole = decode_block(payload, decoding)
    for stop in (None, 0, BLOCK, BLOCK + 5):
        np.testing.assert_array_equal(decode_block(payload, decoding, stop=stop), whole)
    assert decode_block(payload, decoding, stop=BLOCK).shape == (BLOCK, BLOCK, 1)


def _deflate_decoding(height: int, width: int) -> BlockDecoding:
    return BlockDecoding(
        compression=8, dtype="uint16", bits_per_sample=16, block_width=width,
        block_height=height, predictor=2,
    )  # fmt: skip


def test_a_prefix_never_inflates_past_its_rows() -> None:
    """The stream's tail is garbage: the full decode must fail on it, the top rows (a
    prefix that ends before the garbage) must decode and equal the original."""
    rng = np.random.default_rng(1)
    values = rng.integers(0, 65535, (256, 512), dtype=np.uint16)
    diffs = np.diff(values.astype(np.int64), axis=1, prepend=0).astype("<u2")
    stream = zlib.compressobj(level=6, wbits=15)
    head = stream.compress(diffs[:128].tobytes()) + stream.flush(zlib.Z_FULL_FLUSH)
    tail = stream.compress(diffs[128:].tobytes()) + stream.flush()
    broken = head + bytes(b ^ 0xA5 for b in tail)  # the rows from 128 on are destroyed
    decoding = _deflate_decoding(256, 512)
    with pytest.raises(CorruptTiffError, match=r"tile\.tif"):
        decode_block(broken, decoding, source="tile.tif")
    top = decode_block(broken, decoding, source="tile.tif", stop=100)
    assert top.shape == (100, 512, 1)
    np.testing.assert_array_equal(top[..., 0], values[:100])


def test_a_prefix_cut_short_is_an_error_naming_the_source() -> None:
    values = np.arange(64 * 32, dtype=np.uint16).reshape(64, 32)
    payload = zlib.compress(values.tobytes())
    decoding = BlockDecoding(
        compression=8, dtype="uint16", bits_per_sample=16, block_width=32, block_height=64
    )
    short = payload[: len(payload) // 4]  # a fraction of the stream, no clean end
    with pytest.raises(CorruptTiffError, match=r"s3://b/x\.tif.*block 3"):
        decode_block(short, decoding, source="s3://b/x.tif", block_index=3, stop=60)


@pytest.mark.skipif(not imagecodecs.ISAL.available, reason="imagecodecs built without ISA-L")
def test_corpus_deflate_lzw_and_raw_prefixes_equal_the_whole_block(corpus_dir: Path) -> None:
    """Every tiled, lossless-byte-codec TIFF of the corpus: the top rows of each of its
    first blocks, at several stops, equal the whole block's (itself checked against the
    corpus' GDAL references by test_corpus_conformance.py)."""
    checked = 0
    for path in sorted((corpus_dir / "tiff").rglob("*.tif*")):
        data = path.read_bytes()
        try:
            header = parse_header(data, str(path))
            full = header.full
            decoding = BlockDecoding.from_layout(full, header.byte_order, str(path))
            decoding.check()
        except Exception:  # unsupported or bad-input files: not this test's
            continue
        if decoding.compression not in PREFIX_CODECS or decoding.photometric == 6:
            continue
        for offset, count in list(zip(full.block_offsets, full.block_byte_counts, strict=True))[:4]:
            payload = data[int(offset) : int(offset) + int(count)]
            if not count:
                continue
            try:
                whole = decode_block(payload, decoding, rows=0 if not full.tiled else None)
            except CorruptTiffError:
                continue  # a block the full decode refuses (covered elsewhere)
            height = whole.shape[0]
            for stop in sorted({1, height // 3, height - 1} - {0}):
                part = decode_block(payload, decoding, rows=0, stop=stop)
                assert part.shape[0] >= stop, path
                np.testing.assert_array_equal(part[:stop], whole[:stop], err_msg=str(path))
                checked += 1
    assert checked > 100
