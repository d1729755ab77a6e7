"""Entry points that produce validated Collections: :func:`load` and :func:`as_collection`."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pyarrow as pa

from rasteret.index import parquet
from rasteret.index.local_access import LocalAccess, LocalRoots
from rasteret.index.table import CollectionTable
from rasteret.index.validate import validate_table


def load(
    path: str | os.PathLike[str],
    name: str = "",
    *,
    require_band_metadata: bool = True,
    local_roots: LocalRoots = None,
) -> CollectionTable:
    """Open an exported collection (a Parquet file or a hive-partitioned directory),
    local or at a URL (``s3://``, ``gs://``, ``az://``, ``https://``, ``hf://datasets/…``:
    an Arrow dataset over the fetch layer's stores, :mod:`rasteret.index.remote`; nothing
    is copied to local disk).

    Nothing but the schema is read here: filters (``subset`` / ``where``) and band
    selections are pushed down to the files, and the selected rows are read and validated
    (schema and content) the first time a read or ``.table`` needs them
    (:mod:`rasteret.index.lazy`); ``len`` counts from file metadata.

    ``require_band_metadata=False`` also accepts record tables without header structs
    (built with ``enrich_cog=False``): they can be filtered and exported, not read.

    Local hrefs (paths, ``file://``) are read only under the collection's own directory,
    ``local_roots`` and ``$RASTERET_LOCAL_ROOTS`` (``"any"``: everywhere); see
    :mod:`rasteret.index.local_access`.

    Raises ``FileNotFoundError`` naming ``path`` when nothing is there and
    :class:`~rasteret.errors.CollectionSchemaError` naming it when the table is not a
    valid collection. The name defaults to the stored one, else the file/dir stem
    (``_stac`` / ``_records`` suffixes removed).
    """
    from rasteret.errors import CollectionSchemaError
    from rasteret.index.lazy import LazyRecords
    from rasteret.index.validate import schema_problems

    source = os.fspath(path)
    stored = parquet.open_collection(path)
    problems = schema_problems(stored.schema, require_band_metadata=require_band_metadata)
    if "id" in stored.schema.names:
        nulls = stored.null_count("id")  # from the footers: no row is read
        if nulls:
            problems.append(f"column 'id' has {nulls} null value(s)")
    if problems:
        raise CollectionSchemaError(
            f"{source}: not a valid rasteret collection: " + "; ".join(problems)
        )
    records = LazyRecords(
        stored,
        source,
        require_band_metadata=require_band_metadata,
        local_access=LocalAccess.for_source(source, local_roots),
    )
    metadata = parquet.decode_metadata(stored.metadata)
    stem = Path(source.rstrip("/")).name.removesuffix(".parquet")
    stem = re.sub(r"_(stac|records)$", "", stem)
    return CollectionTable(
        records,
        name=name or metadata.get("name") or stem,
        description=metadata.get("description", ""),
        data_source=metadata.get("data_source", ""),
        uri=source,
        stamp=stored.stamp,
    )


def as_collection(
    table: Any,
    *,
    name: str = "",
    data_source: str = "",
    description: str = "",
    require_band_metadata: bool = True,
) -> CollectionTable:
    """Wrap a read-ready Arrow table (or anything ``pyarrow.table()`` accepts) as a Collection.

    Validates the schema (required ``id, datetime, geometry, assets, bbox`` and, with
    ``require_band_metadata``, at least one well-formed ``{band}_metadata`` struct);
    raises :class:`~rasteret.errors.CollectionSchemaError` listing every problem.
    """
    if isinstance(table, CollectionTable):
        source = table
        table = source.table
        name = name or source.name
        data_source = data_source or source.data_source
        description = description or source.description
    if isinstance(table, pa.RecordBatch):
        table = pa.Table.from_batches([table])
    elif isinstance(table, pa.RecordBatchReader):
        table = table.read_all()
    elif hasattr(table, "to_table") and not isinstance(table, pa.Table):
        table = table.to_table()  # pyarrow.dataset.Dataset / Scanner
    elif not isinstance(table, pa.Table):
        table = pa.table(table)
    metadata = parquet.decode_metadata(table.schema.metadata)
    name = name or metadata.get("name", "")
    label = f"table {name!r}" if name else "in-memory table"
    validate_table(table, source=label, require_band_metadata=require_band_metadata)
    return CollectionTable(
        table,
        name=name,
        description=description or metadata.get("description", ""),
        data_source=data_source or metadata.get("data_source", ""),
    )
