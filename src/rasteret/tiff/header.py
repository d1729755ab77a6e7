"""TIFF / GeoTIFF header parsing: every IFD, block arrays, georeferencing.

:func:`read_header` does its own planning but no I/O of its own: it calls an async
``fetch(offset, length)``. One speculative read of ``prefetch`` bytes, then only what
is missing; a COG (all IFDs and tag arrays before the first block) needs at most two
calls. :func:`parse_header` is the same parser over bytes already in memory.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace

import numpy as np

from rasteret.errors import CorruptTiffError
from rasteret.tiff.georef import GeoTags, build_georeference
from rasteret.tiff.ifd import (
    Ifd,
    NeedBytes,
    SparseBuffer,
    TiffFormat,
    ValueReader,
    read_file_header,
    read_ifd,
)
from rasteret.tiff.layout import LayoutBuilder
from rasteret.tiff.model import ImageKind, ImageLayout, TiffHeader
from rasteret.tiff.tags import GEO_TAGS, WANTED_TAGS, Tag

Fetch = Callable[[int, int], Awaitable[bytes]]

#: Most IFDs (main chain + SubIFDs) accepted in one file.
MAX_IFDS = 4096
#: Most fetch rounds before giving up (each round resolves at least one IFD level).
MAX_ROUNDS = 64
#: Largest span fetched from the end of the held prefix to the first block (COG header).
MAX_HEADER_SPAN = 16 * 1024 * 1024

_IFD0_TAGS = frozenset(WANTED_TAGS)
_OTHER_TAGS = frozenset(WANTED_TAGS - {int(t) for t in GEO_TAGS})


@dataclass
class _Scan:
    """IFDs found so far and the byte ranges still missing to parse all of them."""

    fmt: TiffFormat | None = None
    ifds: list[Ifd] = field(default_factory=list)
    missing: list[tuple[int, int]] = field(default_factory=list)
    chain_complete: bool = True
    first_block: int | None = None  # smallest known non-zero block offset


def _scan(buf: SparseBuffer) -> _Scan:
    scan = _Scan()
    try:
        scan.fmt, first = read_file_header(buf)
    except NeedBytes as need:
        scan.missing.append((need.start, need.end))
        scan.chain_complete = False
        return scan
    reader = ValueReader(buf, scan.fmt)
    visited: set[int] = set()
    _walk(buf, reader, scan, first, visited, sub=False)
    if not scan.ifds and scan.chain_complete:
        raise CorruptTiffError(buf.source, "the TIFF holds no image (first IFD offset is 0)")
    return scan


def _walk(
    buf: SparseBuffer, reader: ValueReader, scan: _Scan, offset: int, visited: set[int], sub: bool
) -> None:
    assert scan.fmt is not None
    while offset:
        if offset in visited:
            if sub:
                return
            raise CorruptTiffError(buf.source, f"IFD chain loops back to offset {offset}")
        if len(visited) >= MAX_IFDS:
            raise CorruptTiffError(buf.source, f"more than {MAX_IFDS} IFDs")
        visited.add(offset)
        try:
            ifd = read_ifd(buf, scan.fmt, offset)
        except NeedBytes as need:
            scan.missing.append((need.start, need.end))
            scan.chain_complete = False
            return
        scan.ifds.append(ifd)
        wanted = _IFD0_TAGS if len(scan.ifds) == 1 else _OTHER_TAGS
        for tag in wanted & ifd.entries.keys():
            try:
                reader.require(ifd.entries[tag])
            except NeedBytes as need:
                scan.missing.append((need.start, need.end))
        _note_first_block(reader, ifd, scan)
        sub_entry = ifd.entries.get(Tag.SUB_IFDS)
        if sub_entry is not None and not sub:
            try:
                children = reader.ints(sub_entry)
            except NeedBytes:
                scan.chain_complete = False  # recorded above; walk them next round
            else:
                for child in children:
                    _walk(buf, reader, scan, int(child), visited, sub=True)
        offset = ifd.next_offset


def _note_first_block(reader: ValueReader, ifd: Ifd, scan: _Scan) -> None:
    for tag in (Tag.TILE_OFFSETS, Tag.STRIP_OFFSETS):
        entry = ifd.entries.get(tag)
        if entry is None:
            continue
        try:
            offsets = reader.ints(entry)
        except (NeedBytes, CorruptTiffError):
            return
        nonzero = offsets[offsets > 0]
        if nonzero.size:
            low = int(nonzero.min())
            scan.first_block = low if scan.first_block is None else min(scan.first_block, low)
        return


def _classify(new_subfile_types: list[int]) -> list[ImageKind]:
    """Kind of each IFD: full image, its overviews and masks, or other pages."""
    kinds: list[ImageKind] = []
    have_full = other_seen = False
    for value in new_subfile_types:
        if other_seen:
            kinds.append("other")
        elif value & 4:
            kinds.append("mask")
        elif value & 1:
            kinds.append("overview" if have_full else "other")
        elif not have_full:
            kinds.append("full")
            have_full = True
        else:
            kinds.append("other")
            other_seen = True
    return kinds


def _geo_tags(reader: ValueReader, ifd: Ifd) -> GeoTags:
    entries = ifd.entries

    def floats(tag: Tag) -> np.ndarray | None:
        entry = entries.get(tag)
        return None if entry is None else reader.floats(entry)

    def text(tag: Tag) -> str | None:
        entry = entries.get(tag)
        return None if entry is None else reader.text(entry)

    directory = entries.get(Tag.GEO_KEY_DIRECTORY)
    return GeoTags(
        pixel_scale=floats(Tag.MODEL_PIXEL_SCALE),
        tiepoints=floats(Tag.MODEL_TIEPOINT),
        model_transformation=floats(Tag.MODEL_TRANSFORMATION),
        geokey_directory=None if directory is None else reader.ints(directory),
        geo_doubles=floats(Tag.GEO_DOUBLE_PARAMS),
        geo_ascii=text(Tag.GEO_ASCII_PARAMS),
        gdal_nodata=text(Tag.GDAL_NODATA),
        gdal_metadata=text(Tag.GDAL_METADATA),
    )


def _build(buf: SparseBuffer, scan: _Scan) -> TiffHeader:
    assert scan.fmt is not None
    reader = ValueReader(buf, scan.fmt)
    builders = [LayoutBuilder(reader, ifd) for ifd in scan.ifds]
    kinds = _classify([b.new_subfile_type() for b in builders])
    images: list[ImageLayout] = [
        builder.build(index, kind)
        for index, (builder, kind) in enumerate(zip(builders, kinds, strict=True))
    ]
    first = next((i for i in images if i.kind == "full"), images[0])
    geo = build_georeference(_geo_tags(reader, scan.ifds[0]), first.samples_per_pixel)
    return TiffHeader(
        source=buf.source,
        byte_order=scan.fmt.byte_order,  # type: ignore[arg-type]
        bigtiff=scan.fmt.bigtiff,
        images=tuple(images),
        geo=geo,
        file_size=buf.file_size,
    )


def _attempt(buf: SparseBuffer) -> TiffHeader | _Scan:
    """The header, or the scan with the byte ranges still missing."""
    scan = _scan(buf)
    if scan.missing:
        return scan
    try:
        return _build(buf, scan)
    except NeedBytes as need:  # a value the scan did not pre-check: fetch and retry
        scan.missing.append((need.start, need.end))
        scan.chain_complete = False
        return scan


def parse_header(data: bytes | bytearray | memoryview, source: str) -> TiffHeader:
    """Parse a TIFF header from the file's bytes in memory (the whole file)."""
    buf = SparseBuffer.from_bytes(data, source)
    result = _attempt(buf)
    if isinstance(result, _Scan):
        start, end = result.missing[0]
        raise CorruptTiffError(source, f"truncated: needs bytes {start}-{end - 1}")
    return result


def _plan(scan: _Scan, have: int, prefetch: int) -> list[tuple[int, int]]:
    """Byte ranges ``(start, end)`` to fetch next: one range for a COG-like layout."""
    ranges = sorted(set(scan.missing))
    gap = max(prefetch, 64 * 1024)
    groups: list[list[int]] = []
    for start, end in ranges:
        start = max(start, have) if start < have + gap else start
        if groups and start <= groups[-1][1] + gap:
            groups[-1][1] = max(groups[-1][1], end)
        else:
            groups.append([start, end])
    for group in groups:
        # Far away (e.g. an IFD at the end of a stripped file): read a prefetch-sized
        # window, since its values and the next IFDs usually sit next to it.
        group[1] = max(group[1], group[0] + prefetch)
    if groups and groups[0][0] <= have + gap:
        first = groups[0]
        first[0] = have
        if not scan.chain_complete:
            # More IFDs may follow: a COG keeps them all before its first block.
            block = scan.first_block
            if block is not None and first[1] < block <= have + MAX_HEADER_SPAN:
                first[1] = block
            else:
                first[1] = max(first[1], min(2 * have, have + MAX_HEADER_SPAN))
    return [(s, e) for s, e in groups if e > s]


async def read_header(fetch: Fetch, source: str, *, prefetch: int = 65536) -> TiffHeader:
    """Parse the header of a TIFF through ``fetch(offset, length)`` (async).

    Raises :class:`~rasteret.errors.CorruptTiffError` or
    :class:`~rasteret.errors.UnsupportedTiffError`.
    """
    buf = SparseBuffer(source)
    requests = 0

    async def get(start: int, end: int) -> None:
        nonlocal requests
        if buf.file_size is not None:
            end = min(end, buf.file_size)
            if end <= start:
                return
        requests += 1
        data = await fetch(start, end - start)
        buf.add(start, bytes(data), end - start)

    await get(0, max(prefetch, 16))
    for _ in range(MAX_ROUNDS):
        result = _attempt(buf)
        if isinstance(result, TiffHeader):
            return replace(result, header_requests=requests)
        before = (buf.held, buf.file_size)
        for start, end in _plan(result, buf.contiguous_end, prefetch):
            await get(start, end)
        if (buf.held, buf.file_size) == before:
            start, end = result.missing[0]
            raise CorruptTiffError(source, f"bytes {start}-{end - 1} could not be read")
    raise CorruptTiffError(source, f"header not resolved after {MAX_ROUNDS} fetch rounds")
