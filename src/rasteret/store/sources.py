"""Where each record's blocks live: :class:`TileSource`, and the per-array
:class:`SourceList` that builds them on first use.

An array of the layout has one source per time step. Most records of a large collection
share their structure with another record of the same band (same grid, codec, levels),
so the layout adds them "like" that record (:mod:`rasteret.store.layout`): their
sources differ only in the href, the block tables, the JPEG tables and the object's
identity, all of which sit in whole columns (:class:`~rasteret.index.level_columns.
BandLevelColumns`). :class:`SourceList` keeps those columns and builds a record's
:class:`TileSource` when it is first asked for — so opening an index costs what the
arrays, groups and coordinates cost, not one Python object per record, band and level,
and a read builds the sources of the records it touches. ``present`` tells which time
steps have a source without building any.

A :class:`SourceList` is an immutable sequence: ``len``, ``[t]``, iteration, ``==``
against another sequence. Concurrent first uses build a source once (under a lock).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, overload

import numpy as np

if TYPE_CHECKING:
    from rasteret.index.level_columns import BandLevelColumns, Slot


@dataclass(frozen=True, slots=True, eq=False)
class TileSource:
    """Where the blocks of one record live: one file, its block table, its JPEG tables."""

    href: str
    offsets: np.ndarray  # int64, row-major blocks
    byte_counts: np.ndarray  # int64, 0 = sparse block
    jpeg_tables: bytes | None = None
    size: int | None = None  # object size at index time (checked on read when known)
    etag: str | None = None  # object ETag at index time (checked on read when known)
    last_modified: str | None = None  # local files: mtime at index time (checked on read)
    origin: str = ""  # "record <id>, band <band>": named in decode errors


@dataclass(frozen=True, slots=True, eq=False)
class RowsLike:
    """Table rows of ``band`` added like another row: their level ``slot`` is read from
    ``columns`` (block and JPEG tables, object identity) and ``hrefs`` when built."""

    band: str
    slot: Slot
    jpeg: bool
    hrefs: Sequence[str | None]
    ids: Sequence[str]
    columns: BandLevelColumns

    def source(self, row: int) -> TileSource:
        offsets, counts = self.columns.blocks(self.slot, row)
        tables = self.columns.jpeg_tables(self.slot, row) if self.jpeg else None
        href = self.hrefs[row]
        assert href  # rows without an href are refused before they are added
        return TileSource(
            href,
            offsets,
            counts,
            tables or None,
            self.columns.file_size[row],
            self.columns.etag[row],
            self.columns.last_modified[row],
            f"record {self.ids[row]!r}, band {self.band!r}",
        )


_UNBUILT: Any = object()


class SourceList(Sequence["TileSource | None"]):
    """One :class:`TileSource` (or ``None``) per time step of an array.

    ``rows[t]`` is the table row of time step ``t``; ``built`` holds the sources made
    eagerly (by table row); ``owner[t]`` is the index into ``like`` of the
    :class:`RowsLike` that builds step ``t`` (-1: ``built`` or nothing).
    """

    __slots__ = ("_built", "_cache", "_like", "_lock", "_owner", "_rows", "present")

    def __init__(
        self,
        rows: np.ndarray,
        built: dict[int, TileSource],
        like: Sequence[RowsLike] = (),
        owner: np.ndarray | None = None,
    ) -> None:
        self._rows = rows
        self._built = built
        self._like = tuple(like)
        self._owner = np.full(len(rows), -1, np.int32) if owner is None else owner
        self._cache: list[Any] = [_UNBUILT] * len(rows)
        self._lock = threading.Lock()
        keys = np.fromiter(built, np.int64, len(built))
        explicit = np.isin(rows, keys) if len(keys) else np.zeros(len(rows), bool)
        #: Whether each time step has a source (none is built to answer).
        self.present: np.ndarray = explicit | (self._owner >= 0)

    def __len__(self) -> int:
        return len(self._cache)

    @overload
    def __getitem__(self, t: int) -> TileSource | None: ...

    @overload
    def __getitem__(self, t: slice) -> list[TileSource | None]: ...

    def __getitem__(self, t: int | slice) -> TileSource | list[TileSource | None] | None:
        if isinstance(t, slice):
            return [self[i] for i in range(*t.indices(len(self)))]
        found = self._cache[t]
        if found is not _UNBUILT:
            return found  # type: ignore[no-any-return]
        with self._lock:
            found = self._cache[t]
            if found is _UNBUILT:
                found = self._build(t if t >= 0 else t + len(self))
                self._cache[t] = found
        return found  # type: ignore[no-any-return]

    def _build(self, t: int) -> TileSource | None:
        row = int(self._rows[t])
        owner = int(self._owner[t])
        if owner < 0:
            return self._built.get(row)
        return self._like[owner].source(row)

    def __iter__(self) -> Iterator[TileSource | None]:
        for t in range(len(self)):
            yield self[t]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, str | bytes):
            return NotImplemented
        return len(self) == len(other) and all(a is b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"SourceList({len(self)} steps, {int(self.present.sum())} with data)"


__all__ = ["RowsLike", "SourceList", "TileSource"]
