"""Cost of the content checks of a collection (rasteret.index.content) at 10,000 records.

    .venv/bin/python benchmarks/validate_content.py [--records 10000] [--tiles 121]

Builds one real record from a generated COG (rasteret.samples), repeats
it to ``--records`` records with ``--tiles`` tiles per band (the block arrays are resized,
offsets kept inside the object), writes the table to Parquet and times ``load`` with and
without the content checks (best of 3), plus ``content_problems`` alone.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from rasteret import load
from rasteret.index.content import content_problems
from rasteret.index.validate import validate_table
from rasteret.ingest import build_from_files
from rasteret.samples import make_sentinel2_like


def _big_table(root: Path, records: int, tiles_side: int, bands: int) -> pa.Table:
    make_sentinel2_like(root / "data", scenes=1, size=256, tile=64)
    base = build_from_files(root / "data", workspace_dir=root / "ws").table.slice(0, 1)
    table = pa.concat_tables([base] * records)
    table = table.set_column(0, "id", pa.array([f"scene-{i:06d}" for i in range(records)]))
    for name in [n for n in table.column_names if n.endswith("_metadata")]:
        values = table[name].to_pylist()
        for value in values:
            n = tiles_side * tiles_side
            value.update(
                image_width=64 * tiles_side,
                image_height=64 * tiles_side,
                tile_offsets=list(range(1000, 1000 + 100 * n, 100)),
                tile_byte_counts=[90] * n,
                file_size=2000 + 100 * n,
            )
            for level in value["overviews"]:
                level.update(
                    image_width=64, image_height=64, tile_offsets=[500], tile_byte_counts=[90]
                )
        index = table.schema.get_field_index(name)
        table = table.set_column(index, name, pa.array(values, type=table[name].type))
    for band in range(2, bands + 1):  # more bands: copies of the first band's structs
        table = table.append_column(f"b{band}_metadata", table["b1_metadata"])
    return table


def _best(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--tiles", type=int, default=121, help="tiles per band (a square)")
    parser.add_argument("--bands", type=int, default=4)
    args = parser.parse_args()
    side = round(float(np.sqrt(args.tiles)))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        table = _big_table(root, args.records, side, args.bands)
        path = root / "big.parquet"
        pq.write_table(table, path)
        assert content_problems(table) == []
        read = _best(lambda: pq.read_table(path))
        schema_only = _best(lambda: validate_table(table, source="x", check_content=False))
        content = _best(lambda: content_problems(table))
        full = _best(lambda: load(path))
    bands = len([n for n in table.column_names if n.endswith("_metadata")])
    print(
        f"{args.records} records x {bands} bands x {side * side} tiles "
        f"(+1 overview): parquet read {read:.3f} s, schema checks {schema_only:.4f} s, "
        f"content checks {content:.3f} s, load() total {full:.3f} s"
    )


if __name__ == "__main__":
    main()
