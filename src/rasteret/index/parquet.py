"""Write and read collection tables as GeoParquet (a file or a hive-partitioned directory).

Export layout (compatible with the original system):

* ``path`` ending in ``.parquet`` → one file.
* any other ``path`` → a directory ``year=YYYY/month=M/part-{i}.parquet`` (ZSTD level 3).
  An existing export at ``path`` is *replaced* (written to a sibling temporary
  directory, then swapped in: :mod:`rasteret.index.swap`), so no stale partition
  survives a re-export. A directory holding anything but a previous export is never
  deleted.

Schema metadata keys: ``name, data_source, description, date_range, created,
rasteret_collection_version`` and the GeoParquet ``geo`` JSON, plus
``rasteret_partitioning`` (JSON: partition columns, their Arrow types, which were
added by the export, and the column order) so :func:`read_collection_table`
returns exactly the table that was exported.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs

from rasteret.index.ordering import sort_records, time_order
from rasteret.index.swap import (
    clean_leftovers,
    open_across_swaps,
    replace_directory,
    temporary_sibling,
)

PARTITION_COLUMNS: tuple[str, ...] = ("year", "month")
#: Footers of a partitioned collection read at once by :func:`open_collection`.
FOOTER_READS = 16
PARTITIONING_KEY = "rasteret_partitioning"
_HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"
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


def local_path(path: str | os.PathLike[str]) -> Path | None:
    """``path`` as a local :class:`Path` (``file://`` stripped), or ``None`` for other URIs."""
    text = os.fspath(path)
    if text.startswith("file://"):
        return Path(text[len("file://") :])
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]+://", text):
        return None
    return Path(text).expanduser()


# ---------------------------------------------------------------- writing


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
        tuple(_HIVE_NULL if v is None else str(v) for v in row) for row in zip(*values, strict=True)
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


# ---------------------------------------------------------------- reading


@dataclass(frozen=True)
class StoredCollection:
    """A collection file or directory opened without reading its rows.

    ``dataset`` scans the Parquet files (hive partitions as columns); ``derived`` are the
    partition columns the export added (dropped from what is read), ``order`` the
    exported column order, ``metadata`` the stored schema metadata and ``stamp`` a hash
    of the files' sizes and modification times.
    """

    dataset: Any  # pyarrow.dataset.Dataset
    metadata: dict[bytes, bytes]
    derived: tuple[str, ...]
    order: tuple[str, ...] | None
    stamp: str
    partitions: tuple[str, ...] = ()

    @property
    def schema(self) -> pa.Schema:
        """The collection's schema (derived partition columns removed, exported order)."""
        schema = self.dataset.schema
        names = [n for n in schema.names if n not in self.derived]
        if self.order and set(self.order) == set(names):
            names = list(self.order)
        return pa.schema([schema.field(n) for n in names], metadata=self.metadata)

    def read(self, filter: Any = None, columns: list[str] | None = None) -> pa.Table:
        """The rows matching ``filter`` (a ``pyarrow.compute.Expression``), ``columns``
        only (default: all), as the exported table: in time order (``datetime``, then
        ``id``; :func:`rasteret.index.ordering.time_order`), whatever the order on disk."""
        names = list(columns) if columns is not None else self.schema.names
        keys = [k for k in ("datetime", "id") if k in self.schema.names and k not in names]
        table = time_order(self.dataset.to_table(columns=names + keys, filter=filter))
        if keys:
            table = table.drop_columns(keys)
        return table.replace_schema_metadata(self.metadata)

    def head(self, n: int, filter: Any, columns: list[str]) -> pa.Table:
        """The first ``n`` rows of :meth:`read` (time order) of ``columns``; only the
        order keys of the other rows are read."""
        if "id" not in self.schema.names:
            table = self.dataset.head(n, columns=columns, filter=filter)
            return table.replace_schema_metadata(self.metadata)
        first = self.read(filter, ["id"])["id"].slice(0, n)
        chosen = pc.field("id").isin(first.combine_chunks())
        rows = self.read(chosen if filter is None else filter & chosen, columns)
        return rows.slice(0, n)

    def null_count(self, column: str) -> int | None:
        """Nulls of a top-level column from the files' row-group statistics (no data
        read); ``None`` when a file has no statistics for it."""
        total = 0
        for fragment in self.fragments:
            metadata = fragment.metadata
            paths = [metadata.schema.column(i).path for i in range(metadata.num_columns)]
            if column not in paths:
                return None
            index = paths.index(column)
            for group in range(metadata.num_row_groups):
                stats = metadata.row_group(group).column(index).statistics
                if stats is None or not stats.has_null_count:
                    return None
                total += stats.null_count
        return total

    def count(self, filter: Any = None) -> int:
        """Rows matching ``filter`` (the footers read at open when there is no filter)."""
        if filter is None:
            return sum(int(f.metadata.num_rows) for f in self.fragments)
        return int(self.dataset.count_rows(filter=filter))

    @property
    def fragments(self) -> list[Any]:
        """The files (``ParquetFileFragment``), their footers read once and cached."""
        return list(self.dataset.get_fragments())


def open_collection(path: str | os.PathLike[str]) -> StoredCollection:
    """Open a collection file or directory without reading its rows.

    A local collection that an export replaces meanwhile opens as it was before the swap
    or as it is after it — never half of each, never missing in between
    (:func:`rasteret.index.swap.open_across_swaps`).

    Raises ``FileNotFoundError`` naming ``path`` when nothing is there.
    """
    local = local_path(path)
    if local is None:
        return _open_once(path)
    return open_across_swaps(
        local,
        lambda: _open_once(path),
        lambda stored: files_unchanged(path, stored.stamp),
        retry_on=(OSError, pa.ArrowException),
    )


def files_unchanged(path: str | os.PathLike[str], stamp: str) -> bool:
    """Whether the files at ``path`` still have ``stamp`` (``False`` when gone)."""
    try:
        return path_stamp(path) == stamp
    except (OSError, pa.ArrowException):
        return False


def _open_once(path: str | os.PathLike[str]) -> StoredCollection:
    import pyarrow.dataset as ds

    filesystem, root = _filesystem(path)
    info = filesystem.get_file_info(root)
    if info.type == pafs.FileType.NotFound:
        raise FileNotFoundError(f"collection not found: {os.fspath(path)}")
    if info.type == pafs.FileType.File:
        fragments = _fragments(filesystem, [root], sizes=[info.size])
        schema = fragments[0].physical_schema
        dataset = ds.FileSystemDataset(fragments, schema, ds.ParquetFileFormat(), filesystem)
        metadata = schema.metadata or {}
        stamp = _stamp([_identity(filesystem, root, info)])
        return StoredCollection(dataset, dict(metadata), (), None, stamp)
    files = _data_files(filesystem, root)
    if not files:
        raise FileNotFoundError(f"no Parquet files in collection directory {os.fspath(path)}")
    stamp = _stamp([_identity(filesystem, root, f) for f in files])
    sizes = {f.path: f.size for f in files}
    return _open_directory(filesystem, root, [f.path for f in files], stamp, sizes)


def read_collection_table(path: str | os.PathLike[str]) -> tuple[pa.Table, str]:
    """Read a collection file or directory; return ``(table, stamp)``.

    Raises ``FileNotFoundError`` naming ``path`` when nothing is there.
    """
    stored = open_collection(path)
    return stored.read(), stored.stamp


def _filesystem(path: str | os.PathLike[str]) -> tuple[pafs.FileSystem, str]:
    """Local paths through pyarrow's own filesystem; URLs through rasteret's fetch layer
    (:mod:`rasteret.index.remote`: the stores and credentials tile reads use)."""
    local = local_path(path)
    if local is not None:
        return pafs.LocalFileSystem(), str(local.absolute())
    from rasteret.index.remote import arrow_filesystem

    return arrow_filesystem(), os.fspath(path).rstrip("/")


def _data_files(filesystem: pafs.FileSystem, root: str) -> list[pafs.FileInfo]:
    selector = pafs.FileSelector(root, recursive=True)
    files = []
    for info in filesystem.get_file_info(selector):
        relative = info.path[len(root) :].lstrip("/")
        if info.type != pafs.FileType.File or not relative.endswith(".parquet"):
            continue
        if any(part.startswith(("_", ".")) for part in relative.split("/")):
            continue
        files.append(info)
    files.sort(key=lambda f: _sort_key(f.path[len(root) :]))
    return files


def _sort_key(relative: str) -> tuple:
    """Numeric-aware order: ``month=2`` before ``month=10``, ``part-2`` before ``part-10``."""
    return tuple(
        (0, int(token), "") if token.isdigit() else (1, 0, token)
        for token in re.split(r"(\d+)", relative)
    )


def _partition_keys(root: str, file: str) -> list[tuple[str, str]]:
    parts = file[len(root) :].strip("/").split("/")[:-1]
    return [tuple(part.split("=", 1)) for part in parts if "=" in part]  # type: ignore[misc]


def _open_directory(
    filesystem: pafs.FileSystem,
    root: str,
    files: list[str],
    stamp: str,
    sizes: dict[str, int | None] | None = None,
) -> StoredCollection:
    import pyarrow.dataset as ds

    keys = _partition_keys(root, files[0])

    def partitions(types: dict[str, str]) -> tuple[pa.Schema, list[Any]]:
        schema = pa.schema([(key, _partition_type(key, types, root, files)) for key, _ in keys])
        return schema, [_partition_expression(root, path, schema) for path in files]

    partition_schema, expressions = partitions({})  # types from the paths, then checked
    known = None if sizes is None else [sizes.get(f) for f in files]
    fragments = _fragments(filesystem, files, expressions, known)
    metadata = fragments[0].physical_schema.metadata or {}
    recorded = json.loads(metadata.get(PARTITIONING_KEY.encode(), b"{}"))
    recorded_schema, recorded_expressions = partitions(recorded.get("types", {}))
    if not recorded_schema.equals(partition_schema):  # e.g. string values that look numeric
        partition_schema = recorded_schema
        fragments = _fragments(filesystem, files, recorded_expressions, known)
    physical = [f.physical_schema for f in fragments]
    if all(s.equals(physical[0], check_metadata=False) for s in physical):
        schema = pa.unify_schemas([physical[0], partition_schema])
    else:
        schema = pa.unify_schemas([*physical, partition_schema])
    schema = schema.with_metadata(metadata)
    dataset = ds.FileSystemDataset(fragments, schema, ds.ParquetFileFormat(), filesystem)
    names = schema.names
    derived = tuple(name for name in recorded.get("derived", []) if name in names)
    order = recorded.get("column_order")
    return StoredCollection(
        dataset,
        dict(metadata),
        derived,
        tuple(order) if order else None,
        stamp,
        tuple(partition_schema.names),
    )


def _fragments(
    filesystem: pafs.FileSystem,
    files: list[str],
    expressions: list[Any] | None = None,
    sizes: list[int | None] | None = None,
) -> list[Any]:
    """One ``ParquetFileFragment`` per file (with its hive partition expression), its
    footer read once and kept by the fragment. Footers are read :data:`FOOTER_READS` at
    a time (a partitioned index on object storage has one per month), and files whose
    ``sizes`` the listing gave are not asked for their size again."""
    import pyarrow.dataset as ds

    fmt = ds.ParquetFileFormat()
    fragments = []
    for k, path in enumerate(files):
        expression = None if expressions is None else expressions[k]
        size = None if sizes is None or sizes[k] is None or sizes[k] < 0 else sizes[k]
        fragment = fmt.make_fragment(
            path, filesystem, partition_expression=expression, file_size=size
        )
        fragments.append(fragment)
    if len(fragments) == 1:
        fragments[0].ensure_complete_metadata()
    elif fragments:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(min(FOOTER_READS, len(fragments))) as pool:
            list(pool.map(lambda fragment: fragment.ensure_complete_metadata(), fragments))
    return fragments


def _partition_expression(root: str, path: str, schema: pa.Schema) -> Any:
    """The hive ``key=value`` directories of ``path`` as an Arrow expression."""
    import pyarrow.compute as pc

    expression = None
    for key, value in _partition_keys(root, path):
        if key not in schema.names:
            continue
        field = schema.field(key)
        term = (
            pc.field(key).is_null()
            if value == _HIVE_NULL
            else pc.field(key) == pa.scalar(value).cast(field.type)
        )
        expression = term if expression is None else expression & term
    return expression


def _partition_type(key: str, types: dict[str, str], root: str, files: list[str]) -> pa.DataType:
    if key in types:
        return pa.type_for_alias(types[key])
    values = {dict(_partition_keys(root, f)).get(key, "") for f in files} - {_HIVE_NULL}
    if values and all(re.fullmatch(r"-?\d+", v) for v in values):
        return pa.int32()
    return pa.string()


def _identity(filesystem: pafs.FileSystem, root: str, info: pafs.FileInfo) -> tuple[Any, ...]:
    """What identifies one file of a collection: its path relative to the root, size,
    mtime and, for objects read through the fetch layer, its ETag — their modification
    times have whole seconds, so a rebuild within one second of the same size is told
    apart by its ETag."""
    entry = (info.path[len(root) :], info.size, info.mtime_ns)
    etags = getattr(getattr(filesystem, "handler", None), "etags", None)
    etag = etags.get(info.path) if etags else None
    return entry if etag is None else (*entry, etag)


def _stamp(entries: list[tuple[Any, ...]]) -> str:
    """Hash of ``(path relative to the collection root, size, mtime_ns[, etag])`` entries."""
    digest = hashlib.blake2b(digest_size=8)
    for entry in sorted(entries, key=lambda e: tuple(str(v) for v in e)):
        digest.update(("\0".join(str(v) for v in entry) + "\n").encode())
    return digest.hexdigest()


def path_stamp(path: str | os.PathLike[str]) -> str:
    """A short hash of the sizes, modification times (and remote ETags) of a
    collection's files."""
    filesystem, root = _filesystem(path)
    info = filesystem.get_file_info(root)
    if info.type == pafs.FileType.File:
        return _stamp([_identity(filesystem, root, info)])
    files = _data_files(filesystem, root)
    return _stamp([_identity(filesystem, root, f) for f in files])


def decode_metadata(metadata: dict[bytes, bytes] | None) -> dict[str, Any]:
    """Schema metadata as ``str -> str`` (keys/values decoded as UTF-8, binary keys skipped)."""
    decoded = {}
    for key, value in (metadata or {}).items():
        try:
            decoded[key.decode()] = value.decode()
        except UnicodeDecodeError:
            continue
    return decoded
