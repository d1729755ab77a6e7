"""Reading the TIFF file header, IFDs and tag values out of a sparse byte buffer.

No I/O happens here: :class:`SparseBuffer` holds the byte ranges fetched so far and
raises :class:`NeedBytes` when a read touches bytes it does not hold yet, so the
caller (:mod:`rasteret.tiff.header`) can fetch them and parse again.
"""

from __future__ import annotations

import bisect
import struct
from dataclasses import dataclass

import numpy as np

from rasteret.errors import CorruptTiffError
from rasteret.tiff.tags import (
    FIELD_INFO,
    FLOAT_TYPES,
    INTEGER_TYPES,
    RATIONAL_TYPES,
    FieldType,
    tag_name,
    type_name,
)

#: Largest single tag value the parser accepts (a tile-offset array of 32 M LONG8 values).
MAX_VALUE_BYTES = 256 * 1024 * 1024
#: Largest number of entries in one IFD (classic TIFF cannot have more).
MAX_IFD_ENTRIES = 65535


class NeedBytes(Exception):
    """Internal signal: bytes ``[start, end)`` are needed but not fetched yet."""

    def __init__(self, start: int, end: int) -> None:
        super().__init__(start, end)
        self.start = start
        self.end = end


class SparseBuffer:
    """The byte ranges of one file fetched so far (merged, sorted)."""

    def __init__(self, source: str, file_size: int | None = None) -> None:
        self.source = source
        self.file_size = file_size
        self._starts: list[int] = []
        self._chunks: list[bytes] = []

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview, source: str) -> SparseBuffer:
        """A buffer holding a whole file."""
        buf = cls(source, file_size=len(data))
        if len(data):
            buf._starts.append(0)
            buf._chunks.append(bytes(data))
        return buf

    def add(self, start: int, data: bytes, requested: int) -> None:
        """Record ``data`` fetched at ``start``; a short read reveals the file size."""
        if len(data) < requested:
            self.file_size = start + len(data)
        if not data:
            return
        end = start + len(data)
        starts, chunks = [], []
        merged_start, merged = start, data
        for s, c in zip(self._starts, self._chunks, strict=True):
            e = s + len(c)
            if e < merged_start or s > merged_start + len(merged):
                starts.append(s)
                chunks.append(c)
                continue
            new_start = min(s, merged_start)
            new_end = max(e, merged_start + len(merged), end)
            combined = bytearray(new_end - new_start)
            combined[s - new_start : e - new_start] = c
            combined[merged_start - new_start : merged_start - new_start + len(merged)] = merged
            merged_start, merged = new_start, bytes(combined)
        index = bisect.bisect(starts, merged_start)
        starts.insert(index, merged_start)
        chunks.insert(index, merged)
        self._starts, self._chunks = starts, chunks

    @property
    def held(self) -> int:
        """Number of bytes held."""
        return sum(len(c) for c in self._chunks)

    @property
    def contiguous_end(self) -> int:
        """End of the range held from byte 0 (0 when byte 0 is not held)."""
        if self._starts and self._starts[0] == 0:
            return len(self._chunks[0])
        return 0

    def require(self, start: int, length: int, what: str) -> None:
        """Check that ``[start, start+length)`` can be read (raise ``NeedBytes`` if not held)."""
        self.get(start, length, what)

    def get(self, start: int, length: int, what: str) -> memoryview:
        """Bytes ``[start, start+length)``; ``what`` names them in error messages."""
        if start < 0 or length < 0:
            raise CorruptTiffError(self.source, f"{what}: negative offset or length")
        end = start + length
        if self.file_size is not None and end > self.file_size:
            raise CorruptTiffError(
                self.source,
                f"{what}: bytes {start}-{end - 1} lie beyond the end of the file "
                f"({self.file_size} bytes)",
            )
        index = bisect.bisect_right(self._starts, start) - 1
        if index >= 0:
            chunk_start = self._starts[index]
            chunk = self._chunks[index]
            if end <= chunk_start + len(chunk):
                return memoryview(chunk)[start - chunk_start : end - chunk_start]
        raise NeedBytes(start, end)


@dataclass(frozen=True, slots=True)
class TiffFormat:
    """Byte order and classic/BigTIFF flavour of a file."""

    byte_order: str  # "<" or ">"
    bigtiff: bool

    @property
    def entry_size(self) -> int:
        return 20 if self.bigtiff else 12

    @property
    def count_size(self) -> int:
        """Size of the entry-count field of an IFD, and of an entry's count field."""
        return 8 if self.bigtiff else 2

    @property
    def offset_size(self) -> int:
        return 8 if self.bigtiff else 4

    @property
    def offset_char(self) -> str:
        return "Q" if self.bigtiff else "I"


def read_file_header(buf: SparseBuffer) -> tuple[TiffFormat, int]:
    """Byte order, flavour and first IFD offset from the first 8 (16) bytes."""
    head = bytes(buf.get(0, 8, "TIFF header")) if _held(buf, 0, 8) else None
    if head is None:
        raise NeedBytes(0, 16)
    if head[:2] == b"II":
        order = "<"
    elif head[:2] == b"MM":
        order = ">"
    else:
        raise CorruptTiffError(buf.source, "not a TIFF file (no II/MM byte-order mark)")
    (magic,) = struct.unpack(order + "H", head[2:4])
    if magic == 42:
        (first,) = struct.unpack(order + "I", head[4:8])
        return TiffFormat(order, False), first
    if magic == 43:
        big = bytes(buf.get(0, 16, "BigTIFF header"))
        offset_size, zero, first = struct.unpack(order + "HHQ", big[4:16])
        if offset_size != 8 or zero != 0:
            raise CorruptTiffError(buf.source, f"BigTIFF header with offset size {offset_size}")
        return TiffFormat(order, True), first
    raise CorruptTiffError(buf.source, f"not a TIFF file (magic number {magic})")


def _held(buf: SparseBuffer, start: int, length: int) -> bool:
    try:
        buf.get(start, length, "TIFF header")
    except NeedBytes:
        return False
    return True


@dataclass(frozen=True, slots=True)
class IfdEntry:
    """One directory entry; its value occupies ``[value_pos, value_pos + nbytes)``."""

    tag: int
    field_type: int
    count: int
    value_pos: int

    @property
    def nbytes(self) -> int:
        return self.count * FIELD_INFO[self.field_type].size


@dataclass(frozen=True, slots=True)
class Ifd:
    """One image file directory: its entries (by tag) and the next IFD's offset."""

    offset: int
    entries: dict[int, IfdEntry]
    next_offset: int

    def __contains__(self, tag: int) -> bool:
        return tag in self.entries


def ifd_fetch_hint(fmt: TiffFormat) -> int:
    """How many bytes to fetch at an unknown IFD's offset (entries of a typical IFD)."""
    return 64 * fmt.entry_size + 16


def read_ifd(buf: SparseBuffer, fmt: TiffFormat, offset: int) -> Ifd:
    """Parse the IFD at ``offset`` (entries only; values are read on demand)."""
    if offset < (16 if fmt.bigtiff else 8):
        raise CorruptTiffError(buf.source, f"IFD offset {offset} points into the file header")
    order = fmt.byte_order
    count_char = "Q" if fmt.bigtiff else "H"
    try:
        raw_count = buf.get(offset, fmt.count_size, f"IFD at {offset}")
    except NeedBytes as need:
        raise NeedBytes(offset, offset + ifd_fetch_hint(fmt)) from need
    (n,) = struct.unpack(order + count_char, raw_count)
    if n == 0 or n > MAX_IFD_ENTRIES:
        raise CorruptTiffError(buf.source, f"IFD at {offset} declares {n} entries")
    table_pos = offset + fmt.count_size
    table_len = n * fmt.entry_size + fmt.offset_size
    table = bytes(buf.get(table_pos, table_len, f"IFD at {offset}"))
    entry_fmt = order + ("HHQ" if fmt.bigtiff else "HHI")
    value_field = 12 if fmt.bigtiff else 8  # position of the value/offset field in an entry
    entries: dict[int, IfdEntry] = {}
    for i in range(n):
        pos = i * fmt.entry_size
        tag, field_type, count = struct.unpack_from(entry_fmt, table, pos)
        info = FIELD_INFO.get(field_type)
        if info is None or tag in entries:
            continue  # unknown field type (libtiff skips it too) or duplicate tag: first wins
        if count * info.size <= fmt.offset_size:
            value_pos = table_pos + pos + value_field
        else:
            (value_pos,) = struct.unpack_from(order + fmt.offset_char, table, pos + value_field)
        entries[tag] = IfdEntry(tag, field_type, count, value_pos)
    (next_offset,) = struct.unpack_from(order + fmt.offset_char, table, n * fmt.entry_size)
    return Ifd(offset, entries, next_offset)


class ValueReader:
    """Decodes tag values of IFDs of one file from a :class:`SparseBuffer`."""

    def __init__(self, buf: SparseBuffer, fmt: TiffFormat) -> None:
        self.buf = buf
        self.fmt = fmt
        self.source = buf.source

    def require(self, entry: IfdEntry) -> None:
        """Raise ``NeedBytes`` if the value of ``entry`` is not held yet."""
        self._raw(entry)

    def _raw(self, entry: IfdEntry) -> memoryview:
        nbytes = entry.nbytes
        name = tag_name(entry.tag)
        if nbytes > MAX_VALUE_BYTES:
            raise CorruptTiffError(
                self.source,
                f"{name} declares {entry.count} values ({nbytes} bytes), beyond the "
                f"{MAX_VALUE_BYTES}-byte limit",
            )
        return self.buf.get(entry.value_pos, nbytes, name)

    def array(self, entry: IfdEntry) -> np.ndarray:
        """Numeric values as a native-order array (rationals as float64)."""
        field_type = entry.field_type
        if field_type not in INTEGER_TYPES | RATIONAL_TYPES | FLOAT_TYPES:
            raise CorruptTiffError(
                self.source,
                f"{tag_name(entry.tag)} has type {type_name(field_type)}, expected a number",
            )
        raw = self._raw(entry)
        dtype = np.dtype(self.fmt.byte_order + FIELD_INFO[field_type].dtype)
        values = np.frombuffer(raw, dtype=dtype)
        if field_type in RATIONAL_TYPES:
            pairs = values.reshape(-1, 2).astype(np.float64)
            with np.errstate(divide="ignore", invalid="ignore"):
                return pairs[:, 0] / pairs[:, 1]
        return values.astype(dtype.newbyteorder("="), copy=False)

    def ints(self, entry: IfdEntry) -> np.ndarray:
        """Integer values (any integer field type) as int64 or uint64."""
        if entry.field_type not in INTEGER_TYPES:
            raise CorruptTiffError(
                self.source,
                f"{tag_name(entry.tag)} has type {type_name(entry.field_type)}, "
                "expected an integer type",
            )
        values = self.array(entry)
        if values.dtype.kind == "i":
            if values.size and values.min() < 0:
                raise CorruptTiffError(self.source, f"{tag_name(entry.tag)} has negative values")
            return values.astype(np.uint64)
        return values.astype(np.uint64, copy=False)

    def int_value(self, entry: IfdEntry) -> int:
        """The first value of an integer tag."""
        if entry.count < 1:
            raise CorruptTiffError(self.source, f"{tag_name(entry.tag)} has no value")
        return int(self.ints(entry)[0])

    def floats(self, entry: IfdEntry) -> np.ndarray:
        """Numeric values as float64."""
        return self.array(entry).astype(np.float64)

    def raw_bytes(self, entry: IfdEntry) -> bytes:
        """The value's bytes as stored (for UNDEFINED/BYTE blobs such as JPEGTables)."""
        return bytes(self._raw(entry))

    def text(self, entry: IfdEntry) -> str:
        """An ASCII (or BYTE/UNDEFINED) value as text, up to the first NUL."""
        if entry.field_type not in (FieldType.ASCII, FieldType.BYTE, FieldType.UNDEFINED):
            raise CorruptTiffError(
                self.source,
                f"{tag_name(entry.tag)} has type {type_name(entry.field_type)}, expected ASCII",
            )
        data = bytes(self._raw(entry))
        return data.split(b"\0", 1)[0].decode("utf-8", errors="replace")
