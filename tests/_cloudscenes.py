"""Shared by the cloud / fault / staleness tests: small 4×4-tile COGs written by GDAL
(rasterio), their oracle pixels, and a fetch-config guard."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from _testcollections import rasterio_read, smooth_image, write_cog
from rasteret.fetch import configure

SIZE = 1024
BLOCK = 256  # 4 × 4 tiles per scene
NAMES = ("scene_20240601.tif", "scene_20240611.tif")


def write_scenes(root: Path, names: Sequence[str] = NAMES) -> dict[str, Path]:
    """Two single-band uint16 COGs (deflate + predictor 2, no overviews), one grid."""
    root.mkdir(parents=True, exist_ok=True)
    out = {}
    for k, name in enumerate(names):
        data = smooth_image((1, SIZE, SIZE), seed=k + 1)
        out[name] = write_cog(root / name, data, blocksize=BLOCK)
    return out


def oracle(path: Path) -> np.ndarray:
    """GDAL's pixels of band 1."""
    return rasterio_read(path)[0]


def assert_pixels(ds: xr.Dataset, paths: Sequence[Path], band: str = "b1") -> None:
    """Each time step of ``ds[band]`` equals GDAL's read of the matching file."""
    assert ds[band].shape[0] == len(paths)
    values = ds[band].values
    for t, path in enumerate(paths):
        np.testing.assert_array_equal(values[t], oracle(path), err_msg=str(path))


def open_ds(collection: object) -> xr.Dataset:
    """``collection`` through the rasteret xarray engine."""
    return xr.open_dataset(collection, engine="rasteret")


def clear_env(monkeypatch: pytest.MonkeyPatch, names: Sequence[str]) -> None:
    """Unset ``names`` for one test: the host's credentials and endpoints must not leak in."""
    for name in names:
        monkeypatch.delenv(name, raising=False)


@contextmanager
def fetch_settings(**settings: object) -> Iterator[None]:
    """Configure the process-wide reader for a block, then restore the defaults."""
    configure(**settings)
    try:
        yield
    finally:
        configure()


def _read_pickled_store(payload: bytes, queue) -> None:  # type: ignore[no-untyped-def]
    """In a fresh (spawned) process: unpickle a store and read its ``b1`` pixels."""
    import pickle

    try:
        store = pickle.loads(payload)
        queue.put(xr.open_dataset(store, engine="rasteret")["b1"].values)
    except BaseException as exc:
        queue.put(repr(exc))


def read_in_spawned_process(payload: bytes) -> np.ndarray:
    """``b1`` of a pickled store, read by a spawned child (a fresh interpreter, as a dask
    or DataLoader worker); fails with the child's error."""
    return run_spawned(_read_pickled_store, payload)


def run_spawned(target, payload: bytes):  # type: ignore[no-untyped-def]
    """What ``target(payload, queue)`` puts on the queue in a spawned child (a string is
    the child's error: the test fails with it)."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    child = ctx.Process(target=target, args=(payload, queue))
    child.start()
    try:
        found = queue.get(timeout=60)
    finally:
        child.join(30)
        if child.is_alive():
            child.kill()
    assert not isinstance(found, str), found
    assert child.exitcode == 0
    return found
