"""Where the time of a whole-scene rasteret read goes, stage by stage (one warm process).

    python benchmarks/breakdown.py COLLECTION [--repeat 15] [--band B04]

``COLLECTION`` is a rasteret collection of one scene (``throughput.py --workdir DIR``
leaves ``DIR/collections/*.parquet``). Each stage adds one layer on top of the previous
ones, so the differences between rows are the cost of that layer:

* ``fetch``: every full-resolution tile's bytes through ``RangeReader.read_block``
  (coalesced, as the store does), nothing decoded;
* ``decode, 1 thread`` / ``decode, N threads``: ``rasteret.tiff.decode_block`` on bytes
  already in memory (no I/O; N = usable cores);
* ``read_image``: rasteret's reference reader (fetch + decode in worker threads);
* ``store.get``: the virtual Zarr store's ``get`` for every chunk key (fetch through the
  store, no decode);
* ``zarr``: ``zarr.open_array(store)[...]`` (zarr's codec pipeline, no dask, no xarray);
* ``xarray open``: ``xr.open_dataset(..., chunks={})`` only;
* ``xarray + dask``: open + ``.values``, the user-facing path (``chunks={}``), then the
  same with one dask chunk for the whole scene and without dask (``chunks=None``);
* ``rasterio``: ``src.read(1)`` of the same file (GDAL_NUM_THREADS=ALL_CPUS) when local.

Reported: median and best wall time, median CPU time (all threads) per stage.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def measure(funcs: dict[str, Callable[[], Any]], repeat: int) -> dict[str, dict[str, float]]:
    """Median / best wall and median CPU time of each callable, run round-robin (so load
    changes on a shared machine hit every stage alike) after one warm-up call each."""
    for func in funcs.values():
        func()  # warm-up: thread pools, clients, imports
    walls: dict[str, list[float]] = {name: [] for name in funcs}
    cpus: dict[str, list[float]] = {name: [] for name in funcs}
    for _ in range(repeat):
        for name, func in funcs.items():
            cpu0, wall0 = time.process_time(), time.perf_counter()
            func()
            walls[name].append(time.perf_counter() - wall0)
            cpus[name].append(time.process_time() - cpu0)
    return {
        name: {
            "median": statistics.median(walls[name]),
            "best": min(walls[name]),
            "cpu": statistics.median(cpus[name]),
        }
        for name in funcs
    }


def stages(collection: str, band: str) -> dict[str, Callable[[], Any]]:
    """The measured callables, cheapest layer first."""
    import xarray as xr
    import zarr

    from rasteret.fetch import default_reader
    from rasteret.store import open_store
    from rasteret.tiff import BlockDecoding, decode_block, read_header, read_image

    store = open_store(collection, bands=[band])
    group = store.layout.grid_groups[0]
    layout = store.layout.groups[group].arrays[band]
    source = layout.sources[0]
    href = source.href
    ranges = [
        (int(o), int(o) + int(n))
        for o, n in zip(source.offsets, source.byte_counts, strict=True)
        if n > 0
    ]
    keys = [
        f"{group}/{band}/c/0/{i}/{j}"
        for i in range(layout.tiles_down)
        for j in range(layout.tiles_across)
    ]
    reader = default_reader()

    async def fetch_all() -> list[Any]:
        return await asyncio.gather(*(reader.read_block(href, a, b, copy=False) for a, b in ranges))

    payloads = [bytes(memoryview(p)) for p in asyncio.run(fetch_all())]
    header = asyncio.run(read_header(reader.header_fetch(href), href))
    decoding = BlockDecoding.from_layout(header.full, header.byte_order)
    pool = ThreadPoolExecutor(_cores())

    def decode_serial() -> None:
        for payload in payloads:
            decode_block(payload, decoding)

    def decode_parallel() -> None:
        list(pool.map(lambda p: decode_block(p, decoding), payloads))

    async def read_whole() -> np.ndarray:
        async def fetch(offset: int, length: int) -> Any:
            return await reader.read_block(href, offset, offset + length, copy=False)

        return await read_image(header, fetch)

    async def store_get_all() -> list[Any]:
        from zarr.core.buffer import default_buffer_prototype

        prototype = default_buffer_prototype()
        return await asyncio.gather(*(store.get(k, prototype) for k in keys))

    def zarr_read() -> np.ndarray:
        return zarr.open_array(store, path=f"{group}/{band}", mode="r")[...]

    def xarray_open() -> Any:
        return xr.open_dataset(collection, engine="rasteret", bands=[band], chunks={})

    def xarray_read() -> np.ndarray:
        return xarray_open()[band].values

    def xarray_no_dask() -> np.ndarray:
        return xr.open_dataset(collection, engine="rasteret", bands=[band])[band].values

    def xarray_one_chunk() -> np.ndarray:
        ds = xr.open_dataset(
            collection, engine="rasteret", bands=[band], chunks={}, chunk_bytes=1 << 30
        )
        return ds[band].values

    result: dict[str, Callable[[], Any]] = {
        "fetch (read_block, coalesced)": lambda: asyncio.run(fetch_all()),
        "decode, 1 thread": decode_serial,
        f"decode, {_cores()} threads": decode_parallel,
        "read_image (fetch + decode)": lambda: asyncio.run(read_whole()),
        "store.get (fetch via store)": lambda: asyncio.run(store_get_all()),
        "zarr array[...] (no dask)": zarr_read,
        "xarray open_dataset only": xarray_open,
        "xarray + dask .values": xarray_read,
        "xarray + dask, one chunk (chunk_bytes=1 GiB)": xarray_one_chunk,
        "xarray, no dask (chunks=None)": xarray_no_dask,
    }
    if "://" not in href:

        def rasterio_read() -> np.ndarray:
            import rasterio

            with rasterio.Env(GDAL_NUM_THREADS="ALL_CPUS"), rasterio.open(href) as src:
                return src.read(1)

        result["rasterio read(1)"] = rasterio_read
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("collection")
    parser.add_argument("--band", default="B04")
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args(argv)
    load = os.getloadavg()[0]
    rows = measure(stages(args.collection, args.band), args.repeat)
    print(f"load average {load:.1f} before, {os.getloadavg()[0]:.1f} after, {_cores()} cores\n")
    print("| stage | median s | best s | CPU s |")
    print("|---|---:|---:|---:|")
    for name, s in rows.items():
        print(f"| {name} | {s['median']:.3f} | {s['best']:.3f} | {s['cpu']:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
