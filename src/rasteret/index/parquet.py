"""Read collection tables stored as GeoParquet (a file or a hive-partitioned directory).

Export layout (compatible with the original system; written by
:mod:`rasteret.index.parquet_write`):

* ``path`` ending in ``.parquet`` → one file.
* any other ``path`` → a directory ``year=YYYY/month=M/part-{i}.parquet`` (ZSTD level 3).

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs

from rasteret.index.ordering import time_order
from rasteret.index.swap import open_across_swaps

PARTITION_COLUMNS: tuple[str, ...] = ("year", "month")
#: Footers of a partitioned collection read at once by :func:`open_collection`.
FOOTER_READS = 16
PARTITIONING_KEY = "rasteret_partitioning"
#: The partition value of a null key in a hive directory name.
HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"


def local_path(path: str | os.PathLike[str]) -> Path | None:
    """``path`` as a local :class:`Path` (``file://`` stripped), or ``None`` for other URIs."""
    text = os.fspath(path)
    if text.startswith("file://"):
        return Path(text[len("file://") :])
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]+://", text):
        return None
    return Path(text).expanduser()


# ---------------------------------------------------------------- writing


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
            if value == HIVE_NULL
            else pc.field(key) == pa.scalar(value).cast(field.type)
        )
        expression = term if expression is None else expression & term
    return expression


def _partition_type(key: str, types: dict[str, str], root: str, files: list[str]) -> pa.DataType:
    if key in types:
        return pa.type_for_alias(types[key])
    values = {dict(_partition_keys(root, f)).get(key, "") for f in files} - {HIVE_NULL}
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
