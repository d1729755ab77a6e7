"""Builds in parts: bounded memory, progressive writes, resume after an interruption.

A build that persists to the workspace indexes its records :data:`PART_RECORDS` at a
time: the headers of one part are fetched, turned into the part's rows and written to
``.{target}.parts-{key}/part-NNNNNN.parquet`` (atomically: a temporary file, then a
rename), and dropped — so memory holds one part's headers, not 100,000 of them. When the
build is interrupted (killed, a crash, Ctrl-C), the next build with the same inputs (same
build key) finds the finished parts, fetches only the headers of the records they do not
hold, and the final collection is assembled from all parts (then the parts are removed).
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from rasteret.ingest.report import AssetError, BuildReport

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


def batches[T](items: Sequence[T], size: int | None = None) -> list[Sequence[T]]:
    """``items`` in consecutive slices of ``size`` (default :data:`PART_RECORDS`)."""
    size = size or PART_RECORDS
    return [items[k : k + size] for k in range(0, len(items), size)]
