"""How a :class:`~rasteret.index.Collection` shows itself: notebook HTML and footprint plots.

``collection_html`` is the collection's ``_repr_html_``: a summary table (records,
bands, dates, CRSs, footprint extent, failed headers) beside an inline SVG of the
footprints, with no plotting library. ``plot_footprints`` draws the footprints with
matplotlib (imported only when called).
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

if TYPE_CHECKING:
    from rasteret.index.table import CollectionTable

MAX_SVG_FOOTPRINTS = 500
_SVG_SIZE = 160


def footprint_rings(
    collection: CollectionTable, limit: int | None = None
) -> list[list[np.ndarray]]:
    """Exterior rings (``[N, 2]`` lon/lat arrays) of each record's footprint.

    Records without a ``geometry`` fall back to their ``bbox``; records with neither
    give an empty list. ``limit`` keeps the first records only.
    """
    import shapely

    table = collection.table
    if limit is not None:
        table = table.slice(0, limit)
    if "geometry" in table.column_names:
        geometries = shapely.from_wkb(
            np.asarray(table["geometry"].to_pylist(), dtype=object), on_invalid="ignore"
        )
    else:
        geometries = np.full(table.num_rows, None, dtype=object)
    boxes = _bbox_rows(table)
    rings: list[list[np.ndarray]] = []
    for geometry, box in zip(geometries, boxes, strict=True):
        if geometry is None or geometry.is_empty:
            geometry = None if box is None else shapely.box(*box)
        if geometry is None:
            rings.append([])
            continue
        parts = getattr(geometry, "geoms", [geometry])
        rings.append(
            [np.asarray(part.exterior.coords) for part in parts if hasattr(part, "exterior")]
        )
    return rings


def _bbox_rows(table: pa.Table) -> list[tuple[float, float, float, float] | None]:
    if "bbox" not in table.column_names:
        return [None] * table.num_rows
    column = table["bbox"]
    fields = ("xmin", "ymin", "xmax", "ymax")
    if not pa.types.is_struct(column.type) or any(
        column.type.get_field_index(f) < 0 for f in fields
    ):
        return [None] * table.num_rows
    values = [pc.struct_field(column, f).to_pylist() for f in fields]
    return [None if None in row else tuple(row) for row in zip(*values, strict=True)]


def _svg(rings: list[list[np.ndarray]]) -> str:
    points = [ring for parts in rings for ring in parts]
    if not points:
        return ""
    stacked = np.concatenate(points)
    (xmin, ymin), (xmax, ymax) = stacked.min(axis=0), stacked.max(axis=0)
    aspect = max(np.cos(np.radians(np.clip((ymin + ymax) / 2, -80, 80))), 0.1)  # ~equal area
    span = max((xmax - xmin) * aspect, ymax - ymin, 1e-9)
    scale = (_SVG_SIZE - 8) / span

    def path(ring: np.ndarray) -> str:
        x = 4 + (ring[:, 0] - xmin) * aspect * scale
        y = 4 + (ymax - ring[:, 1]) * scale
        return "M" + " L".join(f"{a:.1f},{b:.1f}" for a, b in zip(x, y, strict=True)) + " Z"

    shapes = "".join(
        f"<path d='{path(ring)}' fill='teal' fill-opacity='0.12' stroke='teal' stroke-width='1'/>"
        for ring in points
    )
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{_SVG_SIZE}' height='{_SVG_SIZE}' "
        f"role='img' aria-label='record footprints'>{shapes}</svg>"
    )


def collection_html(collection: CollectionTable) -> str:
    """The notebook view of a collection: summary table and a footprint sketch (SVG)."""
    summary = collection.describe()
    rows = []
    for key, value in summary._rows():
        if key == "crs":
            value = ", ".join(collection.crs) or "-"
        elif key == "bounds":
            key = "extent (lon/lat)"
        rows.append(
            f"<tr><th style='text-align:left;padding-right:1em'>{html.escape(key)}</th>"
            f"<td style='text-align:left'>{html.escape(value)}</td></tr>"
        )
    limit = MAX_SVG_FOOTPRINTS
    try:
        svg = _svg(footprint_rings(collection, limit=limit))
    except Exception:  # a sketch must never break the repr of a damaged table
        svg = ""
    note = ""
    if svg and len(collection) > limit:
        note = f"<div style='font-size:smaller'>first {limit} of {len(collection)}</div>"
    title = html.escape(repr(collection))
    sketch = f"<td style='vertical-align:top'>{svg}{note}</td>" if svg else ""
    return (
        "<div class='rasteret-collection'>"
        f"<div style='font-family:monospace;font-weight:bold'>{title}</div>"
        "<table><tr>"
        f"<td style='vertical-align:top'><table>{''.join(rows)}</table></td>{sketch}"
        "</tr></table></div>"
    )


def plot_footprints(
    collection: CollectionTable,
    ax: Any = None,
    *,
    column: str | None = None,
    cmap: str = "viridis",
    **style: Any,
) -> Any:
    """Draw every record's footprint (lon/lat) with matplotlib; returns the ``Axes``.

    ``column`` colours footprints by a numeric or datetime column (e.g. ``"datetime"``,
    ``"eo:cloud_cover"``) with a colour bar; other keyword arguments go to
    ``matplotlib.patches.Polygon`` (``alpha``, ``linewidth``...).
    """
    try:
        import matplotlib.pyplot as plt
        from matplotlib.collections import PatchCollection
        from matplotlib.patches import Polygon
    except ImportError as exc:  # pragma: no cover - matplotlib is in the torchgeo extra
        raise ImportError(
            "Collection.plot() needs matplotlib: install it with `pip install matplotlib`"
        ) from exc
    if column is not None and column not in collection.table.column_names:
        raise KeyError(
            f"Collection.plot(column={column!r}): no such column; "
            f"columns are {', '.join(collection.table.column_names)}"
        )
    rings = footprint_rings(collection)
    if not any(rings):
        raise ValueError(
            f"collection {collection.name!r} has no footprints to plot "
            "(no 'geometry' or 'bbox' column values)"
        )
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 5))
    patches, owners = [], []
    for row, parts in enumerate(rings):
        for ring in parts:
            patches.append(Polygon(ring, closed=True))
            owners.append(row)
    style.setdefault("alpha", 0.35)
    style.setdefault("edgecolor", "black")
    style.setdefault("linewidth", 0.8)
    shapes = PatchCollection(patches, **style)
    if column is not None:
        values = _numeric(collection.table[column])[np.asarray(owners)]
        shapes.set_array(values)
        shapes.set_cmap(cmap)
        bar = ax.figure.colorbar(shapes, ax=ax)
        bar.set_label(column)
        if _is_temporal(collection.table[column]):
            import matplotlib.dates as mdates  # matplotlib's epoch is 1970: days match

            locator = mdates.AutoDateLocator()
            bar.ax.yaxis.set_major_locator(locator)
            bar.ax.yaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    else:
        shapes.set_facecolor(style.get("facecolor", "tab:blue"))
    ax.add_collection(shapes)
    ax.autoscale_view()
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_xlabel("longitude")
    ax.set_ylabel("latitude")
    ax.set_title(f"{collection.name or 'collection'}: {len(collection)} records")
    return ax


def _is_temporal(column: pa.ChunkedArray) -> bool:
    return pa.types.is_timestamp(column.type) or pa.types.is_date(column.type)


def _numeric(column: pa.ChunkedArray) -> np.ndarray:
    """A column as float64 for colouring (timestamps as days since 1970)."""
    if _is_temporal(column):
        days = pc.cast(column, pa.timestamp("s", tz=getattr(column.type, "tz", None)))
        return np.asarray(pc.cast(days, pa.int64()).to_numpy(zero_copy_only=False), float) / 86400
    try:
        return np.asarray(pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise TypeError(
            f"Collection.plot(column=...): column of type {column.type} is not numeric; "
            "colour by a number or a datetime column"
        ) from exc
