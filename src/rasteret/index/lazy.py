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

#: Records per part of a streaming export (:meth:`LazyRecords.time_parts`).
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

    def time_parts(self, rows: int | None = None) -> Iterator[pa.Table]:
        """The selected rows in consecutive ``datetime`` ranges of about ``rows`` records
        each, in time order (then the rows without a datetime): what a streaming export
        writes with memory bounded by one part."""
        rows = rows or PART_ROWS
        names = list(self.columns) if self.columns is not None else None
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
