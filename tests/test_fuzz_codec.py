"""Fuzzing the tile codec: hostile payloads and hostile ``BlockDecoding``s.

``decode_block`` must raise only :class:`~rasteret.errors.TiffError` subclasses, never
hang, and never allocate for a block the limits refuse (``MAX_DECODED_BLOCK_BYTES``) or
a payload cannot back (bounded-ratio codecs are checked before the output exists; JPEG,
WebP and LERC streams are checked against the block before they are decoded). A
decoding comes from an index, so every field is attacker-controlled.
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
    check_codec_case,
    generated_seeds,
    measure,
    mutate,
    mutate_decoding,
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


@functools.cache
def pairs() -> tuple[tuple[bytes, BlockDecoding], ...]:
    with tempfile.TemporaryDirectory() as tmp:
        seeds = generated_seeds(Path(tmp))
    blocks = seed_blocks(seeds)
    # JPEG, WebP and LERC tiles too (write_cog does not write them)
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)
    gray = rng.random((16, 16), dtype=np.float32)
    blocks += [
        (imagecodecs.jpeg8_encode(rgb), BlockDecoding(7, "uint8", 16, 16, 3, photometric=2)),
        (imagecodecs.webp_encode(rgb, lossless=True), BlockDecoding(50001, "uint8", 16, 16, 3)),
        (
            imagecodecs.lerc_encode(gray),
            BlockDecoding(34887, "float32", 16, 16, 1, bits_per_sample=32, sample_format=3),
        ),
    ]
    return tuple(blocks)


def test_seed_blocks_decode() -> None:
    """The unmutated seeds decode: the fuzz starts from valid cases."""
    assert len(pairs()) >= 15
    for payload, decoding in pairs():
        block = decode_block(payload, decoding)
        assert block.shape == decoding.shape


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
