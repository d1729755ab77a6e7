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
