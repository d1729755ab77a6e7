"""A minimal little-endian TIFF / BigTIFF serialiser with the COG layout.

Writes every IFD (and every out-of-line tag value) before the first tile byte, then the
tile data of the smallest overview first and of the full-resolution image last, as GDAL's
COG driver does. The caller provides the tags of each image and its already encoded
blocks; offsets and byte counts are filled in here.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

BYTE, ASCII, SHORT, LONG, DOUBLE, LONG8 = 1, 2, 3, 4, 12, 16
_FORMATS = {BYTE: "B", ASCII: "B", SHORT: "H", LONG: "I", DOUBLE: "d", LONG8: "Q"}
TILE_OFFSETS, TILE_BYTE_COUNTS = 324, 325

_LEADER_LINES = "BLOCK_LEADER=SIZE_AS_UINT4\nBLOCK_TRAILER=LAST_4_BYTES_REPEATED\n"


@dataclass
class ImageToWrite:
    """One IFD to write: its tags (without block offsets / counts) and its blocks."""

    tags: dict[int, tuple[int, Sequence[float | int] | bytes | str]]
    blocks: list[bytes | None]  # None = sparse block (offset 0, byte count 0)


@dataclass(frozen=True)
class WrittenImage:
    """Where the blocks of one written IFD ended up."""

    ifd_offset: int
    offsets: tuple[int, ...]
    byte_counts: tuple[int, ...]


@dataclass(frozen=True)
class WrittenTiff:
    """Layout of a written file: one entry per IFD, in IFD order."""

    path: Path
    images: tuple[WrittenImage, ...]
    header_size: int  # bytes before the first block (all IFDs fit in this prefix)
    file_size: int
    bigtiff: bool = False


def _pack_value(dtype: int, value: Sequence[float | int] | bytes | str) -> tuple[int, bytes]:
    if dtype == ASCII:
        raw = value.encode("ascii") if isinstance(value, str) else bytes(value)  # type: ignore[arg-type]
        if not raw.endswith(b"\0"):
            raw += b"\0"
        return len(raw), raw
    if isinstance(value, bytes | bytearray):
        return len(value), bytes(value)
    values = list(value)  # type: ignore[arg-type]
    return len(values), struct.pack(f"<{len(values)}{_FORMATS[dtype]}", *values)


class _Layout:
    def __init__(self, bigtiff: bool) -> None:
        self.bigtiff = bigtiff
        self.entry_size = 20 if bigtiff else 12
        self.inline = 8 if bigtiff else 4
        self.count_fmt = "Q" if bigtiff else "H"
        self.offset_fmt = "Q" if bigtiff else "I"
        self.header_size = 16 if bigtiff else 8

    def ifd_size(self, packed: list[tuple[int, int, int, bytes]]) -> int:
        fixed = (8 + 8 if self.bigtiff else 2 + 4) + len(packed) * self.entry_size
        extra = sum(_even(len(raw)) for _, _, _, raw in packed if len(raw) > self.inline)
        return fixed + extra

    def serialise_ifd(
        self, start: int, packed: list[tuple[int, int, int, bytes]], next_ifd: int
    ) -> bytes:
        n = len(packed)
        entries = bytearray(struct.pack(f"<{self.count_fmt}", n))
        values = bytearray()
        values_start = start + len(entries) + n * self.entry_size + (8 if self.bigtiff else 4)
        for code, dtype, count, raw in packed:
            head = struct.pack(f"<HH{'Q' if self.bigtiff else 'I'}", code, dtype, count)
            if len(raw) <= self.inline:
                entries += head + raw.ljust(self.inline, b"\0")
            else:
                pointer = values_start + len(values)
                entries += head + struct.pack(f"<{self.offset_fmt}", pointer)
                values += raw + b"\0" * (len(raw) % 2)
        entries += struct.pack(f"<{self.offset_fmt}", next_ifd)
        return bytes(entries + values)


def _even(n: int) -> int:
    return n + (n % 2)


def _ghost_area(block_leaders: bool) -> bytes:
    content = "LAYOUT=IFDS_BEFORE_DATA\nBLOCK_ORDER=ROW_MAJOR\n"
    content += _LEADER_LINES if block_leaders else ""
    content += "KNOWN_INCOMPATIBLE_EDITION=NO\n "  # GDAL pads with one space
    return f"GDAL_STRUCTURAL_METADATA_SIZE={len(content):06d} bytes\n".encode() + content.encode()


def write_tiff(
    path: str | Path,
    images: Sequence[ImageToWrite],
    *,
    bigtiff: bool = False,
    ghost_area: bool = True,
    block_leaders: bool = True,
    data_order: Sequence[int] | None = None,
) -> WrittenTiff:
    """Write ``images`` (IFD order) with all IFDs first, then the blocks.

    ``data_order`` lists image indices in the order their blocks are stored (default:
    last image first, so overviews precede the full-resolution data). With
    ``block_leaders`` (and the ghost area) every block is preceded by its size as a
    uint32 and followed by a copy of its last 4 bytes, as GDAL's COG driver writes.
    """
    block_leaders = block_leaders and ghost_area
    layout = _Layout(bigtiff)
    offset_type = LONG8 if bigtiff else LONG
    order = list(data_order) if data_order is not None else list(range(len(images)))[::-1]

    def packed_tags(image: ImageToWrite, offsets: Sequence[int], counts: Sequence[int]):
        tags = dict(image.tags)
        tags[TILE_OFFSETS] = (offset_type, list(offsets))
        tags[TILE_BYTE_COUNTS] = (offset_type, list(counts))
        packed = []
        for code in sorted(tags):
            dtype, value = tags[code]
            count, raw = _pack_value(dtype, value)
            packed.append((code, dtype, count, raw))
        return packed

    prefix = layout.header_size
    ghost = _ghost_area(block_leaders) if ghost_area else b""
    leader = 4 if block_leaders else 0
    position = prefix + len(ghost)
    ifd_starts = []
    for image in images:
        zeros = [0] * len(image.blocks)
        ifd_starts.append(position)
        position += _even(layout.ifd_size(packed_tags(image, zeros, zeros)))
    data_start = -(-position // 16) * 16

    offsets: list[list[int]] = [[0] * len(image.blocks) for image in images]
    counts: list[list[int]] = [[0] * len(image.blocks) for image in images]
    cursor = data_start
    for index in order:
        for block_index, block in enumerate(images[index].blocks):
            if block is None:
                continue
            offsets[index][block_index] = cursor + leader
            counts[index][block_index] = len(block)
            cursor += len(block) + 2 * leader
    if not bigtiff and cursor >= 2**32:
        raise ValueError(f"{path}: {cursor} bytes do not fit a classic TIFF; pass bigtiff=True")

    out = bytearray()
    if bigtiff:
        out += b"II" + struct.pack("<HHHQ", 43, 8, 0, ifd_starts[0])
    else:
        out += b"II" + struct.pack("<HI", 42, ifd_starts[0])
    out += ghost
    for i, image in enumerate(images):
        next_ifd = ifd_starts[i + 1] if i + 1 < len(images) else 0
        raw = layout.serialise_ifd(
            ifd_starts[i], packed_tags(image, offsets[i], counts[i]), next_ifd
        )
        assert len(out) == ifd_starts[i], "IFD placement drifted"
        out += raw + b"\0" * (len(raw) % 2)
    out += b"\0" * (data_start - len(out))

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("wb") as handle:
        handle.write(out)
        for index in order:
            for block in images[index].blocks:
                if block is None:
                    continue
                if leader:
                    handle.write(struct.pack("<I", len(block)))
                handle.write(block)
                if leader:
                    handle.write(block[-4:].rjust(4, b"\0"))
    written = tuple(
        WrittenImage(ifd_starts[i], tuple(offsets[i]), tuple(counts[i])) for i in range(len(images))
    )
    return WrittenTiff(target, written, data_start, cursor, bigtiff)
