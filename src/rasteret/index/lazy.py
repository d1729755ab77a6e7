"""Records of a stored collection that are not read yet: a dataset, a filter, columns.

:func:`rasteret.index.load` opens a collection file or hive directory without reading
its rows (:class:`~rasteret.index.parquet.StoredCollection`). Filters
(``subset`` / ``where``) and band selections compose into one :class:`LazyRecords`
— an Arrow expression and a column list — that Arrow pushes down (partition pruning on
``year`` / ``month``, row-group statistics on ``datetime`` and the ``bbox`` columns,
dictionary pages of user columns such as ``split``). Rows are read, validated and
cached the first time a read or ``.table`` needs them, and only the selected ones: the
cost of a read follows the selection, not the size of the index.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

import pyarrow as pa
import pyarrow.compute as pc

from rasteret.errors import StaleIndexError
from rasteret.index.local_access import LocalAccess
from rasteret.index.parquet import StoredCollection, files_unchanged

#: Records per part of a streaming export (:meth:`LazyRecords.export_parts`).
PART_ROWS = 5_000


@dataclass(frozen=True)
class LazyRecords:
    """The rows of ``stored`` matching ``filter`` (``None``: all), ``columns`` only."""

    stored: StoredCollection
    source: str  # the path, named in validation errors
    filter: pc.Expression | None = None
    columns: tuple[str, ...] | None = None
    require_band_metadata: bool = True
    local_access: LocalAccess | None = None  # ``None``: any local href may be read

    @property
    def schema(self) -> pa.Schema:
        schema = self.stored.schema
        if self.columns is None:
            return schema
        return pa.schema([schema.field(n) for n in self.columns], metadata=schema.metadata)

    def where(self, expression: pc.Expression, years: tuple[int, int] | None = None) -> LazyRecords:
        """These rows and ``expression`` (pushed down with the rest of the filter);
        ``years`` (first, last) also prunes a year-partitioned export's directories."""
        if years is not None and "year" in self.stored.derived:
            year = pc.field("year")
            expression = expression & (year >= years[0]) & (year <= years[1])
        combined = expression if self.filter is None else self.filter & expression
        return replace(self, filter=combined)

    def select(self, columns: list[str]) -> LazyRecords:
        return replace(self, columns=tuple(columns))

    def count(self) -> int:
        return self.stored.count(self.filter)

    def export_parts(self, rows: int | None = None) -> Iterator[pa.Table]:
        """The selected rows as consecutive parts of about ``rows`` records in export
        order (month, place, time: :mod:`rasteret.index.ordering`): what a streaming
        export writes with memory bounded by one part.

        Only the order keys (``id``, ``datetime``, ``bbox``) of every selected row are
        read up front; each part is then read by its records' ids within its time span,
        so row-group statistics prune the read to the months it covers. Without unique
        ids, the parts are consecutive time ranges instead (each in export order)."""
        from rasteret.index.ordering import sort_indices

        rows = rows or PART_ROWS
        names = list(self.columns) if self.columns is not None else None
        keys = [k for k in ("id", "datetime", "bbox") if k in self.stored.schema.names]
        ordered = self.stored.read(self.filter, keys)
        if "id" not in keys or pc.count_distinct(ordered["id"]).as_py() != len(ordered):
            yield from self._time_parts(rows, names)
            return
        ordered = ordered.take(sort_indices(ordered))
        for start in range(0, len(ordered), rows):
            part = ordered.slice(start, rows)
            chosen = pc.field("id").isin(part["id"].combine_chunks())
            if "datetime" in keys:
                times = part["datetime"]
                span = pc.min_max(times).as_py()
                window = (
                    None
                    if span["min"] is None
                    else (
                        (pc.field("datetime") >= span["min"])
                        & (pc.field("datetime") <= span["max"])
                    )
                )
                if times.null_count:
                    missing = pc.field("datetime").is_null()
                    window = missing if window is None else window | missing
                if window is not None:
                    chosen = chosen & window
            yield self.stored.read(chosen if self.filter is None else self.filter & chosen, names)

    def _time_parts(self, rows: int, names: list[str] | None) -> Iterator[pa.Table]:
        """The selected rows in consecutive ``datetime`` ranges of about ``rows`` records
        each, in time order (then the rows without a datetime)."""
        times = self.stored.read(self.filter, ["datetime"])["datetime"]
        column = pc.field("datetime")
        valid = pc.drop_null(times)
        if len(valid):
            ordered = pc.sort_indices(valid)
            cuts = pc.take(valid, ordered)[::rows].to_pylist()  # every ``rows``-th time
            edges = sorted(set(cuts))
            for k, low in enumerate(edges):
                window = column >= low
                if k + 1 < len(edges):
                    window = window & (column < edges[k + 1])
                yield self.stored.read(
                    window if self.filter is None else self.filter & window, names
                )
        missing = column.is_null()
        yield self.stored.read(missing if self.filter is None else self.filter & missing, names)

    def read(self) -> pa.Table:
        """The selected rows (validated: schema, content and local hrefs, naming ``source``)."""
        from rasteret.index.schema import bands_of
        from rasteret.index.validate import validate_table

        names = list(self.columns) if self.columns is not None else None
        try:
            table = self.stored.read(self.filter, names)
        except (OSError, pa.ArrowException) as exc:
            # replaced or removed since load(): a file gone, or an old footer over a new file
            if not isinstance(exc, OSError) and files_unchanged(self.source, self.stored.stamp):
                raise
            raise StaleIndexError(
                self.source,
                f"the collection's files changed since it was loaded ({exc})",
                fix="load it again (rasteret.load) to read the files now there",
            ) from None
        validate_table(table, source=self.source, require_band_metadata=self.require_band_metadata)
        if self.local_access is not None:
            self.local_access.check(table, bands_of(table.schema), self.source)
        return table
