"""Write collection tables as GeoParquet: one file, or a hive-partitioned directory.

* ``path`` ending in ``.parquet`` → one file.
* any other ``path`` → a directory ``year=YYYY/month=M/part-{i}.parquet`` (ZSTD level 3).
  An existing export at ``path`` is *replaced* (written to a sibling temporary
  directory, then swapped in: :mod:`rasteret.index.swap`), so no stale partition
  survives a re-export. A directory holding anything but a previous export is never
  deleted. Object-storage paths are written locally, then uploaded.

Rows go in time order, in row groups of about :data:`ROW_GROUP_BYTES`, with statistics
only for the columns filters use. Reading (and the layout's metadata keys) is
:mod:`rasteret.index.parquet`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from rasteret.index.ordering import sort_records
from rasteret.index.parquet import (
    HIVE_NULL,
    PARTITION_COLUMNS,
    PARTITIONING_KEY,
    local_path,
    path_stamp,
)
from rasteret.index.swap import clean_leftovers, replace_directory, temporary_sibling

_COMPRESSION = {"compression": "zstd", "compression_level": 3}


ROW_GROUP_SIZE = 50_000


#: Arrow bytes per row group: wide records (13 bands of tile tables, ~40 KB each in
#: memory) get ~2,400 rows per group (~20 MB on disk), so reading a few selected records
#: decompresses one small group, not a 400 MB one; narrow records get ROW_GROUP_SIZE.
ROW_GROUP_BYTES = 96 * 2**20


def row_group_rows(table: pa.Table) -> int:
    """Rows per row group for ``table``: :data:`ROW_GROUP_BYTES` worth, at most
    :data:`ROW_GROUP_SIZE`, at least 256."""
    if table.num_rows == 0:
        return ROW_GROUP_SIZE
    per_row = max(1, table.nbytes // table.num_rows)
    return int(min(ROW_GROUP_SIZE, max(256, ROW_GROUP_BYTES // per_row)))


def write_collection_table(table: pa.Table, path: str | os.PathLike[str], metadata: dict) -> str:
    """Write ``table`` with schema ``metadata`` to ``path``; return the written path's stamp.

    Rows are sorted by month, place and time (:mod:`rasteret.index.ordering`) and
    written in row groups of :func:`row_group_rows` rows (about :data:`ROW_GROUP_BYTES`)
    whatever the chunking of ``table`` (a table assembled from many small appends still
    gives few row groups), one file per ``year=/month=`` partition for a directory;
    statistics are kept only for the columns filters use (:func:`statistics_columns`),
    so footers stay small. The same writer as :func:`write_collection_parts`, given one
    part.
    """
    return write_collection_parts([table], path, metadata)


def write_collection_parts(
    parts: Iterable[pa.Table], path: str | os.PathLike[str], metadata: dict
) -> str:
    """Write a collection given as consecutive parts (each sorted here; parts in export
    order: :meth:`rasteret.index.lazy.LazyRecords.export_parts`) to ``path``, holding at
    most :data:`ROW_GROUP_SIZE` rows or :data:`ROW_GROUP_BYTES` plus one part in memory;
    same layout and atomic replacement as :func:`write_collection_table`. Returns the
    written path's stamp."""

    target = local_path(path)
    if target is None:
        return _export_remote(path, lambda local: write_collection_parts(parts, local, metadata))
    target = target.absolute()
    clean_leftovers(target)
    if not target.name.endswith(".parquet"):
        _write_partitioned_parts(parts, target, metadata)
        return path_stamp(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_sibling(target)
    writer = _RowGroupWriter(temporary)
    try:
        for part in parts:
            if part.num_rows:
                writer.add(sort_records(part).replace_schema_metadata(metadata))
        if not writer.close():
            raise ValueError(f"export to {target}: the collection has no records")
        os.replace(temporary, target)
    finally:
        writer.close()
        temporary.unlink(missing_ok=True)
    return path_stamp(target)


class _RowGroupWriter:
    """One Parquet file written a table at a time, in row groups of about
    :data:`ROW_GROUP_BYTES` (at most :data:`ROW_GROUP_SIZE` rows) whatever the size of
    the tables added; at most one row group is held in memory."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.writer: Any = None
        self.pending: list[pa.Table] = []
        self.rows = 0
        self.written = False

    def add(self, table: pa.Table) -> None:
        import pyarrow.parquet as pq

        if self.writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.writer = pq.ParquetWriter(
                self.path,
                table.schema,
                write_statistics=statistics_columns(table.schema),
                **_COMPRESSION,
            )
        self.pending.append(table)
        self.rows += table.num_rows
        if self.rows >= ROW_GROUP_SIZE or sum(t.nbytes for t in self.pending) >= ROW_GROUP_BYTES:
            self._flush(whole_groups=True)

    def _flush(self, whole_groups: bool = False) -> None:
        """Write the held rows (``whole_groups``: only full row groups, keeping the rest
        for the next ones)."""
        if not self.pending:
            return
        held = pa.concat_tables(self.pending)
        size = row_group_rows(held)
        count = (held.num_rows // size) * size if whole_groups else held.num_rows
        if count:
            self.writer.write_table(held.slice(0, count), row_group_size=size)
            self.written = True
        rest = held.slice(count)
        self.pending, self.rows = ([rest] if rest.num_rows else []), rest.num_rows

    def close(self) -> bool:
        """Write what is held and close; whether anything was written."""
        if self.writer is not None:
            try:
                self._flush()
            finally:
                self.writer.close()
                self.writer = None
        return self.written


def _write_partitioned_parts(parts: Iterable[pa.Table], target: Path, metadata: dict) -> None:
    """:func:`_write_partitioned`, one part at a time: parts arrive in export order
    (month by month), so each ``year=/month=`` partition is one file (a new file only if
    a partition comes back after another), written in row groups of the usual size."""

    def write(temporary: Path) -> None:
        writer: _RowGroupWriter | None = None
        current: tuple[str, ...] | None = None
        files: dict[tuple[str, ...], int] = {}
        written = False
        try:
            for part in parts:
                if not part.num_rows:
                    continue
                part, stored = _with_partitions(sort_records(part), metadata)
                for key, rows in _partition_runs(part):
                    if key != current:
                        if writer is not None:
                            written |= writer.close()
                        number = files.get(key, 0)
                        files[key] = number + 1
                        names = (f"{n}={v}" for n, v in zip(PARTITION_COLUMNS, key, strict=True))
                        folder = temporary.joinpath(*names)
                        writer = _RowGroupWriter(folder / f"part-{number}.parquet")
                        current = key
                    assert writer is not None
                    rows = rows.drop_columns(list(PARTITION_COLUMNS))
                    writer.add(rows.replace_schema_metadata(stored))
            if writer is not None:
                written |= writer.close()
                writer = None
        finally:
            if writer is not None:
                writer.close()
        if not written:
            raise ValueError(f"export to {target}: the collection has no records")

    replace_directory(target, write)


def _with_partitions(table: pa.Table, metadata: dict) -> tuple[pa.Table, dict]:
    """``table`` with its ``year`` / ``month`` partition columns (derived from
    ``datetime`` when absent) and the schema metadata that records them."""
    derived = [name for name in PARTITION_COLUMNS if name not in table.column_names]
    if "year" in derived:
        table = table.append_column("year", pc.year(table["datetime"]).cast(pa.int32()))
    if "month" in derived:
        table = table.append_column("month", pc.month(table["datetime"]).cast(pa.int32()))
    partitioning = {
        "columns": list(PARTITION_COLUMNS),
        "types": {name: str(table.schema.field(name).type) for name in PARTITION_COLUMNS},
        "derived": derived,
        "column_order": [n for n in table.column_names if n not in derived],
    }
    return table, {**metadata, PARTITIONING_KEY: json.dumps(partitioning)}


def _partition_runs(table: pa.Table) -> Iterable[tuple[tuple[str, ...], pa.Table]]:
    """Consecutive rows of ``table`` with the same partition values, as (hive directory
    values, rows)."""
    values = [table[name].to_pylist() for name in PARTITION_COLUMNS]
    keys = [
        tuple(HIVE_NULL if v is None else str(v) for v in row) for row in zip(*values, strict=True)
    ]
    start = 0
    for k in range(1, len(keys) + 1):
        if k == len(keys) or keys[k] != keys[start]:
            yield keys[start], table.slice(start, k - start)
            start = k


def _export_remote(path: str | os.PathLike[str], write_local: Any) -> str:
    """Write an export to a local temporary place with ``write_local(path)``, then put it
    at the URL ``path`` through the fetch layer (:func:`rasteret.index.remote.upload_export`).
    Returns the uploaded export's stamp."""
    import tempfile
    import urllib.parse

    from rasteret.index.remote import upload_export

    url = os.fspath(path).rstrip("/")
    name = Path(urllib.parse.urlsplit(url).path).name or "collection"
    with tempfile.TemporaryDirectory(prefix="rasteret-export-") as scratch:
        local = Path(scratch) / name
        write_local(local)
        upload_export(local, url)
    return path_stamp(url)


#: Top-level columns whose statistics filters use (plus every non-nested numeric,
#: boolean and timestamp column, and the ``bbox`` fields).
_STATISTICS_STRINGS = ("id", "split", "collection", "platform", "constellation", "grid:code")


def statistics_columns(schema: pa.Schema) -> list[str]:
    """Column paths worth min/max statistics: what ``subset`` / ``where`` filter on.
    Long strings (CRS WKT, hrefs, errors) and the band structs' leaves are left out —
    their statistics made footers megabytes long."""
    paths: list[str] = []
    for field in schema:
        t = field.type
        if pa.types.is_struct(t):
            if field.name == "bbox":
                paths += [f"bbox.{child.name}" for child in t]
            continue
        if (
            pa.types.is_integer(t)
            or pa.types.is_floating(t)
            or pa.types.is_boolean(t)
            or pa.types.is_timestamp(t)
            or pa.types.is_date(t)
            or (
                (pa.types.is_string(t) or pa.types.is_large_string(t))
                and field.name in _STATISTICS_STRINGS
            )
        ):
            paths.append(field.name)
    return paths
