"""Checks of STAC build arguments, run before any request: bbox, dates, limits, filters.

Each error says what was wrong and what to pass instead.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from typing import Any

from rasteret.errors import RasteretError


class StacInputError(RasteretError, ValueError):
    """An argument of a STAC build is invalid (nothing was searched or fetched)."""


def check_bbox(bbox: Any) -> tuple[float, float, float, float] | None:
    """``(west, south, east, north)`` in degrees (CRS84), validated."""
    if bbox is None:
        return None
    if isinstance(bbox, str):
        bbox = bbox.split(",")
    try:
        values = tuple(float(v) for v in bbox)
    except (TypeError, ValueError):
        raise StacInputError(
            f"bbox {bbox!r} is not 4 numbers; pass (west, south, east, north) in degrees, "
            "e.g. (11.0, 46.0, 11.5, 46.5)"
        ) from None
    if len(values) != 4 or not all(math.isfinite(v) for v in values):
        raise StacInputError(
            f"bbox {bbox!r} must be 4 finite numbers (west, south, east, north) in degrees"
        )
    west, south, east, north = values
    if not (-90 <= south <= 90 and -90 <= north <= 90):
        swapped = -90 <= west <= 90 and -90 <= east <= 90
        hint = "; it looks like (south, west, north, east): swap to (west, south, east, north)"
        raise StacInputError(
            f"bbox {bbox!r}: latitudes (2nd and 4th values) must be within [-90, 90]"
            + (hint if swapped else "")
        )
    if not (-180 <= west <= 180 and -180 <= east <= 180):
        raise StacInputError(
            f"bbox {bbox!r}: longitudes (1st and 3rd values) must be within [-180, 180]"
        )
    if south >= north:
        raise StacInputError(
            f"bbox {bbox!r}: south ({south}) must be less than north ({north}); pass "
            "(west, south, east, north)"
        )
    if west >= east:
        raise StacInputError(
            f"bbox {bbox!r}: west ({west}) must be less than east ({east}); pass "
            "(west, south, east, north) (a box across the antimeridian: build each side "
            "separately)"
        )
    return values


def _parse_day(value: Any, which: str) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    text = str(value).strip()
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise StacInputError(
            f"date_range {which} {value!r} is not a date; pass ISO dates such as "
            "('2024-01-01', '2024-06-30')"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _is_day(value: Any) -> bool:
    if isinstance(value, dt.datetime):
        return False
    if isinstance(value, dt.date):
        return True
    return len(str(value).strip()) == 10


def check_date_range(date_range: Any) -> tuple[str, str] | None:
    """``(start, end)`` → RFC 3339 UTC instants; a bare end date includes its whole day."""
    if date_range is None:
        return None
    if isinstance(date_range, str):
        sep = "/" if "/" in date_range else ","
        date_range = date_range.split(sep)
    if not isinstance(date_range, Sequence) or len(date_range) != 2:
        raise StacInputError(
            f"date_range {date_range!r} must be (start, end), e.g. ('2024-01-01', '2024-06-30')"
        )
    start = _parse_day(date_range[0], "start")
    end = _parse_day(date_range[1], "end")
    if _is_day(date_range[1]):
        end = end + dt.timedelta(days=1) - dt.timedelta(microseconds=1)
    if start > end:
        raise StacInputError(
            f"date_range start {date_range[0]} is after its end {date_range[1]}; pass "
            "(start, end) in that order"
        )
    return _rfc3339(start), _rfc3339(end)


def _rfc3339(value: dt.datetime) -> str:
    text = value.astimezone(dt.UTC).replace(tzinfo=None).isoformat()
    return text + "Z"


def check_max_items(max_items: Any) -> int | None:
    if max_items is None:
        return None
    if isinstance(max_items, bool) or not isinstance(max_items, int) or max_items < 1:
        raise StacInputError(f"max_items must be a positive integer, got {max_items!r}")
    return max_items


def check_filter(expression: Any, filter_lang: str | None) -> str | None:
    """``filter`` is a CQL2-JSON dict or CQL2 text; returns the filter language."""
    if expression is None:
        return None
    if isinstance(expression, Mapping):
        lang = filter_lang or "cql2-json"
    elif isinstance(expression, str) and expression.strip():
        lang = filter_lang or "cql2-text"
    else:
        raise StacInputError(
            f"filter must be a CQL2-JSON dict or CQL2 text, got {expression!r}; e.g. "
            "{'op': '<', 'args': [{'property': 'eo:cloud_cover'}, 20]}"
        )
    if lang not in ("cql2-json", "cql2-text"):
        raise StacInputError(f"filter_lang must be 'cql2-json' or 'cql2-text', got {lang!r}")
    return lang
