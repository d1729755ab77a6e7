"""What a build indexed and what failed, read back from a collection's columns."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from rasteret.errors import RasteretError
from rasteret.index.columns import asset_hrefs
from rasteret.index.schema import bands_of, error_column, metadata_column

log = logging.getLogger("rasteret.ingest")


class NothingIndexedError(RasteretError, RuntimeError):
    """Not a single asset of a build could be indexed."""


@dataclass(frozen=True, slots=True)
class AssetError:
    """One asset that could not be indexed."""

    record_id: str
    band: str
    href: str | None
    message: str


@dataclass(frozen=True, slots=True)
class BuildReport:
    """Counts of a collection's assets: indexed (have a header struct) and failed."""

    records: int
    assets: int  # (record, band) pairs with an href
    indexed: int
    failed: int
    errors: tuple[AssetError, ...]  # every failed asset, in table order

    @property
    def ok(self) -> bool:
        return self.failed == 0

    def summary(self, max_errors: int = 3) -> str:
        text = (
            f"{self.records} record(s): {self.indexed} of {self.assets} asset(s) indexed, "
            f"{self.failed} failed"
        )
        if self.errors:
            shown = "; ".join(e.message for e in self.errors[:max_errors])
            more = len(self.errors) - max_errors
            text += f": {shown}" + (f" (and {more} more)" if more > 0 else "")
        return text

    def __str__(self) -> str:
        return self.summary()


def report_from_table(table: pa.Table) -> BuildReport:
    """The :class:`BuildReport` of a collection table (its ``{band}_error`` columns)."""
    bands = bands_of(table.schema)
    asset_names = _asset_bands(table, bands)
    ids = table["id"].to_pylist() if "id" in table.column_names else [""] * table.num_rows
    total = indexed = 0
    errors: list[AssetError] = []
    for band in bands:
        meta = table[metadata_column(band)]
        err_name = error_column(band)
        hrefs: list[Any] = [None] * table.num_rows
        if band in asset_names:
            hrefs = asset_hrefs(table, band)
            present = pa.array([h is not None for h in hrefs], pa.bool_())
            total += pc.sum(present).as_py() or 0
            indexed += pc.sum(pc.and_(present, pc.is_valid(meta.combine_chunks()))).as_py() or 0
        else:
            total += len(meta) - meta.null_count
            indexed += len(meta) - meta.null_count
        if err_name in table.column_names:
            messages = table[err_name].to_pylist()
            errors += [
                AssetError(str(ids[i]), band, hrefs[i], m)
                for i, m in enumerate(messages)
                if m is not None
            ]
    return BuildReport(table.num_rows, total, indexed, len(errors), tuple(errors))


def _asset_bands(table: pa.Table, bands: list[str]) -> set[str]:
    """The bands that have an entry in the ``assets`` column's type."""
    if "assets" not in table.column_names:
        return set()
    kind = table["assets"].type
    if pa.types.is_struct(kind):
        return {kind.field(i).name for i in range(kind.num_fields)}
    return set(bands)  # a map: any band may have an entry


def build_report(collection: Any) -> BuildReport:
    """The :class:`BuildReport` of a :class:`~rasteret.index.Collection` (or Arrow table)."""
    table = collection if isinstance(collection, pa.Table) else collection.table
    return report_from_table(table)


def check_and_log(report: BuildReport, label: str) -> None:
    """Log the build summary; raise :class:`NothingIndexedError` if nothing was indexed."""
    if report.assets and report.indexed == 0:
        from rasteret.fetch.secrets import redact

        raise NothingIndexedError(
            redact(
                f"{label}: none of {report.assets} asset(s) could be indexed: "
                + "; ".join(e.message for e in report.errors[:5])
            )
        )
    if report.failed:
        log.warning("%s: %s", label, report.summary())
    else:
        log.info("%s: %s", label, report.summary())
