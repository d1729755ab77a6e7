"""Build the Arrow filter expression of :meth:`Collection.subset`.

All filters are metadata-only ``pyarrow.compute.Expression`` objects, so they run on
an in-memory table or push down into a Parquet dataset. Semantics:

* ``date_range=(start, end)``: ``start`` inclusive; ``end`` inclusive. An end given
  as a *day* (``"2024-01-31"``, a ``datetime.date``, or a datetime at exactly midnight)
  includes that **whole day**; ``"2024-01"`` / ``"2024"`` include the whole month /
  year. An end with a time of day is an inclusive instant. Timezone-aware values
  are converted to UTC (the ``datetime`` column is UTC).
* ``bbox=(minx, miny, maxx, maxy)`` in CRS84: records whose ``bbox`` struct overlaps
  it (touching counts). ``minx > maxx`` means a box crossing the antimeridian.
* ``geometries``: one or several bbox tuples, shapely geometries, WKB bytes or
  GeoJSON-like dicts (CRS84); records overlapping the bounds of *any* of them.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

BBox = tuple[float, float, float, float]


def cloud_cover_expression(schema: pa.Schema, value: float) -> pc.Expression:
    """``eo:cloud_cover < value``; ``ValueError`` for a bad value or a missing column."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 100:
        raise ValueError(f"Invalid cloud_cover_lt: {value!r} (expected a number from 0 to 100)")
    if "eo:cloud_cover" not in schema.names:
        raise ValueError(
            "cloud_cover_lt needs an 'eo:cloud_cover' column, which this collection lacks"
        )
    return pc.field("eo:cloud_cover") < value


def date_range_expression(schema: pa.Schema, date_range: Sequence[Any]) -> pc.Expression:
    """``start <= datetime <= end`` with whole-day / whole-period ends (module docstring)."""
    if isinstance(date_range, str | bytes) or len(date_range) != 2:
        raise ValueError(f"date_range must be a (start, end) pair, got {date_range!r}")
    start, _ = _instant(date_range[0], end=False)
    end, exclusive = _instant(date_range[1], end=True)
    if (end < start) if not exclusive else (end <= start):
        raise ValueError(f"date_range start {date_range[0]!r} is after its end {date_range[1]!r}")
    column_type = schema.field("datetime").type
    unit = column_type.unit if pa.types.is_timestamp(column_type) else "us"
    tz = column_type.tz if pa.types.is_timestamp(column_type) else None
    scalar_type = pa.timestamp(unit, tz=tz)

    def scalar(value: dt.datetime) -> pa.Scalar:
        return pa.scalar(value.replace(tzinfo=dt.UTC) if tz else value, type=scalar_type)

    column = pc.field("datetime")
    upper = column < scalar(end) if exclusive else column <= scalar(end)
    return (column >= scalar(start)) & upper


def date_range_years(date_range: Sequence[Any]) -> tuple[int, int]:
    """The first and last calendar year ``date_range`` touches (partition pruning)."""
    start, _ = _instant(date_range[0], end=False)
    end, _ = _instant(date_range[1], end=True)
    return start.year, end.year


def _instant(value: Any, *, end: bool) -> tuple[dt.datetime, bool]:
    """A UTC-naive datetime for ``value``; for an end, whether it is an exclusive bound."""
    if isinstance(value, np.datetime64):
        value = value.astype("datetime64[us]").item()
    if isinstance(value, str):
        text = value.strip()
        period = _period(text)
        if period is not None:
            first, after = period
            return (after, True) if end else (first, False)
        try:
            value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"cannot parse date {value!r} (use ISO 8601)") from None
    if isinstance(value, dt.datetime):  # includes pandas.Timestamp
        if hasattr(value, "to_pydatetime"):
            value = value.to_pydatetime()
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        if end and value.time() == dt.time(0):
            return value + dt.timedelta(days=1), True
        return value, False
    if isinstance(value, dt.date):
        day = dt.datetime(value.year, value.month, value.day)
        return (day + dt.timedelta(days=1), True) if end else (day, False)
    raise TypeError(f"unsupported date value {value!r} ({type(value).__name__})")


def _period(text: str) -> tuple[dt.datetime, dt.datetime] | None:
    """``(first instant, first instant after)`` of a ``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD``."""
    parts = text.split("-")
    if not all(p.isdigit() for p in parts) or len(parts[0]) != 4:
        return None
    if len(parts) == 1:
        year = int(parts[0])
        return dt.datetime(year, 1, 1), dt.datetime(year + 1, 1, 1)
    if len(parts) == 2 and len(parts[1]) == 2:
        year, month = int(parts[0]), int(parts[1])
        first = dt.datetime(year, month, 1)
        after = dt.datetime(year + month // 12, month % 12 + 1, 1)
        return first, after
    if len(parts) == 3 and len(parts[1]) == 2 and len(parts[2]) == 2:
        first = dt.datetime(int(parts[0]), int(parts[1]), int(parts[2]))
        return first, first + dt.timedelta(days=1)
    return None


def bbox_expression(bbox: Sequence[float]) -> pc.Expression:
    """Records whose ``bbox`` struct overlaps ``bbox`` (CRS84; antimeridian-aware)."""
    minx, miny, maxx, maxy = _check_bbox(bbox)
    y_terms = (pc.field("bbox", "ymax") >= miny) & (pc.field("bbox", "ymin") <= maxy)
    if minx > maxx:  # crosses the antimeridian: [minx, 180] or [-180, maxx]
        east = pc.field("bbox", "xmax") >= minx
        west = pc.field("bbox", "xmin") <= maxx
        return (east | west) & y_terms
    x_terms = (pc.field("bbox", "xmax") >= minx) & (pc.field("bbox", "xmin") <= maxx)
    return x_terms & y_terms


def _check_bbox(bbox: Sequence[float]) -> BBox:
    try:
        values = tuple(float(v) for v in bbox)
    except (TypeError, ValueError):
        raise ValueError(f"bbox must be 4 numbers (minx, miny, maxx, maxy), got {bbox!r}") from None
    if len(values) != 4 or not all(math.isfinite(v) for v in values):
        raise ValueError(f"bbox must be 4 finite numbers (minx, miny, maxx, maxy), got {bbox!r}")
    if values[1] > values[3]:
        raise ValueError(f"bbox has miny > maxy: {bbox!r}")
    return values  # type: ignore[return-value]


def geometries_expression(geometries: Any) -> pc.Expression:
    """OR of one bbox-overlap term per geometry (see :func:`geometry_bounds`)."""
    bounds = geometry_bounds(geometries)
    if not bounds:
        raise ValueError("geometries is empty")
    expression = bbox_expression(bounds[0])
    for box in bounds[1:]:
        expression = expression | bbox_expression(box)
    return expression


def geometry_bounds(geometries: Any) -> list[BBox]:
    """CRS84 bounds of one geometry or of each geometry of a sequence.

    Accepts a bbox *tuple* ``(minx, miny, maxx, maxy)``, a shapely geometry, WKB
    ``bytes``, a GeoJSON-like dict, or a list / Arrow array of those.
    """
    if (
        isinstance(geometries, tuple)
        and len(geometries) == 4
        and all(isinstance(v, int | float) for v in geometries)
    ):
        return [_check_bbox(geometries)]
    if isinstance(geometries, pa.ChunkedArray | pa.Array):
        geometries = geometries.to_pylist()
    if _is_single_geometry(geometries):
        geometries = [geometries]
    if not isinstance(geometries, Iterable):
        raise TypeError(f"unsupported geometries value of type {type(geometries).__name__}")
    return [_bounds_of(g) for g in geometries]


def _is_single_geometry(value: Any) -> bool:
    import shapely

    return isinstance(value, bytes | bytearray | memoryview | dict | shapely.Geometry)


def _bounds_of(geometry: Any) -> BBox:
    import shapely
    import shapely.geometry

    if isinstance(geometry, tuple) and len(geometry) == 4:
        return _check_bbox(geometry)
    if isinstance(geometry, bytes | bytearray | memoryview):
        geometry = shapely.from_wkb(bytes(geometry))
    elif isinstance(geometry, dict):
        geometry = shapely.geometry.shape(geometry)
    if not isinstance(geometry, shapely.Geometry):
        raise TypeError(
            f"unsupported geometry {geometry!r}: use a bbox tuple, shapely geometry, WKB "
            "bytes or a GeoJSON dict"
        )
    if geometry.is_empty:
        raise ValueError("empty geometry in geometries")
    return _check_bbox(geometry.bounds)


def split_expression(schema: pa.Schema, split: str | Sequence[str], column: str) -> pc.Expression:
    """``column == split`` or ``column in split``; ``ValueError`` when the column is absent."""
    if column not in schema.names:
        raise ValueError(f"split filter needs a {column!r} column, which this collection lacks")
    values = [split] if isinstance(split, str) else list(split)
    if not values:
        raise ValueError("split is empty")
    return pc.field(column).isin(values)


def subset_expression(
    schema: pa.Schema,
    *,
    cloud_cover_lt: float | None = None,
    date_range: Sequence[Any] | None = None,
    bbox: Sequence[float] | None = None,
    geometries: Any = None,
    split: str | Sequence[str] | None = None,
    split_column: str = "split",
) -> pc.Expression:
    """The AND of the given filters; ``ValueError("No filters provided")`` when none is."""
    terms = []
    if cloud_cover_lt is not None:
        terms.append(cloud_cover_expression(schema, cloud_cover_lt))
    if date_range is not None:
        terms.append(date_range_expression(schema, date_range))
    if bbox is not None:
        terms.append(bbox_expression(bbox))
    if geometries is not None:
        terms.append(geometries_expression(geometries))
    if split is not None:
        terms.append(split_expression(schema, split, split_column))
    if not terms:
        raise ValueError("No filters provided")
    expression = terms[0]
    for term in terms[1:]:
        expression = expression & term
    return expression
