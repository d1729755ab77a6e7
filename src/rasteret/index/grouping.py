"""Record groups for mosaics and composites: one text key per record, from the table.

``groupby`` is one of

* ``"time"`` — equal datetimes;
* ``"solar_day"`` — the local solar date at the record's footprint centre (UTC +
  longitude / 15 h, from the ``bbox`` column), so same-day passes over adjacent tiles
  share a group;
* ``"id"`` — every record alone (no fusion);
* an ISO 8601 period (:class:`Period`): ``"P{n}D"``, ``"P{n}W"``, ``"P{n}M"`` or
  ``"P{n}Y"`` — calendar periods in UTC, keyed by the period's first day
  (``"2024-03-01"``);
* a column name — equal values (the keywords above win over a column of their name,
  a column over a period of its spelling);
* a callable taking the record (a dict of its non-band columns) and returning its key.

Used by the AOI mosaics (:mod:`rasteret.read.mosaic`) and the xarray engine's
composites (:mod:`rasteret.backend.composite`), so both group records identically.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rasteret.index.columns import datetimes, record_ids
from rasteret.index.table import CollectionTable

#: Units of the supported ISO 8601 periods.
PERIOD_UNITS = ("D", "W", "M", "Y")
_PERIOD = re.compile(r"^P(\d+)([DWMY])$")
_ISO_DURATION = re.compile(r"^P(?=[\d.,T])([\d.,]+Y)?([\d.,]+M)?([\d.,]+W)?([\d.,]+D)?(T.*)?$")
#: Day bins are counted from this Monday, so ``P7D`` == ``P1W`` (weeks start on Monday).
_MONDAY = np.datetime64("1970-01-05", "D")


@dataclass(frozen=True, slots=True)
class Period:
    """A calendar period of ``count`` ``unit`` (``D`` days, ``W`` weeks, ``M`` months,
    ``Y`` years), parsed from an ISO 8601 duration with :func:`parse_period`.

    Boundaries: days and weeks are counted in UTC from Monday 1970-01-05 (``P1D``:
    calendar days, ``P7D`` == ``P1W``: weeks from Monday, ``P14D``: fortnights), months
    from January 1970 (``P1M``: calendar months, ``P3M``: quarters), years from 1970
    (``P1Y``: calendar years, ``P10Y``: decades).
    """

    count: int
    unit: str

    @property
    def text(self) -> str:
        """The ISO 8601 spelling (``"P1M"``)."""
        return f"P{self.count}{self.unit}"

    def starts(self, times: np.ndarray) -> np.ndarray:
        """The first day (``datetime64[D]``) of the period holding each of ``times``
        (NaT stays NaT)."""
        times = np.asarray(times, dtype="datetime64[us]")
        missing = np.isnat(times)
        safe = np.where(missing, np.datetime64("1970-01-01", "us"), times)
        if self.unit in ("D", "W"):
            step = self.count * (7 if self.unit == "W" else 1)
            days = (safe.astype("datetime64[D]") - _MONDAY).astype(np.int64)
            out = _MONDAY + (days // step) * step
        elif self.unit == "M":
            months = safe.astype("datetime64[M]").astype(np.int64)
            out = ((months // self.count) * self.count).astype("datetime64[M]")
        else:
            years = safe.astype("datetime64[Y]").astype(np.int64)
            out = ((years // self.count) * self.count).astype("datetime64[Y]")
        out = out.astype("datetime64[D]")
        out[missing] = np.datetime64("NaT", "D")
        return out


def parse_period(value: Any) -> Period | None:
    """The :class:`Period` that ``value`` spells, ``None`` when it is not an ISO 8601
    duration; ``ValueError`` for a duration this module does not group by (``P0D``,
    ``P1M15D``, ``PT12H``)."""
    if isinstance(value, Period):
        return value
    if not isinstance(value, str) or not _ISO_DURATION.match(value):
        return None
    found = _PERIOD.match(value)
    if found is None or int(found.group(1)) < 1:
        raise ValueError(
            f"period {value!r}: use one whole number of days, weeks, months or years "
            "(P1D, P7D, P1W, P1M, P3M, P1Y; no time-of-day parts, no combinations)"
        )
    return Period(int(found.group(1)), found.group(2))


def groupby_period(table: pa.Table, groupby: Any) -> Period | None:
    """The :class:`Period` that ``groupby`` groups by in :func:`group_keys` (``None`` when it
    is a keyword, a column of ``table`` or a callable)."""
    if callable(groupby) or groupby in ("id", "time", "solar_day"):
        return None
    if isinstance(groupby, str) and groupby in table.column_names:
        return None
    return parse_period(groupby)


def group_keys(collection: CollectionTable, rows: np.ndarray, groupby: Any) -> list[str]:
    """The group key (as text) of each row in ``rows`` (see module docs)."""
    table = collection.table
    if callable(groupby):
        keep = [n for n in table.column_names if not n.endswith(("_metadata", "_error"))]
        records = table.select(keep).take(pa.array(rows, pa.int64())).to_pylist()
        return [str(groupby(r)) for r in records]
    if groupby == "id":
        values = record_ids(table)
        return [values[r] for r in rows]
    if groupby in ("time", "solar_day"):
        times = datetimes(table["datetime"])
        if groupby == "time":
            return [str(times[r]) for r in rows]
        lon = centre_longitudes(table)
        local = times + (lon * 3600 / 15 * 1e6).astype("timedelta64[us]")
        return [str(local[r].astype("datetime64[D]")) for r in rows]
    if isinstance(groupby, str) and groupby in table.column_names:
        values = table[groupby].to_pylist()
        return [str(values[r]) for r in rows]
    period = parse_period(groupby)
    if period is not None:
        times = datetimes(table["datetime"])[np.asarray(rows, dtype=np.int64)]
        return [str(day) for day in period.starts(times)]
    raise ValueError(
        f"groupby={groupby!r}: use 'time', 'solar_day', 'id', an ISO 8601 period "
        "('P1D', 'P1W', 'P1M', 'P1Y'...), a column name "
        f"({[n for n in table.column_names if not n.endswith(('_metadata', '_error'))]}) "
        "or a callable"
    )


def centre_longitudes(table: pa.Table) -> np.ndarray:
    """The longitude of each record's ``bbox`` centre (antimeridian-aware)."""
    if "bbox" not in table.column_names:
        raise ValueError("groupby='solar_day' needs the records' 'bbox' column (CRS84)")
    bbox = table["bbox"].combine_chunks()
    xmin = pc.struct_field(bbox, "xmin").to_numpy(zero_copy_only=False)
    xmax = pc.struct_field(bbox, "xmax").to_numpy(zero_copy_only=False)
    centre = (xmin + xmax) / 2
    wraps = xmin > xmax  # crosses the antimeridian
    centre = np.where(wraps, ((xmin + xmax + 360) / 2 + 180) % 360 - 180, centre)
    return np.nan_to_num(centre.astype(np.float64))


def ordered_groups(keys: Sequence[str], rows: np.ndarray) -> list[tuple[str, list[int]]]:
    """``(key, member rows)`` in first-member order (rows are already time-ordered)."""
    groups: dict[str, list[int]] = {}
    for key, row in zip(keys, rows, strict=True):
        groups.setdefault(key, []).append(int(row))
    return list(groups.items())
