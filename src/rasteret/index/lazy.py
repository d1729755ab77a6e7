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

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, replace

import pyarrow as pa
import pyarrow.compute as pc

from rasteret.index.parquet import StoredCollection


@dataclass(frozen=True)
class LazyRecords:
    """The rows of ``stored`` matching ``filter`` (``None``: all), ``columns`` only."""

    stored: StoredCollection
    source: str  # the path, named in validation errors
    filter: pc.Expression | None = None
    columns: tuple[str, ...] | None = None
    require_band_metadata: bool = True

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

    def monthly_parts(self) -> Iterator[pa.Table]:
        """The selected rows one calendar month at a time, in time order (then the rows
        without a datetime): what a streaming export writes with bounded memory."""
        names = list(self.columns) if self.columns is not None else None
        extremes = pc.min_max(self.stored.read(self.filter, ["datetime"])["datetime"]).as_py()
        base = self.filter
        column = pc.field("datetime")
        if extremes["min"] is not None:
            first, last = extremes["min"], extremes["max"]
            tz = first.tzinfo
            year, month = first.year, first.month
            while (year, month) <= (last.year, last.month):
                after = (year + month // 12, month % 12 + 1)
                low = dt.datetime(year, month, 1, tzinfo=tz)
                high = dt.datetime(*after, 1, tzinfo=tz)
                window = (column >= low) & (column < high)
                yield self.stored.read(window if base is None else base & window, names)
                year, month = after
        missing = column.is_null()
        yield self.stored.read(missing if base is None else base & missing, names)

    def read(self) -> pa.Table:
        """The selected rows (validated: schema and content, naming ``source``)."""
        from rasteret.index.validate import validate_table

        names = list(self.columns) if self.columns is not None else None
        table = self.stored.read(self.filter, names)
        validate_table(table, source=self.source, require_band_metadata=self.require_band_metadata)
        return table
