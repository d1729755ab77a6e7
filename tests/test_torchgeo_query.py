"""``IndexQuery`` selects the records TorchGeo's pandas / geopandas expression selects.

The oracle is the expression ``RasterDataset`` uses (``iloc[overlaps(...)]``,
``iloc[::step]``, ``cx[...]``) on the same GeoDataFrame, over random queries that hit
rectangle edges, reprojected (rotated) footprints, instants and open-ended intervals.
"""

from __future__ import annotations

import numpy as np
import pytest

pd = pytest.importorskip("pandas")
shapely = pytest.importorskip("shapely")
geopandas = pytest.importorskip("geopandas")
pytest.importorskip("torchgeo", reason="the TorchGeo extra is not installed")

from rasteret.integrations.torchgeo_query import IndexQuery  # noqa: E402


def _index(rng: np.random.Generator) -> geopandas.GeoDataFrame:
    geometries, starts, stops, ids = [], [], [], []
    day = pd.Timestamp("2024-01-01")
    for i in range(60):
        x, y = rng.integers(0, 5) * 100.0, rng.integers(0, 5) * 100.0
        box = shapely.box(x, y, x + 150.0, y + 150.0)
        if i % 3 == 0:  # a reprojected footprint: rotated, not its own bounding box
            box = shapely.affinity.rotate(box, 17.0, origin="center")
        geometries.append(box)
        start = day + pd.Timedelta(days=int(rng.integers(0, 20)))
        if i % 7 == 0:
            starts.append(pd.Timestamp.min)
            stops.append(pd.Timestamp.max)
        else:
            starts.append(start)
            stops.append(start + pd.Timedelta(1, "us") if i % 2 else start + pd.Timedelta(days=3))
        ids.append(f"r{i:02d}")
    index = pd.IntervalIndex.from_arrays(starts, stops, closed="both", name="datetime")
    return geopandas.GeoDataFrame(
        {"record_id": ids}, index=index, geometry=geometries, crs="EPSG:32633"
    )


def _pandas(index: geopandas.GeoDataFrame, x: slice, y: slice, t: slice) -> list[str]:
    df = index.iloc[index.index.overlaps(pd.Interval(t.start, t.stop, closed="both"))]
    df = df.iloc[:: t.step]
    df = df.cx[x.start : x.stop, y.start : y.stop]
    return list(df["record_id"])


def test_same_records_as_the_pandas_expression() -> None:
    rng = np.random.default_rng(3)
    index = _index(rng)
    query = IndexQuery.of(index)
    day = pd.Timestamp("2024-01-01")
    checked = nonempty = 0
    for _ in range(400):
        x0, y0 = rng.uniform(-50, 600, 2)
        size = float(rng.choice([0.0, 10.0, 50.0, 150.0]))  # 0: a line / point query
        if rng.random() < 0.2:  # on a rectangle's edge exactly
            x0 = float(rng.integers(0, 7) * 50.0)
        t0 = day + pd.Timedelta(days=int(rng.integers(-2, 25)))
        t1 = t0 if rng.random() < 0.3 else t0 + pd.Timedelta(days=int(rng.integers(0, 6)))
        x, y = slice(x0, x0 + size, 10.0), slice(y0, y0 + size, 10.0)
        t = slice(t0, t1, int(rng.choice([1, 1, 1, 2])))
        expected = _pandas(index, x, y, t)
        assert query.records(x, y, t) == expected, (x, y, t)
        checked += 1
        nonempty += bool(expected)
    assert checked == 400 and 100 < nonempty < 400
