"""The grid an AOI read falls back to when its records are in several CRSs.

``get_numpy`` / ``get_xarray`` stack every window on one grid. Records of a collection
that spans UTM zones overlap near the zone edge, so an AOI there meets records in two
CRSs; like the original system, such a read is reprojected to the CRS most of the
overlapping records are in (ties: the first in time order), at the finest native
resolution of those records, instead of failing with ``RaggedShapesError``. Reads whose
overlapping records share one CRS stay on their native grid (no resampling).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from rasteret.geo.rings import RingPolygon
from rasteret.read.geometry import Geometries
from rasteret.read.stacks import BandSource, StoreIndex


def dominant_grid(
    index: StoreIndex, rows: Sequence[int], geoms: Geometries, bands: Sequence[str]
) -> tuple[str, tuple[float, float]] | None:
    """``(crs key, (xres, yres))`` to reproject to when the records overlapping ``geoms``
    are in several CRSs; ``None`` when they share one (or none overlaps)."""
    sources = [_first_source(index, int(row), bands) for row in rows]
    if len({s.crs_key for s in sources if s is not None}) <= 1:
        return None  # one CRS whatever overlaps: no footprint test (and no Shapely import)
    counts: Counter[str] = Counter()
    first_seen: dict[str, int] = {}
    finest: dict[str, tuple[float, float]] = {}
    for source in sources:
        if source is None:
            continue
        if not _overlaps(geoms.in_crs(index.crs(source)), _extent(source)):
            continue
        key = source.crs_key
        counts[key] += 1
        first_seen.setdefault(key, len(first_seen))
        a, b, _, d, e, _ = source.transform
        res = (float(np.hypot(a, d)), float(np.hypot(b, e)))
        known = finest.get(key)
        finest[key] = res if known is None else (min(known[0], res[0]), min(known[1], res[1]))
    if len(counts) <= 1:
        return None
    key = max(counts, key=lambda k: (counts[k], -first_seen[k]))
    return key, finest[key]


def _overlaps(polygons: np.ndarray, extent: tuple[float, float, float, float]) -> bool:
    """Whether any of ``polygons`` (Shapely, or boxes' ``RingPolygon`` s) meets ``extent``."""
    if all(isinstance(p, RingPolygon) for p in polygons):
        return any(p.intersects_box(extent) for p in polygons)
    import shapely

    return bool(shapely.intersects(polygons, shapely.box(*extent)).any())


def _first_source(index: StoreIndex, row: int, bands: Sequence[str]) -> BandSource | None:
    for band in bands:
        source = index.source(band, row)
        if source is not None:
            return source
    return None


def _extent(source: BandSource) -> tuple[float, float, float, float]:
    a, b, c, d, e, f = source.transform
    xs = [c, c + a * source.width, c + b * source.height, c + a * source.width + b * source.height]
    ys = [f, f + d * source.width, f + e * source.height, f + d * source.width + e * source.height]
    return (min(xs), min(ys), max(xs), max(ys))
