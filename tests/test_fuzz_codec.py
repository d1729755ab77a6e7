"""Fuzzing the tile codec: hostile payloads and hostile ``BlockDecoding``s.

``decode_block`` must raise only :class:`~rasteret.errors.TiffError` subclasses, never
hang, and never allocate for a block the limits refuse (``MAX_DECODED_BLOCK_BYTES``) or
a payload cannot back (bounded-ratio codecs are checked before the output exists; JPEG,
WebP, LERC and JPEG-XL streams are checked against the block before they are decoded). A
decoding comes from an index, so every field is attacker-controlled. The seed blocks
cover every codec; a slice of mutated cases, decompression bombs included, also runs in
a fresh subprocess whose peak RSS is bounded (the codec libraries allocate outside
tracemalloc's view).
"""

from __future__ import annotations

import contextlib
import functools
import tempfile
import zlib
from dataclasses import replace
from pathlib import Path

import imagecodecs
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _fuzz_harness import (
    FIELD_VALUES,
    ROWS,
    MiB,
    bombs,
    check_codec_case,
    codec_blocks,
    generated_seeds,
    measure,
    mutate,
    mutate_decoding,
    random_codec_cases,
    rss_slice,
    seed_blocks,
)
from rasteret.errors import CorruptTiffError, TiffError, UnsupportedTiffError
from rasteret.tiff import BlockDecoding, decode_block
from rasteret.tiff.block_decoders import MAX_DECODED_BLOCK_BYTES

FUZZ = settings(
    max_examples=600,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
PAYLOAD_OPS = st.lists(
    st.tuples(st.integers(0, 63), st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1)),
    max_size=4,
)
FIELD_OPS = st.lists(
    st.tuples(st.integers(0, 255), st.integers(0, 255), st.just(0)),
    max_size=3,
)


#: Every codec rasteret decodes (JPEG-XL when imagecodecs has libjxl).
CODECS = {1, 2, 3, 4, 5, 7, 8, 32773, 34887, 34925, 50000, 50001}
CODECS |= {50002} if imagecodecs.JPEGXL.available else set()
#: Declared blocks of the RSS slice stay below this (larger ones are tracemalloc's).
RSS_SLICE_MAX_BLOCK = 16 * MiB


@functools.cache
def pairs() -> tuple[tuple[bytes, BlockDecoding], ...]:
    with tempfile.TemporaryDirectory() as tmp:
        seeds = generated_seeds(Path(tmp))
    return tuple(seed_blocks(seeds) + codec_blocks())


def test_seed_blocks_decode() -> None:
    """The unmutated seeds decode, and cover every codec: the fuzz starts from valid cases."""
    assert {decoding.compression for _, decoding in pairs()} == CODECS
    lerc = {decoding.lerc_parameters for _, decoding in pairs() if decoding.compression == 34887}
    assert lerc == {None, (4, 1), (4, 2)}
    for payload, decoding in pairs():
        block = decode_block(payload, decoding)
        assert block.shape == decoding.shape


def test_fuzz_slice_peak_rss_is_bounded(tmp_path: Path) -> None:
    """Every seed and bomb once, then 3,000 mutated cases of them, in a fresh subprocess:
    only typed errors, and a peak RSS within a few blocks of the baseline (was 425 MiB)."""
    every = list(pairs()) + [(bomb.payload, bomb.decoding) for bomb in bombs()]
    cases = [(payload, decoding, None) for payload, decoding in every]
    cases += random_codec_cases(every, 3000, seed=1, max_block=RSS_SLICE_MAX_BLOCK)
    report = rss_slice(pairs(), cases, tmp_path)
    assert report["cases"] == len(cases) and not report["untyped"], report
    assert report["grew_mib"] < 4 * RSS_SLICE_MAX_BLOCK / MiB, report


@FUZZ
@given(
    index=st.integers(0, 10**6),
    payload_ops=PAYLOAD_OPS,
    field_ops=FIELD_OPS,
    rows=st.sampled_from(ROWS),
    swap_payload=st.integers(0, 10**6) | st.none(),
)
def test_mutated_blocks_raise_only_typed_errors(
    index: int, payload_ops, field_ops, rows, swap_payload
) -> None:
    payload, decoding = pairs()[index % len(pairs())]
    if swap_payload is not None:  # another codec's payload under this decoding
        payload = pairs()[swap_payload % len(pairs())][0]
    check_codec_case(mutate(payload, payload_ops), mutate_decoding(decoding, field_ops), rows)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("block_width", 2**22),
        ("block_height", 2**31 - 1),
        ("samples", 65535),
        ("block_width", 0),
        ("block_height", -1),
        ("samples", 0),
        ("bits_per_sample", 0),
    ],
)
def test_absurd_block_shapes_are_refused_before_allocating(field: str, value: int) -> None:
    decoding = replace(
        BlockDecoding(8, "uint16", 256, 256, 1, bits_per_sample=16), **{field: value}
    )
    with measure() as peak, pytest.raises(CorruptTiffError, match=r"fuzz\.tif") as caught:
        decode_block(zlib.compress(bytes(100)), decoding, source="fuzz.tif")
    assert peak[0] < 1 * MiB
    assert field in str(caught.value) or "block limit" in str(caught.value)


def test_block_limit_names_the_setting() -> None:
    side = int((MAX_DECODED_BLOCK_BYTES // 4) ** 0.5) + 16
    decoding = BlockDecoding(50000, "float32", side, side, 1, bits_per_sample=32, sample_format=3)
    with pytest.raises(CorruptTiffError, match="MAX_DECODED_BLOCK_BYTES"):
        decode_block(b"\x00" * 10, decoding)


@pytest.mark.parametrize("dtype", ["garbage", "", "object", "U3", "M8[ns]", "float128"])
def test_dtype_strings_that_are_not_sample_types(dtype: str) -> None:
    decoding = BlockDecoding(1, dtype, 16, 16, 1)
    with pytest.raises(UnsupportedTiffError, match="sample type"):
        decode_block(bytes(256), decoding, source="x.tif")


@pytest.mark.parametrize(("compression", "encode"), [(1, bytes), (8, zlib.compress)])
def test_payload_that_cannot_back_the_block_is_refused_before_allocating(
    compression: int, encode
) -> None:
    # 8192 x 8192 uint16 = 128 MiB declared; the payload holds a few hundred bytes
    decoding = BlockDecoding(compression, "uint16", 8192, 8192, 1, bits_per_sample=16)
    with measure() as peak, pytest.raises(CorruptTiffError, match="cannot hold"):
        decode_block(encode(bytes(300)), decoding, source="short.tif")
    assert peak[0] < 1 * MiB


def test_jpeg_declaring_a_huge_image_is_not_decoded() -> None:
    jpeg = bytearray(imagecodecs.jpeg8_encode(np.zeros((16, 16), np.uint8)))
    sof = jpeg.index(b"\xff\xc0")
    jpeg[sof + 5 : sof + 9] = b"\xff\xff\xff\xff"  # 65535 x 65535
    decoding = BlockDecoding(7, "uint8", 16, 16, 1)
    with (
        measure() as peak,
        pytest.raises(CorruptTiffError, match="declares a 65535 x 65535 image"),
    ):
        decode_block(bytes(jpeg), decoding, source="bomb.tif")
    assert peak[0] < 1 * MiB


def test_lerc_deflate_bomb_is_bounded() -> None:
    bomb = zlib.compress(bytes(64 * MiB), 9)  # 64 MiB of zeros in ~64 KiB
    decoding = BlockDecoding(
        34887, "float32", 16, 16, 1, bits_per_sample=32, sample_format=3, lerc_parameters=(4, 1)
    )
    with measure() as peak, pytest.raises(CorruptTiffError, match="inflates beyond"):
        decode_block(bomb, decoding, source="bomb.tif")
    assert peak[0] < 4 * MiB


@pytest.mark.parametrize("rows", [-1, 17, 10**9])
def test_rows_outside_the_block_are_refused(rows: int) -> None:
    decoding = BlockDecoding(4, "uint8", 16, 16, 1, bits_per_sample=1)
    with pytest.raises(CorruptTiffError, match="rows requested"):
        decode_block(b"\x00" * 8, decoding, rows=rows)


def test_every_hostile_field_value_is_typed() -> None:
    """Each hostile value of each field alone, on a valid deflate tile."""
    payload, decoding = pairs()[0]
    for field, values in FIELD_VALUES.items():
        for value in values:
            with contextlib.suppress(TiffError):  # anything else fails the test
                decode_block(payload, replace(decoding, **{field: value}), source="f.tif")
