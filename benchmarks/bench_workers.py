"""One measured read per process: ``python bench_workers.py '<json spec>'``.

The driver (``throughput.py``) starts this script once per measurement so every tool
starts cold (no GDAL block cache, no HTTP connections, no zarr / dask thread pools).
Libraries are imported before the clock starts (their import time is reported
separately); the clock covers opening the file / collection and reading the whole
full-resolution image into one numpy array. The last stdout line is a JSON result.

Spec keys: ``tool`` (one of :data:`TOOLS`), ``target`` (path or URL), ``collection``
(rasteret collection path, for ``rasteret-xarray``, with ``open_kwargs`` for
``xr.open_dataset``, default ``{"chunks": {}}``), ``band``, ``export`` and
``workspace`` (for ``rasteret-index``), ``gdal_env`` (rasterio), ``profile`` (write
cProfile stats of the timed part to this path).
"""

from __future__ import annotations

import asyncio
import cProfile
import hashlib
import importlib
import json
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

Result = dict[str, Any]


def digest(array: np.ndarray) -> str:
    """Identity of an array: shape, dtype and a hash of its bytes."""
    data = np.ascontiguousarray(array)
    content = hashlib.blake2b(memoryview(data).cast("B"), digest_size=16).hexdigest()
    return f"{data.dtype}{list(data.shape)}:{content}"


def _timed(spec: dict[str, Any], run: Callable[[], tuple[np.ndarray | None, Result]]) -> Result:
    """Run ``run`` once under the clock (optionally profiled); with ``spec["warm"]`` run it
    a second time in the same process and report that as ``warm``."""
    profiler = cProfile.Profile() if spec.get("profile") else None
    cpu0, wall0 = time.process_time(), time.perf_counter()
    if profiler is not None:
        profiler.enable()
    array, extra = run()
    if profiler is not None:
        profiler.disable()
    wall = time.perf_counter() - wall0
    cpu = time.process_time() - cpu0
    if profiler is not None:
        profiler.dump_stats(spec["profile"])
    result: Result = {
        "wall": wall,
        "cpu": cpu,
        "threads": threading.active_count(),
        **extra,
    }
    if array is not None:
        result["digest"] = digest(array.reshape(array.shape[-2:]))
    if spec.get("warm"):
        del array
        start = time.perf_counter()
        again, _ = run()
        result["warm"] = time.perf_counter() - start
        if again is not None and digest(again.reshape(again.shape[-2:])) != result["digest"]:
            raise RuntimeError(f"{spec['tool']}: the second read returned different pixels")
    return result


#: What ``open_dataset(engine="rasteret")`` and its first read import lazily.
_ENGINE_MODULES = (
    "imagecodecs",
    "obstore",
    "pyarrow.dataset",
    "rasteret.backend.composite",
    "rasteret.backend.entrypoint",
    "rasteret.backend.variables",
    "rasteret.fetch.reader",
    "rasteret.fetch.stores",
    "rasteret.geo.grid",
    "rasteret.index.lazy",
    "rasteret.index.parquet",
    "rasteret.store.api",
    "rasteret.store.tiles",
    "rasteret.store.window_read",
)


def _preload_xarray_stack() -> None:
    """Import what the first ``open_dataset(...).values`` would import lazily (xarray's
    backend entry points, dask.array, distributed), so the clock measures reading."""
    import importlib.util

    import dask.array  # noqa: F401
    import xarray as xr

    xr.backends.list_engines()
    # xarray's chunk-manager discovery (an entry-point scan on the first chunked open)
    from xarray.namedarray.parallelcompat import list_chunkmanagers

    list_chunkmanagers()
    if importlib.util.find_spec("distributed") is not None:
        import distributed  # noqa: F401


# -- tools ---------------------------------------------------------------------------------------
def run_rasterio(spec: dict[str, Any]) -> Result:
    import rasterio

    def run() -> tuple[np.ndarray, Result]:
        with rasterio.Env(**spec.get("gdal_env", {})):
            start = time.perf_counter()
            with rasterio.open(spec["target"]) as src:
                opened = time.perf_counter() - start
                array = src.read(1)
        return array, {"open": opened}

    return _timed(spec, run)


def run_rasteret_xarray(spec: dict[str, Any]) -> Result:
    import xarray as xr

    import rasteret.backend  # noqa: F401
    from rasteret.fetch import track

    _preload_xarray_stack()
    # the modules the engine imports lazily on its first open and read, imported before
    # the clock as rasterio's GDAL is (the cold-start harness does the same)
    for module in _ENGINE_MODULES:
        importlib.import_module(module)

    band = spec["band"]
    kwargs = spec.get("open_kwargs", {"chunks": {}})

    def run() -> tuple[np.ndarray, Result]:
        with track() as counts:
            start = time.perf_counter()
            ds = xr.open_dataset(spec["collection"], engine="rasteret", bands=[band], **kwargs)
            opened = time.perf_counter() - start
            array = ds[band].values
        return array, {
            "open": opened,
            "rasteret_requests": counts.requests,
            "rasteret_bytes": counts.bytes,
            "dask_chunks": [list(c) for c in ds[band].chunks or ()],
        }

    return _timed(spec, run)


def run_rasteret_read_image(spec: dict[str, Any]) -> Result:
    from rasteret.fetch import default_reader, track
    from rasteret.tiff import read_header, read_image

    url = spec["target"]

    async def read() -> tuple[np.ndarray, float]:
        reader = default_reader()
        start = time.perf_counter()
        header = await read_header(reader.header_fetch(url), url)
        opened = time.perf_counter() - start

        async def fetch(offset: int, length: int) -> Any:
            return await reader.read_block(url, offset, offset + length, copy=False)

        return await read_image(header, fetch), opened

    def run() -> tuple[np.ndarray, Result]:
        with track() as counts:
            array, opened = asyncio.run(read())
        return array, {
            "open": opened,
            "rasteret_requests": counts.requests,
            "rasteret_bytes": counts.bytes,
        }

    return _timed(spec, run)


def run_rasteret_index(spec: dict[str, Any]) -> Result:
    from rasteret.fetch import track
    from rasteret.ingest import build_from_files

    def run() -> tuple[None, Result]:
        with track() as counts:
            collection = build_from_files(
                [spec["target"]],
                name="bench",
                workspace_dir=spec["workspace"],
                bands=[spec["band"]],
                force=True,
            )
        collection.export(spec["export"])
        return None, {"rasteret_requests": counts.requests, "rasteret_bytes": counts.bytes}

    return _timed(spec, run)


def _tile_payloads(path: str) -> tuple[Any, list[tuple[int, int, bytes]]]:
    """The header and every full-resolution tile's bytes (read before the clock starts)."""
    from rasteret.tiff import parse_header

    with open(path, "rb") as handle:
        data = handle.read()
    header = parse_header(data, path)
    full = header.full
    tiles = []
    for index, (offset, count) in enumerate(
        zip(full.block_offsets, full.block_byte_counts, strict=True)
    ):
        row, col = divmod(index, full.blocks_across)
        tiles.append((row, col, data[int(offset) : int(offset) + int(count)]))
    return header, tiles


def _decode_floor(spec: dict[str, Any], decode_one: Callable[..., np.ndarray]) -> Result:
    """Decode every tile with one thread per core into one array: no I/O, no framework."""
    from concurrent.futures import ThreadPoolExecutor

    header, tiles = _tile_payloads(spec["target"])
    full = header.full
    bw, bh = full.block_width, full.block_height
    workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 2

    def run() -> tuple[np.ndarray, Result]:
        out = np.empty((full.height, full.width), np.dtype(full.dtype))

        def one(tile: tuple[int, int, bytes]) -> None:
            row, col, payload = tile
            block = decode_one(payload)
            rows = min(bh, full.height - row * bh)
            cols = min(bw, full.width - col * bw)
            out[row * bh : row * bh + rows, col * bw : col * bw + cols] = block[:rows, :cols]

        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(one, tiles))
        return out, {"open": 0.0}

    return _timed(spec, run)


def run_floor_decode_block(spec: dict[str, Any]) -> Result:
    from rasteret.tiff import BlockDecoding, decode_block

    header, _ = _tile_payloads(spec["target"])
    decoding = BlockDecoding.from_layout(header.full, header.byte_order)
    return _decode_floor(spec, lambda data: decode_block(data, decoding)[:, :, 0])


def run_floor_imagecodecs(spec: dict[str, Any]) -> Result:
    import imagecodecs

    header, _ = _tile_payloads(spec["target"])
    full = header.full
    shape = (full.block_height, full.block_width)
    dtype = np.dtype(full.dtype).newbyteorder(header.byte_order)
    nbytes = shape[0] * shape[1] * dtype.itemsize

    from coldstart_data import isal_checked

    def decode(data: bytes) -> np.ndarray:
        """The faster inflater (ISA-L with its Adler-32 checked, else libdeflate), then
        the predictor."""
        if imagecodecs.ISAL.available:
            out = np.empty(nbytes, np.uint8)
            raw = out[: isal_checked(data, out)].view(dtype).reshape(shape)
        else:
            raw = np.frombuffer(imagecodecs.deflate_decode(data, out=nbytes), dtype).reshape(shape)
        return imagecodecs.delta_decode(raw, axis=-1, out=raw)

    return _decode_floor(spec, decode)


def run_rasteret_xarray_nodask(spec: dict[str, Any]) -> Result:
    """The engine without dask (``open_dataset``'s default ``chunks=None``): ``.values``
    reads through the lazily indexed array, so dask's defensive copy of a computed chunk
    (``dask.array.core.finalize`` copies even a single chunk) is not paid."""
    return run_rasteret_xarray({**spec, "open_kwargs": {}})


TOOLS: dict[str, Callable[[dict[str, Any]], Result]] = {
    "rasterio": run_rasterio,
    "rasteret-xarray": run_rasteret_xarray,
    "rasteret-xarray-nodask": run_rasteret_xarray_nodask,
    "rasteret-read_image": run_rasteret_read_image,
    "rasteret-index": run_rasteret_index,
    "floor-decode_block": run_floor_decode_block,
    "floor-imagecodecs": run_floor_imagecodecs,
}


def main(argv: list[str]) -> int:
    spec = json.loads(argv[1] if len(argv) > 1 else sys.stdin.read())
    result = TOOLS[spec["tool"]](spec)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
