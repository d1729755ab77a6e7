"""The control plane at scale: load, subset, open and export of 10⁴-10⁶ Sentinel-2 records.

``setup_cache`` writes a realistic 13-band index per size with
``benchmarks/large_index.py`` (distinct tile offsets, UTM tiles, 2018-2025, one row group
per batch). The timings are the user's steps on it: ``rasteret.load`` + ``len``, a
10-day ``subset`` (+ ``len``), ``xr.open_dataset`` of one tile's records in that window
(lazy: layout and coordinates, no pixel), and ``export`` of the whole index to a hive
directory. ``track_bytes_per_record`` is the index size on disk per record. Costs should
follow the selection: ``time_load`` / ``time_subset`` / ``time_open`` stay flat with the
size, ``time_export`` grows with it.

Run without asv: ``python asv_bench/benchmarks/index_scale.py`` (smallest size).
"""

from __future__ import annotations

import datetime as dt
import shutil
import sys
import tempfile
from pathlib import Path

RECORDS = (10_000, 100_000, 1_000_000)
BANDS = 13
WINDOW = ("2021-06-01", "2021-06-10")


def _generator():  # type: ignore[no-untyped-def]
    root = Path(__file__).resolve().parents[2] / "benchmarks"
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    import large_index

    return large_index


class IndexScale:
    params = (list(RECORDS),)
    param_names = ("records",)
    timeout = 3600

    def setup_cache(self) -> dict[int, str]:
        generator = _generator()
        root = Path(tempfile.mkdtemp(prefix="rasteret-index-scale-"))
        bands = generator.parse_bands(str(BANDS))
        paths = {}
        for records in RECORDS:
            spec = generator.Spec(records=records, bands=bands)
            path = root / f"s2-{records}.parquet"
            generator.write_index(spec, path, overwrite=True)
            paths[records] = str(path)
        return paths

    def setup(self, paths: dict[int, str], records: int) -> None:
        import pyarrow.compute as pc

        import rasteret

        self.window = WINDOW
        self.path = paths[records]
        collection = rasteret.load(self.path)
        window = collection.subset(date_range=WINDOW)
        if not len(window):  # a small index may have nothing in WINDOW: its first days
            first_day = collection.date_range[0].date()
            self.window = (str(first_day), str(first_day + dt.timedelta(days=9)))
            window = collection.subset(date_range=self.window)
        first = window.head(1, columns=["geometry"])["geometry"][0]
        self.tile = pc.field("geometry") == first
        self.export_to = tempfile.mkdtemp(prefix="rasteret-export-")

    def teardown(self, paths: dict[int, str], records: int) -> None:
        shutil.rmtree(self.export_to, ignore_errors=True)

    def time_load(self, paths: dict[int, str], records: int) -> None:
        import rasteret

        collection = rasteret.load(self.path)
        len(collection)

    def time_subset(self, paths: dict[int, str], records: int) -> None:
        import rasteret

        len(rasteret.load(self.path).subset(date_range=self.window))

    def time_open(self, paths: dict[int, str], records: int) -> None:
        import xarray as xr

        import rasteret

        selection = rasteret.load(self.path).subset(date_range=self.window).where(self.tile)
        xr.open_dataset(selection, engine="rasteret", bands=["B04"])

    def time_export(self, paths: dict[int, str], records: int) -> None:
        import rasteret

        rasteret.load(self.path).export(Path(self.export_to) / "hive")

    def track_bytes_per_record(self, paths: dict[int, str], records: int) -> float:
        return Path(self.path).stat().st_size / records

    track_bytes_per_record.unit = "bytes"  # type: ignore[attr-defined]


if __name__ == "__main__":
    import time

    RECORDS = RECORDS[:1]
    bench = IndexScale()
    cache = bench.setup_cache()
    bench.setup(cache, RECORDS[0])
    for name in ("time_load", "time_subset", "time_open", "time_export"):
        start = time.perf_counter()
        getattr(bench, name)(cache, RECORDS[0])
        print(f"{name}: {time.perf_counter() - start:.3f} s")
    print(f"bytes/record: {bench.track_bytes_per_record(cache, RECORDS[0]):.0f}")
    bench.teardown(cache, RECORDS[0])
