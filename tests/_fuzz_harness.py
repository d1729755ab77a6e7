"""Fuzzing harness for the TIFF header parser and the tile codec (tests and benchmarks/fuzz.py).

A fuzz *case* is a pure function of (seed bytes, a list of mutation operations), so the
same mutations drive hypothesis (CI), a plain random loop and atheris (benchmarks/fuzz.py).

Seeds: small COGs written by :func:`rasteret.samples.write_cog` (always available) and the
small files of the conformance corpus (when ``../shared/corpus`` exists).

Targets:

* :func:`run_header_case`: ``parse_header`` over the mutated bytes, ``read_header`` over an
  async fetch of them (small prefetch, so several rounds run), then the first blocks of
  every parsed image decoded with ``decode_block``.
* :func:`run_codec_case`: ``decode_block`` of a (mutated) block payload with a (mutated)
  :class:`~rasteret.tiff.BlockDecoding`. Seed blocks: the seeds' blocks plus
  :func:`codec_blocks` (one block of every other codec) and :func:`bombs` (payloads that
  decode, or claim to decode, to :data:`BOMB_BYTES` under a small block).

The only acceptable failures are :class:`~rasteret.errors.TiffError` subclasses. A case
also fails when it exceeds a wall-clock budget (:func:`time_guard`, SIGALRM) or traces a
peak allocation above the budget (:func:`measure`, tracemalloc). tracemalloc does not see
the codec libraries' own allocations: :func:`rss_slice` runs a slice of codec cases in a
fresh subprocess and reports its peak RSS growth (``ru_maxrss``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import lzma
import pickle
import random
import re
import signal
import struct
import subprocess
import sys
import tracemalloc
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import imagecodecs
import numpy as np

from rasteret.errors import TiffError
from rasteret.tiff import BlockDecoding, decode_block, parse_header, read_header

MiB = 1024 * 1024
#: Peak traced allocation a header case may reach (the seeds are < 1 MiB).
HEADER_MEMORY_BUDGET = 64 * MiB
#: Base budget of a codec case; a decoding whose declared block is accepted may add 3x it.
CODEC_MEMORY_BUDGET = 64 * MiB
#: Wall-clock budget of one case (seconds).
TIME_BUDGET = 10.0
#: Seeds larger than this are not used (keeps each case fast).
MAX_SEED_BYTES = 256 * 1024

Op = tuple[int, int, int]


class CaseTimeout(BaseException):
    """A case ran past its wall-clock budget (a hang)."""


@contextlib.contextmanager
def time_guard(seconds: float = TIME_BUDGET) -> Iterator[None]:
    """Raise :class:`CaseTimeout` in the main thread after ``seconds`` (SIGALRM)."""

    def expire(signum: int, frame: Any) -> None:
        raise CaseTimeout(f"case exceeded {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@contextlib.contextmanager
def measure() -> Iterator[list[int]]:
    """Trace allocations inside the block; the yielded list receives the peak (bytes)."""
    result: list[int] = []
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    try:
        yield result
    finally:
        result.append(tracemalloc.get_traced_memory()[1] - base)
        if started:
            tracemalloc.stop()


# ----------------------------------------------------------------------------- seeds


def generated_seeds(directory: Path) -> list[bytes]:
    """Small COGs in a variety of layouts, written with rasteret.samples.write_cog."""
    from rasteret.samples import write_cog

    rng = np.random.default_rng(7)
    transform = (10.0, 0.0, 500000.0, 0.0, -10.0, 5300000.0)
    specs: list[tuple[np.ndarray, dict[str, Any]]] = [
        (rng.integers(0, 4000, (40, 50), dtype=np.uint16), {"compression": "deflate"}),
        (rng.random((33, 31), dtype=np.float32), {"compression": "lzw", "predictor": 3}),
        (rng.integers(0, 255, (3, 32, 32), dtype=np.uint8), {"compression": "zstd"}),
        (
            rng.integers(-99, 99, (2, 20, 36), dtype=np.int16),
            {"compression": "none", "interleave": "band"},
        ),
        (
            np.where(rng.random((48, 48)) > 0.7, 5, 0).astype(np.uint8),
            {"compression": "packbits", "sparse": True, "nodata": 0, "bigtiff": True},
        ),
        (rng.random((24, 24)), {"compression": "lzma", "predictor": 2, "overviews": (2,)}),
    ]
    seeds = []
    for i, (array, options) in enumerate(specs):
        path = directory / f"seed{i}.tif"
        options = {"tile": 16, "epsg": 32633, "transform": transform, **options}
        write_cog(path, array, **options)
        seeds.append(path.read_bytes())
    return seeds


def corpus_seeds(corpus: Path | None, limit: int | None = None) -> list[bytes]:
    """The corpus TIFFs of at most :data:`MAX_SEED_BYTES` (none when ``corpus`` is None)."""
    if corpus is None or not (corpus / "tiff").is_dir():
        return []
    files = sorted(
        p
        for p in (corpus / "tiff").rglob("*")
        if p.is_file() and p.suffix.lower() in (".tif", ".tiff") and p.stat().st_size
    )
    files = [p for p in files if p.stat().st_size <= MAX_SEED_BYTES]
    return [p.read_bytes() for p in files[:limit]]


# ----------------------------------------------------------------------------- mutations


@dataclass(frozen=True)
class Entry:
    """Where one IFD entry of a seed sits (for structural mutations)."""

    pos: int  # byte position of the entry in the file
    bigtiff: bool
    order: str


@dataclass(frozen=True)
class Structure:
    """IFD positions and entries of a seed, found by a tolerant walk."""

    order: str
    bigtiff: bool
    ifds: tuple[int, ...]  # IFD offsets
    entries: tuple[Entry, ...]


def walk(data: bytes) -> Structure:
    """A tolerant, bounded walk of the IFD chain (never raises)."""
    order = ">" if data[:2] == b"MM" else "<"
    try:
        magic = struct.unpack_from(order + "H", data, 2)[0]
        bigtiff = magic == 43
        first = struct.unpack_from(order + ("Q" if bigtiff else "I"), data, 8 if bigtiff else 4)[0]
    except struct.error:
        return Structure(order, False, (), ())
    ifds, entries, offset = [], [], first
    count_fmt, esize, ofmt = ("Q", 20, "Q") if bigtiff else ("H", 12, "I")
    csize = 8 if bigtiff else 2
    while offset and offset not in ifds and len(ifds) < 64:
        try:
            n = struct.unpack_from(order + count_fmt, data, offset)[0]
            if n > 4096:
                break
            ifds.append(offset)
            for i in range(n):
                pos = offset + csize + i * esize
                if pos + esize <= len(data):
                    entries.append(Entry(pos, bigtiff, order))
            offset = struct.unpack_from(order + ofmt, data, offset + csize + n * esize)[0]
        except struct.error:
            break
    return Structure(order, bigtiff, tuple(ifds), tuple(entries))


#: Values that tend to break parsers: 0, 1, sign boundaries, all-ones, "10^12".
INTERESTING = (
    0,
    1,
    2,
    7,
    16,
    255,
    256,
    0x7FFF,
    0xFFFF,
    0x10000,
    0x7FFFFFFF,
    0x80000000,
    0xFFFFFFFF,
    10**12,
    2**63 - 1,
    2**64 - 1,
)
#: Tags worth retargeting an entry to (geometry, blocks, encoding, geo).
TAGS = (254, 256, 257, 258, 259, 262, 273, 277, 278, 279, 284, 317, 322, 323, 324, 325, 330)
TAGS += (338, 339, 347, 530, 33550, 33922, 34264, 34735, 34736, 34737, 42112, 42113, 50674)
N_OPS = 12


def _put(buf: bytearray, pos: int, fmt: str, value: int) -> None:
    size = struct.calcsize(fmt)
    if pos >= 0 and pos + size <= len(buf):
        struct.pack_into(fmt, buf, pos, value & ((1 << (8 * size)) - 1))


def mutate(seed: bytes, ops: Sequence[Op]) -> bytes:
    """Apply ``ops`` (``(kind, a, b)``, any ints) to ``seed``; deterministic."""
    buf = bytearray(seed)
    info = walk(seed)
    o = info.order
    big = info.bigtiff
    value_fmt = o + ("Q" if big else "I")
    count_fmt = value_fmt
    for kind, a, b in ops:
        kind %= N_OPS
        n = len(buf)
        entry = info.entries[a % len(info.entries)] if info.entries else None
        interesting = INTERESTING[b % len(INTERESTING)]
        if kind == 0 and n:  # flip one bit
            buf[a % n] ^= 1 << (b % 8)
        elif kind == 1 and n:  # set a byte, biased towards the header area
            buf[a % min(n, 4096)] = b & 0xFF
        elif kind == 2:  # truncate
            del buf[(a % (n + 1)) :]
        elif kind == 3 and entry:  # huge / odd count
            _put(buf, entry.pos + 4, count_fmt, interesting)
        elif kind == 4 and entry:  # field type mismatch
            _put(buf, entry.pos + 2, o + "H", b % 20)
        elif kind == 5 and entry:  # value / offset field: past the end, 0, random
            choices = (n, n + 1, 2**31, 0, interesting, a)
            _put(buf, entry.pos + (12 if big else 8), value_fmt, choices[b % len(choices)])
        elif kind == 6 and entry:  # retarget the tag (duplicates, misplaced tags)
            _put(buf, entry.pos, o + "H", TAGS[b % len(TAGS)])
        elif kind == 7 and info.ifds:  # IFD loop / bad next-IFD offset
            ifd = info.ifds[a % len(info.ifds)]
            csize, esize = (8, 20) if big else (2, 12)
            try:
                count = struct.unpack_from(o + ("Q" if big else "H"), buf, ifd)[0]
            except struct.error:
                continue
            targets = (ifd, info.ifds[0], info.ifds[b % len(info.ifds)], n + 8, 1, interesting)
            _put(buf, ifd + csize + count * esize, value_fmt, targets[b % len(targets)])
        elif kind == 8 and info.ifds:  # IFD entry count
            ifd = info.ifds[a % len(info.ifds)]
            _put(buf, ifd, o + ("Q" if big else "H"), interesting if b % 2 else b % 300)
        elif kind == 9 and entry:  # inline value: huge sizes, zero tiles, odd encodings
            _put(buf, entry.pos + (12 if big else 8), o + "I", interesting)
        elif kind == 10 and n:  # overwrite a run with 0xFF / 0x00
            start = a % n
            buf[start : start + 1 + b % 16] = bytes([0xFF if b & 1 else 0]) * (1 + b % 16)
        elif kind == 11 and n:  # duplicate a slice into another place (shifts offsets)
            start = a % n
            piece = bytes(buf[start : start + 1 + b % 64])
            at = b % (n + 1)
            buf[at:at] = piece
    return bytes(buf)


# ----------------------------------------------------------------------------- outcomes


@dataclass
class Outcome:
    """What one case did: ``"ok"`` or the error it raised (typed or not)."""

    error: BaseException | None = None
    peak: int = 0
    stage: str = ""
    declared: int = 0  # largest decoded block the case asked the decoder for (bytes)

    @property
    def typed(self) -> bool:
        return self.error is None or isinstance(self.error, TiffError)

    def signature(self) -> str:
        """A short class + digit-free message, used to count distinct errors."""
        if self.error is None:
            return "ok"
        message = getattr(self.error, "reason", None) or str(self.error)
        message = re.sub(r"0x[0-9a-f]+|\d+", "N", message)[:120]
        return f"{type(self.error).__name__}: {message}"


class UntypedError(AssertionError):
    """A case raised something other than a TiffError (or hung, or used too much memory)."""


def _check(outcome: Outcome, budget: int, what: str) -> None:
    if isinstance(outcome.error, CaseTimeout):
        raise UntypedError(f"{what}: hang ({outcome.stage}): {outcome.error}")
    if not outcome.typed:
        raise UntypedError(
            f"{what}: untyped {type(outcome.error).__name__} in {outcome.stage}: {outcome.error}"
        ) from outcome.error
    if outcome.peak > budget:
        peak = outcome.peak / MiB
        raise UntypedError(f"{what}: peak allocation {peak:.1f} MiB in {outcome.stage}")


def _memory_fetch(data: bytes) -> Callable[[int, int], Any]:
    async def fetch(offset: int, length: int) -> bytes:
        await asyncio.sleep(0)
        return data[offset : offset + length]

    return fetch


def _decode_some(header: Any, data: bytes, outcome: Outcome, blocks: int = 2) -> None:
    for image in header.images:
        decoding = BlockDecoding.from_layout(image, header.byte_order, header.source)
        outcome.declared = max(outcome.declared, declared_block_bytes(decoding))
        for index in range(min(blocks, len(image.block_offsets))):
            offset = int(image.block_offsets[index])
            count = min(int(image.block_byte_counts[index]), 4 * MiB)
            if count == 0:
                continue
            decode_block(
                data[offset : offset + count], decoding, source=header.source, block_index=index
            )


def run_header_case(data: bytes, *, prefetch: int = 64, decode: bool = True) -> Outcome:
    """parse_header, read_header (async fetch) and a few block decodes of ``data``."""
    outcome = Outcome()
    stage = "parse_header"
    with measure() as peak:
        try:
            with time_guard():
                header = None
                try:
                    header = parse_header(data, "fuzz.tif")
                except TiffError as exc:
                    outcome.error = exc
                stage = "read_header"
                try:
                    asyncio.run(read_header(_memory_fetch(data), "fuzz.tif", prefetch=prefetch))
                except TiffError as exc:
                    outcome.error = outcome.error or exc
                if header is not None and decode:
                    stage = "decode_block"
                    _decode_some(header, data, outcome)
        except TiffError as exc:
            outcome.error = exc
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt):
                raise
            outcome.error = exc
    outcome.peak = peak[0]
    outcome.stage = stage
    return outcome


def header_budget(outcome: Outcome) -> int:
    """Allowed peak of a header case: the base budget, plus 3x the largest block it decoded
    when the decoder's block limit admits it (ZSTD / LZMA payloads have no ratio bound)."""
    from rasteret.tiff.block_decoders import MAX_DECODED_BLOCK_BYTES

    extra = outcome.declared if outcome.declared <= MAX_DECODED_BLOCK_BYTES else 0
    return HEADER_MEMORY_BUDGET + 3 * extra


def check_header_case(data: bytes, *, prefetch: int = 64) -> Outcome:
    """:func:`run_header_case`, raising :class:`UntypedError` on a crash, hang or huge peak."""
    outcome = run_header_case(data, prefetch=prefetch)
    _check(outcome, header_budget(outcome), f"header case ({len(data)} bytes)")
    return outcome


# ----------------------------------------------------------------------------- codec cases


def seed_blocks(seeds: Sequence[bytes], per_seed: int = 2) -> list[tuple[bytes, BlockDecoding]]:
    """(payload, decoding) pairs of the first blocks of every image of every seed."""
    pairs = []
    for data in seeds:
        try:
            header = parse_header(data, "seed")
        except TiffError:
            continue
        for image in header.images:
            try:
                decoding = BlockDecoding.from_layout(image, header.byte_order)
                decoding.check()
            except TiffError:
                continue
            for index in range(min(per_seed, len(image.block_offsets))):
                offset, count = int(image.block_offsets[index]), int(image.block_byte_counts[index])
                if count and offset + count <= len(data):
                    pairs.append((data[offset : offset + count], decoding))
    return pairs


DIMENSIONS = (0, -1, 1, 3, 16, 17, 256, 4096, 65536, 2**20, 2**31 - 1, 10**9, 2**40)
DTYPES = ("uint8", "int16", "uint16", "float32", "float64", "complex64", "float16", "bool")
DTYPES += ("object", "U3", "V8", "float128", "garbage", "", "M8[ns]", ">u2")
COMPRESSIONS = (1, 2, 3, 4, 5, 6, 7, 8, 32773, 32946, 34887, 34925, 50000, 50001, 50002)
COMPRESSIONS += (0, 99, 34712, 65535, -1)
FIELD_VALUES: dict[str, tuple[Any, ...]] = {
    "compression": COMPRESSIONS,
    "dtype": DTYPES,
    "block_width": DIMENSIONS,
    "block_height": DIMENSIONS,
    "samples": (0, -1, 1, 2, 3, 4, 5, 255, 65535, 10**9),
    "bits_per_sample": (0, -8, 1, 2, 4, 7, 8, 12, 16, 24, 32, 64, 128, 1000),
    "sample_format": (0, 1, 2, 3, 4, 5, 6, 7),
    "predictor": (0, 1, 2, 3, 4, 34892),
    "byte_order": ("<", ">", "=", "x", ""),
    "photometric": (None, 0, 1, 2, 3, 4, 5, 6, 8, 32844),
    "planar_configuration": (0, 1, 2, 3),
    "tiled": (True, False),
    "extra_samples": ((), (0,), (1, 2), (2,) * 300),
    "ycbcr_subsampling": (None, (0, 0), (1, 1), (2, 2), (3, 3), (4, 4), (8, 8), (-1, 2)),
    "jpeg_tables": (None, b"", b"\xff\xd8\xff\xd9", b"\xff\xd8" + b"\x00" * 30, bytes(range(256))),
    "lerc_parameters": (None, (), (4,), (4, 0), (4, 1), (4, 2), (4, 9)),
}
FIELDS = tuple(FIELD_VALUES)
ROWS = (None, None, 0, 1, -1, 3, 10**9)


def mutate_decoding(decoding: BlockDecoding, ops: Sequence[Op]) -> BlockDecoding:
    """``decoding`` with some fields replaced by hostile values (ops: field, value, -)."""
    changes: dict[str, Any] = {}
    for a, b, _ in ops:
        name = FIELDS[a % len(FIELDS)]
        values = FIELD_VALUES[name]
        changes[name] = values[b % len(values)]
    return replace(decoding, **changes)


def declared_block_bytes(decoding: BlockDecoding) -> int:
    """Bytes a block of ``decoding`` would take once decoded (0 when not computable)."""
    try:
        itemsize = max(np.dtype(decoding.dtype).itemsize, 1)
    except Exception:
        return 0
    dims = (decoding.block_width, decoding.block_height, decoding.samples)
    if any(not isinstance(v, int) or v <= 0 for v in dims):
        return 0
    return dims[0] * dims[1] * dims[2] * itemsize  # the decoder's own estimate


def run_codec_case(payload: bytes, decoding: BlockDecoding, rows: int | None) -> Outcome:
    """``decode_block(payload, decoding, rows=rows)``; the outcome (never raises)."""
    outcome = Outcome(stage="decode_block")
    with measure() as peak:
        try:
            with time_guard():
                decode_block(payload, decoding, source="fuzz.tif", block_index=0, rows=rows)
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt):
                raise
            outcome.error = exc
    outcome.peak = peak[0]
    return outcome


def codec_budget(decoding: BlockDecoding) -> int:
    """Allowed peak: the base budget plus 3x the declared block, when the decoder's block
    limit admits it (a strip may legitimately decode to a whole padded block)."""
    from rasteret.tiff.block_decoders import MAX_DECODED_BLOCK_BYTES as MAX_BLOCK_BYTES

    declared = declared_block_bytes(decoding)
    return CODEC_MEMORY_BUDGET + (3 * declared if 0 < declared <= MAX_BLOCK_BYTES else 0)


def check_codec_case(payload: bytes, decoding: BlockDecoding, rows: int | None) -> Outcome:
    """:func:`run_codec_case`, raising :class:`UntypedError` on a crash, hang or huge peak."""
    outcome = run_codec_case(payload, decoding, rows)
    _check(outcome, codec_budget(decoding), f"codec case {decoding!r} rows={rows}")
    return outcome


# ----------------------------------------------------------------------------- every codec


def _bits(bits: str) -> bytes:
    """MSB-first bit string -> bytes (zero padded)."""
    bits += "0" * (-len(bits) % 8)
    return bytes(int(bits[i : i + 8], 2) for i in range(0, len(bits), 8))


def _jpeg_abbreviated(jpeg: bytes) -> tuple[bytes, bytes]:
    """Split a JPEG into (JPEGTables, tile without tables), as TIFF stores JPEG tiles."""
    tables, tile, i = [b"\xff\xd8"], [b"\xff\xd8"], 2
    while jpeg[i + 1] != 0xDA:
        (length,) = struct.unpack_from(">H", jpeg, i + 2)
        segment = jpeg[i : i + 2 + length]
        (tables if jpeg[i + 1] in (0xC4, 0xDB) else tile).append(segment)
        i += 2 + length
    return b"".join(tables) + b"\xff\xd9", b"".join(tile) + jpeg[i:]


def codec_blocks() -> list[tuple[bytes, BlockDecoding]]:
    """One valid block of every codec :func:`generated_seeds` does not write: CCITT RLE /
    G3 / G4, JPEG (RGB, YCbCr, with JPEGTables apart), WebP, LERC (plain, deflate, zstd),
    JPEG-XL (when imagecodecs has libjxl) and subsampled YCbCr without JPEG."""
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)
    gray = rng.random((16, 16), dtype=np.float32)
    floats = {"bits_per_sample": 32, "sample_format": 3}
    row = "10011" + "000101"  # MH codes: 8 white, 8 black
    tables, tile = _jpeg_abbreviated(imagecodecs.jpeg8_encode(np.ascontiguousarray(rgb[..., 0])))
    blocks = [
        (_bits(row) * 16, BlockDecoding(2, "uint8", 16, 16, 1, bits_per_sample=1)),
        (_bits(row * 16), BlockDecoding(3, "uint8", 16, 16, 1, bits_per_sample=1)),
        (_bits("001" + row + "11" * 15), BlockDecoding(4, "uint8", 16, 16, 1, bits_per_sample=1)),
        (imagecodecs.jpeg8_encode(rgb), BlockDecoding(7, "uint8", 16, 16, 3, photometric=2)),
        (imagecodecs.jpeg8_encode(rgb), BlockDecoding(7, "uint8", 16, 16, 3, photometric=6)),
        (tile, BlockDecoding(7, "uint8", 16, 16, 1, photometric=1, jpeg_tables=tables)),
        (imagecodecs.webp_encode(rgb, lossless=True), BlockDecoding(50001, "uint8", 16, 16, 3)),
        (imagecodecs.lerc_encode(gray), BlockDecoding(34887, "float32", 16, 16, 1, **floats)),
        (
            imagecodecs.lerc_encode(gray, compression="deflate"),
            BlockDecoding(34887, "float32", 16, 16, 1, lerc_parameters=(4, 1), **floats),
        ),
        (
            imagecodecs.lerc_encode(gray, compression="zstd"),
            BlockDecoding(34887, "float32", 16, 16, 1, lerc_parameters=(4, 2), **floats),
        ),
        (
            zlib.compress(rng.integers(0, 255, 384, dtype=np.uint8).tobytes()),
            BlockDecoding(8, "uint8", 16, 16, 3, photometric=6, ycbcr_subsampling=(2, 2)),
        ),
    ]
    if imagecodecs.JPEGXL.available:
        jxl = imagecodecs.jpegxl_encode(rgb, lossless=True)
        blocks.append((jxl, BlockDecoding(50002, "uint8", 16, 16, 3)))
    return blocks


# ----------------------------------------------------------------------------- bombs

#: What every bomb decodes (or claims to decode) to, far beyond the block it is declared as.
BOMB_BYTES = 256 * MiB
#: Decoded size of the small blocks the bombs are declared as (256 x 256 x 1 bytes).
BOMB_BLOCK = BlockDecoding(1, "uint8", 256, 256)


@dataclass(frozen=True)
class Bomb:
    """A payload of :data:`BOMB_BYTES` or more (decoded or declared) and the small block it
    is declared as; ``refused`` is a substring of the error it must raise ("" when it
    decodes: a stream longer than its block is cut, as libtiff does)."""

    name: str
    payload: bytes
    decoding: BlockDecoding
    refused: str


def vp8l_constant(width: int, height: int) -> bytes:
    """A raw VP8L bitstream of a ``width`` x ``height`` black image: 8 bytes, whatever the
    size (no transform, one-symbol prefix codes: every pixel costs 0 bits)."""
    bits = []  # signature, width - 1, height - 1, alpha + version, no transform / cache / meta
    for value, count in ((0x2F, 8), (width - 1, 14), (height - 1, 14), (0, 4), (0, 3)):
        bits += [(value >> i) & 1 for i in range(count)]  # LSB first
    bits += [1, 0, 0, 0] * 5  # five simple prefix codes of one 1-bit symbol (0)
    bits += [0] * (-len(bits) % 8)
    return bytes(sum(b << i for i, b in enumerate(bits[k : k + 8])) for k in range(0, len(bits), 8))


def _riff_chunk(tag: bytes, payload: bytes) -> bytes:
    return tag + struct.pack("<I", len(payload)) + payload + b"\0" * (len(payload) % 2)


def webp_animation(width: int, height: int, frames: int) -> bytes:
    """An animated WebP of ``frames`` black ``width`` x ``height`` frames (about 50 bytes each)."""
    size = (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    frame = _riff_chunk(b"VP8L", vp8l_constant(width, height) + bytes(12))
    anmf = _riff_chunk(b"ANMF", bytes(6) + size + (100).to_bytes(3, "little") + b"\0" + frame)
    vp8x = _riff_chunk(b"VP8X", b"\x02\0\0\0" + size)  # flags: animation
    body = b"WEBP" + vp8x + _riff_chunk(b"ANIM", bytes(6)) + anmf * frames
    return b"RIFF" + struct.pack("<I", len(body)) + body


def jpeg_hidden_frame(height: int, width: int) -> bytes:
    """A 16 x 16 JPEG whose frame header says ``height`` x ``width``, behind a byte libjpeg
    skips (before, rasteret's frame reader stopped there and let libjpeg decode)."""
    jpeg = bytearray(imagecodecs.jpeg8_encode(np.zeros((16, 16), np.uint8)))
    sof = jpeg.index(b"\xff\xc0")
    jpeg[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(jpeg[:sof]) + b"\x00" + bytes(jpeg[sof:])


@functools.cache
def bombs() -> tuple[Bomb, ...]:
    """One bomb per codec (several for LERC, WebP), built in a few seconds: the inputs are
    untouched zero pages, so building them costs no memory."""
    zeros = memoryview(np.zeros(BOMB_BYTES, np.uint8))
    side = 1024  # LERC bands: 64 x 1024 x 1024 float32 = 256 MiB
    band = imagecodecs.lerc_encode(np.zeros((side, side), np.float32))
    lerc = BlockDecoding(34887, "float32", side, side, 1, bits_per_sample=32, sample_format=3)
    rgb = replace(BOMB_BLOCK, samples=3)
    out = [
        Bomb("deflate", zlib.compress(zeros, 9), replace(BOMB_BLOCK, compression=8), ""),
        Bomb("LZW", imagecodecs.lzw_encode(zeros), replace(BOMB_BLOCK, compression=5), ""),
        Bomb(
            "PackBits",
            bytes([0x81, 0]) * (BOMB_BYTES // 128),
            replace(BOMB_BLOCK, compression=32773),
            "more than",
        ),
        Bomb(
            "ZSTD",
            imagecodecs.zstd_encode(zeros),
            replace(BOMB_BLOCK, compression=50000),
            "more than",
        ),
        Bomb(
            "LZMA",
            lzma.compress(zeros, format=lzma.FORMAT_XZ, preset=0),
            replace(BOMB_BLOCK, compression=34925),
            "",
        ),
        Bomb(
            "JPEG",
            jpeg_hidden_frame(16384, 16384),
            replace(BOMB_BLOCK, compression=7),
            "declares a 16384 x 16384 image",
        ),
        Bomb(
            "WebP",
            vp8l_constant(16384, 5462) + bytes(12),
            replace(rgb, compression=50001),
            "declares a 5462 x 16384 image",
        ),
        Bomb(
            "WebP animation",
            webp_animation(256, 256, 1024),
            replace(rgb, compression=50001),
            "an animation",
        ),
        Bomb("LERC bands", band * 64, lerc, "shape"),
        Bomb(
            "LERC_DEFLATE bands",
            zlib.compress(band * 64),
            replace(lerc, lerc_parameters=(4, 1)),
            "shape",
        ),
        Bomb(
            "LERC_ZSTD bands",
            imagecodecs.zstd_encode(band * 64),
            replace(lerc, lerc_parameters=(4, 2)),
            "shape",
        ),
        Bomb(
            "LERC without LercParameters",
            imagecodecs.zstd_encode(zeros),
            lerc,
            "not a LERC blob",
        ),
    ]
    if imagecodecs.JPEGXL.available:
        jxl = imagecodecs.jpegxl_encode(
            np.zeros((16384, 16384), np.uint8), lossless=True, effort=1, numthreads=1
        )
        out.append(
            Bomb("JPEG-XL", jxl, replace(BOMB_BLOCK, compression=50002), "declares a 16384 x 16384")
        )
    return tuple(out)


# ----------------------------------------------------------------------------- peak RSS


def random_codec_cases(
    pairs: Sequence[tuple[bytes, BlockDecoding]], count: int, seed: int = 0, max_block: int = 0
) -> list[tuple[bytes, BlockDecoding, int | None]]:
    """``count`` mutated (payload, decoding, rows) cases of ``pairs``, deterministic in
    ``seed``; with ``max_block``, decodings declaring a larger block are skipped."""
    rng = random.Random(seed)
    cases: list[tuple[bytes, BlockDecoding, int | None]] = []
    while len(cases) < count:
        payload, decoding = pairs[rng.randrange(len(pairs))]
        if rng.random() < 0.1:  # another codec's payload under this decoding
            payload = pairs[rng.randrange(len(pairs))][0]
        payload_ops = [
            (rng.randrange(64), rng.getrandbits(32), rng.getrandbits(32))
            for _ in range(rng.randrange(5))
        ]
        field_ops = [(rng.randrange(256), rng.randrange(256), 0) for _ in range(rng.randrange(4))]
        mutated = mutate_decoding(decoding, field_ops)
        if max_block and declared_block_bytes(mutated) > max_block:
            continue
        cases.append((mutate(payload, payload_ops), mutated, ROWS[rng.randrange(len(ROWS))]))
    return cases


def rss_main(path: str) -> None:
    """Subprocess side of :func:`rss_slice`: decode the pickled cases, print a JSON report."""
    import resource

    with open(path, "rb") as file:
        warmup, cases = pickle.load(file)
    for payload, decoding in warmup:  # loads every codec library before the baseline
        decode_block(payload, decoding)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peaks, untyped = [], []
    for index, (payload, decoding, rows) in enumerate(cases):
        error: BaseException | None = None
        try:
            with time_guard():
                decode_block(payload, decoding, source="fuzz.tif", block_index=0, rows=rows)
        except TiffError:
            pass
        except BaseException as exc:
            error = exc
        if error is not None:
            untyped.append(f"case {index} {decoding!r}: {type(error).__name__}: {error}"[:400])
        peaks.append(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
    first_peak = max(range(len(peaks)), key=peaks.__getitem__) if peaks else -1
    report = {
        "cases": len(cases),
        "grew_mib": peaks[-1] / 1024 if peaks else 0.0,
        "peak_case": repr(cases[first_peak][1]) if peaks else "",
        "untyped": untyped[:10],
    }
    print(json.dumps(report))


def rss_slice(
    warmup: Sequence[tuple[bytes, BlockDecoding]],
    cases: Sequence[tuple[bytes, BlockDecoding, int | None]],
    directory: Path,
) -> dict[str, Any]:
    """Decode ``cases`` in a fresh interpreter (after decoding ``warmup``); its report:
    ``grew_mib`` (peak RSS growth over the cases), ``peak_case`` (the case that set the
    peak), ``untyped`` (failures other than TiffError)."""
    path = directory / "rss_cases.pickle"
    path.write_bytes(pickle.dumps((list(warmup), list(cases))))
    driver = "import sys; sys.path.insert(0, sys.argv[1]); import _fuzz_harness as h; "
    driver += "h.rss_main(sys.argv[2])"
    result = subprocess.run(
        [sys.executable, "-c", driver, str(Path(__file__).parent), str(path)],
        capture_output=True, text=True, timeout=600, check=True,
    )  # fmt: skip
    return json.loads(result.stdout)
