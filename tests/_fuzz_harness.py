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
  :class:`~rasteret.tiff.BlockDecoding`.

The only acceptable failures are :class:`~rasteret.errors.TiffError` subclasses. A case
also fails when it exceeds a wall-clock budget (:func:`time_guard`, SIGALRM) or traces a
peak allocation above the budget (:func:`measure`, tracemalloc).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import struct
import tracemalloc
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

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
