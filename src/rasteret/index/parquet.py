"""Write and read collection tables as GeoParquet (a file or a hive-partitioned directory).

Export layout (compatible with the original system):

* ``path`` ending in ``.parquet`` → one file.
* any other ``path`` → a directory ``year=YYYY/month=M/part-{i}.parquet`` (ZSTD level 3).
  An existing export at ``path`` is *replaced* (written to a sibling temporary
  directory, then swapped in), so no stale partition survives a re-export. A
  directory holding anything but a previous export is never deleted.

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
import shutil
import uuid
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs

PARTITION_COLUMNS: tuple[str, ...] = ("year", "month")
PARTITIONING_KEY = "rasteret_partitioning"
_HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"
_SIDECAR_FILES = {"_metadata", "_common_metadata", "_SUCCESS"}
_COMPRESSION = {"compression": "zstd", "compression_level": 3}
ROW_GROUP_SIZE = 50_000


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
    """Write ``table`` with schema ``metadata`` to ``path``; return the written path's stamp."""
    import pyarrow.parquet as pq

    target = local_path(path)
    if target is None:
        raise NotImplementedError(f"export to {os.fspath(path)!r}: only local paths are supported")
    target = target.absolute()
    if target.name.endswith(".parquet"):
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.tmp-{uuid.uuid4().hex[:8]}")
        try:
            pq.write_table(
                table.replace_schema_metadata(metadata),
                temporary,
                row_group_size=ROW_GROUP_SIZE,
                write_statistics=True,
                **_COMPRESSION,
            )
            os.replace(temporary, target)
        finally:
            temporary.unlink(missing_ok=True)
    else:
        _write_partitioned(table, target, metadata)
    return path_stamp(target)


def _write_partitioned(table: pa.Table, target: Path, metadata: dict) -> None:
    import pyarrow.dataset as ds  # imports pandas: keep it off the import path

    if target.exists() and not _is_replaceable(target):
        raise FileExistsError(
            f"{target} exists and holds files that are not a rasteret collection export; "
            "refusing to replace it (choose an empty or new directory)"
        )
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
    metadata = {**metadata, PARTITIONING_KEY: json.dumps(partitioning)}
    table = table.replace_schema_metadata(metadata)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.tmp-{uuid.uuid4().hex[:8]}")
    previous = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
    try:
        ds.write_dataset(
            table,
            temporary,
            format="parquet",
            partitioning=list(PARTITION_COLUMNS),
            partitioning_flavor="hive",
            basename_template="part-{i}.parquet",
            file_options=ds.ParquetFileFormat().make_write_options(**_COMPRESSION),
            max_rows_per_group=ROW_GROUP_SIZE,
            existing_data_behavior="error",
            preserve_order=True,
        )
        if target.exists():
            os.rename(target, previous)
        os.rename(temporary, target)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
        shutil.rmtree(previous, ignore_errors=True)


def _is_replaceable(directory: Path) -> bool:
    """Whether ``directory`` is empty or holds only a previous export (hive dirs + parquet)."""
    if not directory.is_dir():
        return False
    for root, _dirs, files in os.walk(directory):
        relative = Path(root).relative_to(directory)
        if any("=" not in part for part in relative.parts):
            return False
        for name in files:
            if not (name.endswith(".parquet") or name in _SIDECAR_FILES):
                return False
    return True


# ---------------------------------------------------------------- reading


def read_collection_table(path: str | os.PathLike[str]) -> tuple[pa.Table, str]:
    """Read a collection file or directory; return ``(table, stamp)``.

    Raises ``FileNotFoundError`` naming ``path`` when nothing is there.
    """
    import pyarrow.parquet as pq

    filesystem, root = _filesystem(path)
    info = filesystem.get_file_info(root)
    if info.type == pafs.FileType.NotFound:
        raise FileNotFoundError(f"collection not found: {os.fspath(path)}")
    if info.type == pafs.FileType.File:
        table = pq.read_table(root, filesystem=filesystem, partitioning=None)
        return table, _stamp([("", info.size, info.mtime_ns)])
    files = _data_files(filesystem, root)
    if not files:
        raise FileNotFoundError(f"no Parquet files in collection directory {os.fspath(path)}")
    stamp = _stamp([(f.path[len(root) :], f.size, f.mtime_ns) for f in files])
    return _read_directory(filesystem, root, [f.path for f in files]), stamp


def _filesystem(path: str | os.PathLike[str]) -> tuple[pafs.FileSystem, str]:
    local = local_path(path)
    if local is not None:
        return pafs.LocalFileSystem(), str(local.absolute())
    return pafs.FileSystem.from_uri(os.fspath(path))


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


def _read_directory(filesystem: pafs.FileSystem, root: str, files: list[str]) -> pa.Table:
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    metadata = pq.read_schema(files[0], filesystem=filesystem).metadata or {}
    recorded = json.loads(metadata.get(PARTITIONING_KEY.encode(), b"{}"))
    keys = _partition_keys(root, files[0])
    types = recorded.get("types", {})
    partition_schema = pa.schema(
        [(key, _partition_type(key, types, root, files)) for key, _ in keys]
    )
    dataset = ds.dataset(
        files,
        filesystem=filesystem,
        format="parquet",
        partitioning=ds.partitioning(partition_schema, flavor="hive")
        if len(partition_schema)
        else None,
        partition_base_dir=root,
    )
    fragments = list(dataset.get_fragments())
    if len(fragments) > 1:
        schemas = [f.physical_schema for f in fragments]
        unified = pa.unify_schemas([*schemas, partition_schema]).with_metadata(metadata)
        dataset = ds.dataset(
            files,
            schema=unified,
            filesystem=filesystem,
            format="parquet",
            partitioning=ds.partitioning(partition_schema, flavor="hive")
            if len(partition_schema)
            else None,
            partition_base_dir=root,
        )
    table = dataset.to_table()
    derived = [name for name in recorded.get("derived", []) if name in table.column_names]
    if derived:
        table = table.drop_columns(derived)
    order = recorded.get("column_order")
    if order and set(order) == set(table.column_names):
        table = table.select(order)
    return table.replace_schema_metadata(metadata)


def _partition_type(key: str, types: dict[str, str], root: str, files: list[str]) -> pa.DataType:
    if key in types:
        return pa.type_for_alias(types[key])
    values = {dict(_partition_keys(root, f)).get(key, "") for f in files} - {_HIVE_NULL}
    if values and all(re.fullmatch(r"-?\d+", v) for v in values):
        return pa.int32()
    return pa.string()


def _stamp(entries: list[tuple[str, int | None, int | None]]) -> str:
    """Hash of ``(path relative to the collection root, size, mtime_ns)`` entries."""
    digest = hashlib.blake2b(digest_size=8)
    for path, size, mtime in sorted(entries):
        digest.update(f"{path}\0{size}\0{mtime}\n".encode())
    return digest.hexdigest()


def path_stamp(path: str | os.PathLike[str]) -> str:
    """A short hash of the sizes and modification times of a collection's files."""
    filesystem, root = _filesystem(path)
    info = filesystem.get_file_info(root)
    if info.type == pafs.FileType.File:
        return _stamp([("", info.size, info.mtime_ns)])
    files = _data_files(filesystem, root)
    return _stamp([(f.path[len(root) :], f.size, f.mtime_ns) for f in files])


def decode_metadata(metadata: dict[bytes, bytes] | None) -> dict[str, Any]:
    """Schema metadata as ``str -> str`` (keys/values decoded as UTF-8, binary keys skipped)."""
    decoded = {}
    for key, value in (metadata or {}).items():
        try:
            decoded[key.decode()] = value.decode()
        except UnicodeDecodeError:
            continue
    return decoded
