"""Fuzzing the TIFF header parser: only typed errors, no hang, no unbacked allocation.

A short, derandomized hypothesis run over mutated seeds (generated COGs, and the small
corpus files when ``../shared/corpus`` exists), plus hand-built hostile headers (IFD
loops, 10^12 tiles, offsets past the end, type mismatches). Every case runs
``parse_header``, ``read_header`` over an async fetch and the first block decodes under
a wall-clock guard and tracemalloc (see ``tests/_fuzz_harness.py``). The long run is
``benchmarks/fuzz.py``.
"""

from __future__ import annotations

import asyncio
import functools
import struct
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _fuzz_harness import (
    MiB,
    check_header_case,
    corpus_seeds,
    generated_seeds,
    measure,
    mutate,
    run_header_case,
    walk,
)
from conftest import CORPUS, corpus_available
from rasteret.errors import CorruptTiffError, TiffError, UnsupportedTiffError
from rasteret.samples import write_cog
from rasteret.samples.tiffio import ASCII, ImageToWrite, write_tiff
from rasteret.tiff import parse_header, read_header


def fuzz(examples: int) -> settings:
    """Derandomized, bounded, no example database: the same cases on every CI run."""
    return settings(
        max_examples=examples,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


OPS = st.lists(
    st.tuples(st.integers(0, 63), st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1)),
    min_size=1,
    max_size=6,
)
TRANSFORM = (10.0, 0.0, 500000.0, 0.0, -10.0, 5300000.0)


@functools.cache
def seeds() -> tuple[bytes, ...]:
    with tempfile.TemporaryDirectory() as tmp:
        return tuple(generated_seeds(Path(tmp)))


@functools.cache
def corpus() -> tuple[bytes, ...]:
    return tuple(corpus_seeds(CORPUS if corpus_available() else None))


def _cog(tmp_path: Path, bigtiff: bool = False, **options) -> bytearray:
    array = np.arange(32 * 32, dtype=np.uint16).reshape(32, 32)
    path = tmp_path / "seed.tif"
    write_cog(path, array, transform=TRANSFORM, epsg=32633, tile=16, bigtiff=bigtiff, **options)
    return bytearray(path.read_bytes())


def _entry(data: bytes, tag: int, ifd: int = 0) -> int:
    """Byte position of the entry of ``tag`` in IFD ``ifd``."""
    info = walk(bytes(data))
    start = info.ifds[ifd]
    end = info.ifds[ifd + 1] if ifd + 1 < len(info.ifds) else len(data)
    for entry in info.entries:
        if start < entry.pos < end and struct.unpack_from("<H", data, entry.pos)[0] == tag:
            return entry.pos
    raise AssertionError(f"tag {tag} not in IFD {ifd}")


# ----------------------------------------------------------------------------- hypothesis


@fuzz(250)
@given(seed=st.integers(0, 5), ops=OPS, prefetch=st.sampled_from([16, 64, 4096, 65536]))
def test_mutated_generated_cogs_raise_only_typed_errors(seed: int, ops, prefetch: int) -> None:
    check_header_case(mutate(seeds()[seed], ops), prefetch=prefetch)


@pytest.mark.skipif(not corpus_available(), reason=f"conformance corpus not found at {CORPUS}")
@fuzz(200)
@given(index=st.integers(0, 10**6), ops=OPS, prefetch=st.sampled_from([16, 512, 65536]))
def test_mutated_corpus_files_raise_only_typed_errors(index: int, ops, prefetch: int) -> None:
    files = corpus()
    check_header_case(mutate(files[index % len(files)], ops), prefetch=prefetch)


def test_every_corpus_file_parses_or_raises_a_typed_error(corpus_dir: Path) -> None:
    files = sorted(p for p in (corpus_dir / "tiff").rglob("*.tif*") if p.is_file())
    outcomes = [run_header_case(p.read_bytes(), prefetch=16384) for p in files]
    untyped = [(p.name, o.error) for p, o in zip(files, outcomes, strict=True) if not o.typed]
    assert len(files) > 100
    assert untyped == []
    # most of the corpus is valid: the parser is not simply refusing everything
    assert sum(o.error is None for o in outcomes) > 0.7 * len(files)


def test_truncation_at_every_header_byte(tmp_path: Path) -> None:
    data = bytes(_cog(tmp_path))
    header_end = parse_header(data, "x").images[-1].block_offsets.min()
    errors = set()
    for cut in range(0, int(header_end), 7):
        outcome = check_header_case(data[:cut], prefetch=64)
        assert isinstance(outcome.error, CorruptTiffError), cut
        errors.add(type(outcome.error))
    assert errors == {CorruptTiffError}


# ----------------------------------------------------------------------------- hand-built


def test_ifd_chain_loop_is_detected(tmp_path: Path) -> None:
    data = _cog(tmp_path)
    info = walk(bytes(data))
    last = info.ifds[-1]
    count = struct.unpack_from("<H", data, last)[0]
    struct.pack_into("<I", data, last + 2 + count * 12, info.ifds[0])  # last -> first
    with pytest.raises(CorruptTiffError, match="loops back"):
        parse_header(bytes(data), "loop.tif")
    outcome = check_header_case(bytes(data), prefetch=16)
    assert "loops back" in str(outcome.error)


def test_self_referencing_subifd_is_not_followed_forever(tmp_path: Path) -> None:
    data = _cog(tmp_path)
    first = walk(bytes(data)).ifds[0]
    pos = _entry(data, 277)  # SamplesPerPixel: make it a SubIFDs entry pointing at IFD0
    struct.pack_into("<HHII", data, pos, 330, 4, 1, first)
    outcome = check_header_case(bytes(data))
    assert outcome.typed


def test_header_claiming_a_trillion_tiles_allocates_nothing_big(tmp_path: Path) -> None:
    data = _cog(tmp_path, bigtiff=True, overviews=())
    # image 2^31-1 square in 16-px tiles: 1.8e16 tiles; TileOffsets claims 10^12 values
    for tag in (256, 257):
        pos = _entry(data, tag)
        struct.pack_into("<HHQQ", data, pos, tag, 16, 1, 2**31 - 1)
    pos = _entry(data, 324)
    struct.pack_into("<HHQ", data, pos, 324, 16, 10**12)
    with measure() as peak:
        with pytest.raises(CorruptTiffError, match="beyond the"):
            parse_header(bytes(data), "huge.tif")
        with pytest.raises(CorruptTiffError):
            asyncio.run(read_header(_fetch(bytes(data)), "huge.tif", prefetch=64))
    assert peak[0] < 64 * MiB


def test_block_arrays_shorter_than_the_grid_are_refused(tmp_path: Path) -> None:
    data = _cog(tmp_path, overviews=())
    for tag in (256, 257):
        pos = _entry(data, tag)
        struct.pack_into("<HHII", data, pos, tag, 4, 1, 10**6)
    with pytest.raises(CorruptTiffError, match="TileOffsets holds 4 values but the image needs"):
        parse_header(bytes(data), "short.tif")


def test_value_offset_past_the_end(tmp_path: Path) -> None:
    data = _cog(tmp_path)
    pos = _entry(data, 324)
    struct.pack_into("<I", data, pos + 8, len(data) + 10)
    with pytest.raises(CorruptTiffError, match="beyond the end of the file"):
        parse_header(bytes(data), "past.tif")


@pytest.mark.parametrize("field_type", [2, 5, 7, 11, 12, 0, 19])
def test_tag_type_mismatch_is_typed(tmp_path: Path, field_type: int) -> None:
    data = _cog(tmp_path)
    for tag in (256, 324):
        pos = _entry(data, tag)
        struct.pack_into("<H", data, pos + 2, field_type)
    outcome = check_header_case(bytes(data))
    assert isinstance(outcome.error, (CorruptTiffError, UnsupportedTiffError))


def test_billion_laughs_in_gdal_metadata_is_harmless(tmp_path: Path) -> None:
    bomb = (
        '<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">'
        + "".join(f'<!ENTITY {c} "{("&" + p + ";") * 10}">' for p, c in _pairs("abcdefghi"))
        + ']><GDALMetadata><Item name="SCALE" sample="0" role="scale">&i;</Item></GDALMetadata>'
    )
    path = tmp_path / "bomb.tif"
    tags = {
        256: (4, [16]),
        257: (4, [16]),
        258: (3, [8]),
        259: (3, [1]),
        262: (3, [1]),
        277: (3, [1]),
        322: (3, [16]),
        323: (3, [16]),
        42112: (ASCII, bomb),
    }
    write_tiff(path, [ImageToWrite(tags, [bytes(256)])])
    data = path.read_bytes()
    with measure() as peak:
        outcome = check_header_case(data)
    assert outcome.error is None or isinstance(outcome.error, TiffError)
    assert peak[0] < 64 * MiB
    header = parse_header(data, "bomb.tif")
    assert header.geo.scale is None  # expat refuses the amplification: no scale parsed


def _pairs(letters: str) -> list[tuple[str, str]]:
    return [(letters[i], letters[i + 1]) for i in range(len(letters) - 1)]


def _fetch(data: bytes):
    async def fetch(offset: int, length: int) -> bytes:
        return data[offset : offset + length]

    return fetch
