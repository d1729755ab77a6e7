"""Builds in parts: bounded memory, progressive writes, resume after an interruption.

A build that persists to the workspace indexes its records :data:`PART_RECORDS` at a
time: the headers of one part are fetched, turned into the part's rows and written to
``.{target}.parts-{key}/part-NNNNNN.parquet`` (atomically: a temporary file, then a
rename), and dropped — so memory holds one part's headers, not 100,000 of them. When the
build is interrupted (killed, a crash, Ctrl-C), the next build with the same inputs (same
build key) finds the finished parts, fetches only the headers of the records they do not
hold, and the final collection is assembled from all parts (then the parts are removed).

File builds (:func:`rasteret.ingest.files.build_from_files`, optionally on a dask
cluster), STAC builds and table builds with ``enrich_cog=True`` (:func:`index_in_parts`)
all persist this way; only the headers are checkpointed — a resumed STAC build runs its
search again (items are cheap; headers are the per-file requests).
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from rasteret.ingest.report import AssetError, BuildReport

if TYPE_CHECKING:
    from rasteret.ingest.headers import HeaderResult

log = logging.getLogger("rasteret.ingest")

#: Records indexed, written and released at a time.
PART_RECORDS = 2_000


class BuildParts:
    """The finished parts of one build (``target`` + build ``key``) on disk."""

    def __init__(self, target: Path, key: str) -> None:
        self.target = target
        self.directory = target.with_name(f".{target.name}.parts-{key[:16]}")

    def files(self) -> list[Path]:
        if not self.directory.is_dir():
            return []
        return sorted(self.directory.glob("part-*.parquet"))

    def done_ids(self) -> set[str]:
        """Record ids already written by an earlier (interrupted) run of this build."""
        import pyarrow.parquet as pq

        done: set[str] = set()
        for path in self.files():
            done.update(str(v) for v in pq.read_table(path, columns=["id"])["id"].to_pylist())
        if done:
            log.info(
                "%s: resuming an interrupted build (%d records already indexed)",
                self.target,
                len(done),
            )
        return done

    def write(self, table: pa.Table) -> None:
        """Add one part (atomically: readers and resumed builds never see half a file)."""
        import pyarrow.parquet as pq

        self.directory.mkdir(parents=True, exist_ok=True)
        number = len(self.files())
        final = self.directory / f"part-{number:06d}.parquet"
        temporary = self.directory / f".part-{uuid.uuid4().hex[:8]}.tmp"
        try:
            pq.write_table(table, temporary, compression="zstd")
            os.replace(temporary, final)
        finally:
            temporary.unlink(missing_ok=True)

    def clear(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)

    def report(self) -> BuildReport:
        """The build report over every part, read one part at a time."""
        import pyarrow.parquet as pq

        from rasteret.ingest.report import report_from_table

        records = assets = indexed = failed = 0
        errors: list[AssetError] = []
        for path in self.files():
            part = report_from_table(pq.read_table(path))
            records += part.records
            assets += part.assets
            indexed += part.indexed
            failed += part.failed
            errors += part.errors
        return BuildReport(records, assets, indexed, failed, tuple(errors))

    def assemble(self, target: Path, *, name: str, data_source: str) -> Any:
        """The collection of every part, exported to ``target`` a slice of records at a
        time (never the whole table in memory), then reopened from there."""
        from rasteret.index import CollectionTable, load

        stored = load(self.directory, local_roots="any")
        stored.name, stored.data_source = name, data_source
        exported = stored.export(target)
        return CollectionTable.of(load(str(target), name=exported.name, local_roots="any"))


def index_in_parts(
    table: pa.Table,
    fetch_headers: Callable[[list[str]], Mapping[str, HeaderResult]],
    *,
    bands: Sequence[str],
    label: str,
    name: str,
    data_source: str,
    target: Path,
    key: str,
    force: bool = False,
    extra_metadata: Mapping[str, str] | None = None,
) -> Any:
    """Enrich the records of ``table`` (a STAC or table build's rows, no headers yet)
    :data:`PART_RECORDS` at a time: fetch the part's headers with ``fetch_headers``
    (hrefs → results), write the enriched part, drop it. Records an interrupted run of
    the same build (``key``) already wrote are not fetched again. Returns the assembled
    collection at ``target`` (see :func:`finish_parts`)."""
    import pyarrow.compute as pc

    from rasteret.index.columns import distinct_asset_hrefs
    from rasteret.index.validate import validate_table
    from rasteret.ingest.build import build_metadata, order_columns, prepare_rows

    parts = BuildParts(target, key)
    parent_existed = target.parent.exists()
    if force:
        parts.clear()
    done = parts.done_ids()
    if done:
        known = pa.array(sorted(done), pa.string())
        table = table.filter(pc.invert(pc.is_in(table["id"].cast(pa.string()), value_set=known)))
    metadata = build_metadata(key, name, data_source, extra_metadata)
    for start in range(0, table.num_rows, PART_RECORDS):
        rows = table.slice(start, PART_RECORDS)
        headers = fetch_headers(distinct_asset_hrefs(rows, bands))
        rows = order_columns(prepare_rows(rows, headers, bands, label))
        validate_table(rows, source=label)
        parts.write(rows.replace_schema_metadata(metadata))
        log.info("%s: %d of %d records indexed", label, start + rows.num_rows, table.num_rows)
    return finish_parts(
        parts, target, label=label, name=name, data_source=data_source, created=not parent_existed
    )


def finish_parts(
    parts: BuildParts, target: Path, *, label: str, name: str, data_source: str, created: bool
) -> Any:
    """Check the report of every part (raising :class:`NothingIndexedError` when no asset
    was indexed: then the parts, and the workspace directory when this build ``created``
    it, are removed), assemble the collection at ``target``, remove the parts."""
    from rasteret.ingest.report import NothingIndexedError, check_and_log

    try:
        check_and_log(parts.report(), label)
        collection = parts.assemble(target, name=name, data_source=data_source)
    except NothingIndexedError:  # a deterministic failure: nothing worth resuming
        parts.clear()
        if created and target.parent.is_dir() and not any(target.parent.iterdir()):
            target.parent.rmdir()
        raise
    parts.clear()
    return collection


def batches[T](items: Sequence[T], size: int | None = None) -> list[Sequence[T]]:
    """``items`` in consecutive slices of ``size`` (default :data:`PART_RECORDS`)."""
    size = size or PART_RECORDS
    return [items[k : k + size] for k in range(0, len(items), size)]
