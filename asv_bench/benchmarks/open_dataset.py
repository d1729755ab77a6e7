"""``xr.open_dataset`` of a 1,000-scene × 13-band index (lazy: no pixel is read).

``setup_cache`` indexes one real 13-band Sentinel-2-like scene (13 COGs, 512², written by
``rasteret.samples``) and repeats its record 1,000 times with new ids and dates, so the
index holds 13,000 band entries with full tile tables. The timing is the engine's open:
Parquet read, layout, coordinates, dask graph (``chunks={}``). There is no GDAL
equivalent of an index open (a VRT of 13,000 files would open every header), so this
tracks rasteret alone; ``track_index_mb`` records the index size.

Run without asv: ``python asv_bench/benchmarks/open_dataset.py`` (first call after import in
fresh processes, then later calls; with 13 files and with 13,000 distinct files).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

BANDS = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12")
SCENES = 1000


def write_index(root: Path, scenes: int | None = None) -> str:
    import datetime as dt

    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from rasteret.ingest import build_from_table
    from rasteret.samples import make_sentinel2_like

    scenes = SCENES if scenes is None else scenes
    records = make_sentinel2_like(root / "scene", scenes=1, size=512, bands=BANDS, tile=256)
    one = build_from_table(
        pa.table(
            {
                "id": [records[0]["id"]],
                "datetime": [records[0]["datetime"]],
                "assets": [records[0]["assets"]],
            }
        )
    )
    table = one.table.take([0] * scenes)
    ids = pa.array([f"S2L_{i:05d}" for i in range(scenes)])
    start = records[0]["datetime"].replace(tzinfo=None)
    times = pa.array([start + dt.timedelta(days=i) for i in range(scenes)])
    table = table.set_column(table.schema.get_field_index("id"), "id", ids)
    column = table.schema.get_field_index("datetime")
    table = table.set_column(column, "datetime", pc.cast(times, table.schema.field(column).type))
    path = root / "index-1000x13.parquet"
    pq.write_table(table.replace_schema_metadata(one.table.schema.metadata), path)
    return str(path)


def open_index(path: str):  # type: ignore[no-untyped-def]
    import xarray as xr

    return xr.open_dataset(path, engine="rasteret", chunks={})


class OpenDataset:
    timeout = 600
    number = 1
    repeat = 5

    def setup_cache(self) -> str:
        return write_index(Path(tempfile.mkdtemp(prefix="rasteret-asv-open-")))

    def setup(self, path: str) -> None:
        import rasteret.backend  # noqa: F401  (imports, entry points)

    def time_open_dataset_1000x13(self, path: str) -> None:
        open_index(path)

    def track_variables(self, path: str) -> int:
        ds = open_index(path)
        return sum(ds[v].shape[0] for v in ds.data_vars)  # scenes × bands opened

    def track_index_mb(self, path: str) -> float:
        return Path(path).stat().st_size / 1e6

    track_index_mb.unit = "MB"


def distinct_files(path: str) -> str:
    """The index of ``path`` with every record's bands at distinct paths (hard links
    beside it), as 1,000 separately downloaded scenes would be: an open then checks
    13,000 local files instead of 13."""
    import os

    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    assets = table["assets"].to_pylist()
    links = Path(path).parent / "links"
    links.mkdir(exist_ok=True)
    for i, row in enumerate(assets):
        for band, asset in row.items():
            if asset is not None:
                target = links / f"s{i:04d}_{band}.tif"
                if not target.exists():
                    os.link(asset["href"], target)
                asset["href"] = str(target)
    column = pa.array(assets, type=table.schema.field("assets").type)
    table = table.set_column(table.schema.get_field_index("assets"), "assets", column)
    out = str(Path(path).with_name("distinct-1000x13.parquet"))
    pq.write_table(table.replace_schema_metadata(table.schema.metadata), out)
    return out


_FRESH = """
import sys, time
import xarray as xr
import rasteret
xr.backends.list_engines()
started = time.perf_counter()
xr.open_dataset(sys.argv[1], engine="rasteret", chunks={})
print(time.perf_counter() - started)
"""


if __name__ == "__main__":
    import subprocess
    import sys

    location = write_index(Path(tempfile.mkdtemp(prefix="rasteret-open-")))
    for label, index in (("13 files", location), ("13,000 files", distinct_files(location))):
        colds = [
            float(subprocess.run([sys.executable, "-c", _FRESH, index], capture_output=True,
                                 text=True, check=True).stdout)
            for _ in range(3)
        ]  # fmt: skip
        open_index(index)
        warms = []
        for _ in range(3):
            started = time.perf_counter()
            ds = open_index(index)
            warms.append(time.perf_counter() - started)
        print(
            f"open_dataset 1000 × 13 ({label}): first call after import "
            f"{' '.join(f'{c:.3f}' for c in colds)} s (fresh processes), then "
            f"{' '.join(f'{w:.3f}' for w in warms)} s, {dict(ds.sizes)}"
        )
