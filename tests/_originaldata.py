"""Local data and a runner for the original system's documentation examples
(tests/test_original_examples*.py).

The examples search Earth Search's ``sentinel-2-l2a`` around Bangalore (77.5–77.7 E,
12.9–13.1 N) and San Francisco (122.55–122.30 W, 37.65–37.90 N) in the first half of 2024.
:func:`original_world` writes Sentinel-2-like COGs covering exactly those places and dates
(:func:`rasteret.samples.make_sentinel2_like`, 30 km × 30 km at 50 m, Earth Search asset
keys), serves them with the local object server and their STAC items with ``rustac
serve`` (tests/stac_server.py), so the examples keep their own bboxes and dates and only
their URLs change. :func:`run` executes an example after checking that it is the
document's code (whitespace aside) and applying only the named changes. The oracles are
rasterio (GDAL) reads of the same files, compared with what rasteret returned.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from pyproj import Transformer
from rasterio.windows import Window

from conftest import SHARED
from rasteret.samples import make_sentinel2_like
from rasteret.testing._serving import free_port, stop_process, wait_for_port
from rasteret.testing.objserver import ObjectServer
from stac_server import StacApi

#: band code -> Earth Search asset key (the catalog's band map for these bands)
ES_ASSETS = {"B02": "blue", "B03": "green", "B04": "red", "B08": "nir", "SCL": "scl"}
RES = 50.0
SIZE = 600  # 30 km
BANGALORE, SAN_FRANCISCO = (77.6, 13.0), (-122.425, 37.775)


@dataclass(frozen=True)
class World:
    """The generated scenes, the object server serving them and the STAC API over them."""

    root: Path
    server: ObjectServer
    api: StacApi
    records: tuple[dict[str, Any], ...]  # make_sentinel2_like records, both places
    items: tuple[dict[str, Any], ...]  # their STAC items

    @property
    def stac_url(self) -> str:
        return self.api.url

    def path_of(self, href: str) -> Path:
        """The local file behind an object-server URL (or a local path)."""
        if href.startswith(self.server.url):
            return self.server.root / urllib.parse.unquote(href[len(self.server.url) + 1 :])
        return Path(href)

    def href(self, path: str | Path) -> str:
        return self.server.url_for(Path(path).relative_to(self.server.root))

    def scenes(self, epsg: int) -> list[dict[str, Any]]:
        return [r for r in self.records if r["epsg"] == epsg]


def _item(record: dict[str, Any], world_root: Path, server: ObjectServer) -> dict[str, Any]:
    stamp = record["datetime"].isoformat().replace("+00:00", "Z")
    assets = {
        ES_ASSETS[band]: {
            "href": server.url_for(Path(path).relative_to(world_root)),
            "type": "image/tiff; application=geotiff; profile=cloud-optimized",
            "roles": ["data"],
        }
        for band, path in record["hrefs"].items()
    }
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": record["id"],
        "collection": "sentinel-2-l2a",
        "geometry": record["geometry"],
        "bbox": list(record["bbox"]),
        "properties": {
            "datetime": stamp,
            "eo:cloud_cover": record["eo:cloud_cover"],
            "proj:epsg": record["epsg"],
        },
        "assets": assets,
        "links": [],
    }


@contextlib.contextmanager
def original_world(root: Path) -> Iterator[World]:
    """Six Bangalore scenes (one every 30 days from 2024-01-10, UTM 43N) and two San
    Francisco scenes (2024-01-05 and -19, UTM 10N), served over HTTP and STAC."""
    root = root.resolve()
    common = {"size": SIZE, "resolution": RES, "tile": 256, "overviews": (2,)}
    records = make_sentinel2_like(
        root / "cogs", scenes=6, bands=tuple(ES_ASSETS), zones=(32643,), center=BANGALORE,
        start="2024-01-10", interval_days=30, **common,
    )  # fmt: skip
    records += make_sentinel2_like(
        root / "cogs", scenes=2, bands=tuple(ES_ASSETS), zones=(32610,), center=SAN_FRANCISCO,
        start="2024-01-05", interval_days=14, seed=1, **common,
    )  # fmt: skip
    with ObjectServer(root) as server:
        items = [_item(r, root, server) for r in records]
        with StacApi(items, root / "stac") as api:
            yield World(root, server, api, tuple(records), tuple(items))


@contextlib.contextmanager
def gdal_served(world: World) -> Iterator[tuple[str, StacApi]]:
    """The same COGs served by an object server in another process, and a STAC API whose
    items point there: GDAL (rasterio) holds the GIL while it reads over HTTP, so it cannot
    read from a server running in this process. Yields ``(server URL, API)``."""
    port = free_port("127.0.0.1")
    command = [sys.executable, "-m", "rasteret.testing.objserver", str(world.root)]
    process = subprocess.Popen(
        [*command, "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        wait_for_port(process, "127.0.0.1", port, "objserver", timeout=30)
        url = f"http://127.0.0.1:{port}"
        items = json.loads(json.dumps(world.items).replace(world.server.url, url))
        with StacApi(items, world.root / f"stac-{port}") as api:
            yield url, api
    finally:
        stop_process(process)


# ----------------------------------------------------------------------------- examples

REFERENCE = SHARED / "reference"
#: ``pytestmark`` of the example modules
EXAMPLE_MARKS = [
    pytest.mark.skipif(
        not REFERENCE.is_dir(),
        reason=f"the original system's documents are not at {REFERENCE} (set RASTERET_SHARED)",
    ),
    pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning"),
]
MIGRATING = "000_c59c1b851f36dc82.txt"  # "Migrating From Rasterio"
README = "001_8c9f213dd26403d0.txt"  # PyPI README (0.3.4)
CONCEPTS = "002_1d6e64f2c6d06728.txt"  # "Index-first geospatial retrieval"
BLOG = "003_6a7b6b65e73deb1e.md"  # the blog feed
MANAGEMENT = "004_2d4bdb477ac5d216.txt"  # "Collection Management"
#: the one change every ``rasteret.build`` example needs: the local STAC API
LOCAL_STAC = ('"earthsearch/sentinel-2-l2a",', '"earthsearch/sentinel-2-l2a", stac_api=STAC_API,')


def flat(text: str) -> str:
    return " ".join(text.split())


def run(
    doc: str, section: str, code: str, ns: dict[str, Any], *changes: tuple[str, str]
) -> dict[str, Any]:
    """Execute ``code``, found verbatim in ``doc`` (whitespace aside), after ``changes``
    (each ``(old, new)`` must occur), in the namespace ``ns``."""
    text = (REFERENCE / doc).read_text(encoding="utf-8")
    assert flat(code) in flat(text), f"{doc} / {section}: not the document's code"
    for old, new in changes:
        assert old in code, f"{doc} / {section}: {old!r} not in the example"
        code = code.replace(old, new)
    exec(compile(code, f"{doc} / {section}", "exec"), ns)
    return ns


def evaluate(doc: str, section: str, expression: str, ns: dict[str, Any]) -> Any:
    """The value of ``expression``, a one-line example found verbatim in ``doc``."""
    run(doc, section, expression, ns)
    return eval(compile(expression, f"{doc} / {section}", "eval"), ns)


def example_namespace(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    """A fresh namespace for examples; ``~`` (the workspace) and the working directory
    are ``tmp_path``; ``STAC_API`` is the local STAC API."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("RASTERET_WORKSPACE", raising=False)
    return {"__name__": "example", "STAC_API": world.stac_url}


def scene_ids(world: World, epsg: int, keep: Any) -> list[str]:
    """Ids of the generated scenes in ``epsg`` for which ``keep(record)`` holds."""
    return [r["id"] for r in world.scenes(epsg) if keep(r)]


def dated(start: str, end: str) -> Any:
    """``keep`` of :func:`scene_ids`: dated from ``start`` to ``end`` (both included)."""
    lo, hi = dt.date.fromisoformat(start), dt.date.fromisoformat(end)
    return lambda r: lo <= r["datetime"].date() <= hi


# ----------------------------------------------------------------------------- oracles


def read_window(path: Path, transform: Sequence[float], shape: tuple[int, int]) -> np.ndarray:
    """GDAL's pixels of band 1 of ``path`` on the window ``transform`` / ``shape`` of its
    own grid (outside the raster: 0, the nodata of the generated scenes)."""
    with rasterio.open(path) as src:
        a, _, c, _, e, f = transform[:6]
        assert (a, e) == (src.transform.a, src.transform.e), "not the file's own grid"
        col = (c - src.transform.c) / a
        row = (f - src.transform.f) / e
        assert col == round(col) and row == round(row), "window not on the pixel grid"
        window = Window(round(col), round(row), shape[1], shape[0])
        return src.read(1, window=window, boundless=True, fill_value=0)


def assert_stack_pixels(world: World, collection: Any, stack: Any, bands: Sequence[str]) -> int:
    """Every window of an ``AOIStack`` equals GDAL's read of the same file where its mask
    is set and holds the fill (0) elsewhere; returns the number of valid pixels."""
    data = np.asarray(stack.data)
    mask = np.asarray(stack.mask)
    if data.ndim == 3:  # one band: no band axis
        data, mask = data[:, None], mask[:, None]
    valid = 0
    for n, row in enumerate(stack.records.to_pylist()):
        one = collection.select_records([row["record_id"]])
        for c, band in enumerate(bands):
            path = world.path_of(one.hrefs(band)[0])
            expected = read_window(path, row["transform"], data.shape[-2:])
            m = mask[n, c]
            np.testing.assert_array_equal(data[n, c][m], expected[m], err_msg=f"{row} {band}")
            assert not data[n, c][~m].any(), "a pixel without data is not the fill value"
            assert (expected[m] != 0).all(), "a nodata pixel is marked valid"
            valid += int(m.sum())
    return valid


def assert_dataset_pixels(world: World, collection: Any, ds: Any, bands: Sequence[str]) -> None:
    """Each (time, geometry) slice of a ``get_xarray`` Dataset equals GDAL's read of the
    record's file on the slice's grid (from the ``x`` / ``y`` pixel centres)."""
    x, y = ds["x"].values, ds["y"].values
    transform = (RES, 0.0, x[0] - RES / 2, 0.0, -RES, y[0] + RES / 2)
    for t, rid in enumerate(ds["id"].values):
        one = collection.select_records([str(rid)])
        for band in bands:
            expected = read_window(world.path_of(one.hrefs(band)[0]), transform, (len(y), len(x)))
            got = ds[band].values[t, 0]
            valid = ds[f"{band}_valid"].values[t, 0]
            assert valid.any()
            np.testing.assert_array_equal(got[valid], expected[valid])


def mosaic_oracle(
    world: World, collection: Any, bands: Sequence[str], sample: Any, index: int
) -> np.ndarray:
    """``[C, H, W]`` of sample ``index`` of a TorchGeo batch: the records of its time span
    painted in time order, first valid (non-zero) pixel wins (the dataset's rule), from
    GDAL reads of each record's files on the sample's window."""
    transform = sample["transform"][index].numpy()
    bounds = sample["bounds"][index].numpy()  # x / y / t slices; float32 epoch seconds
    size = sample["image"].shape[-1]
    times = collection.datetimes.astype("datetime64[s]").astype(np.int64)
    inside = (times >= bounds[6] - 600) & (times <= bounds[7] + 600)
    order = [i for i in np.argsort(times, kind="stable") if inside[i]]
    assert order, "no record in the sample's time span"
    ids = [collection.record_ids[i] for i in order]
    out = np.zeros((len(bands), size, size), np.uint16)
    for rid in ids:
        one = collection.select_records([rid])
        for c, band in enumerate(bands):
            pixels = read_window(world.path_of(one.hrefs(band)[0]), transform, (size, size))
            take = (out[c] == 0) & (pixels != 0)
            out[c][take] = pixels[take]
    return out


def sample_oracle(path: Path, lon: float, lat: float) -> int:
    """GDAL's value of band 1 at a lon/lat point (rasterio's ``sample``: nearest)."""
    with rasterio.open(path) as src:
        x, y = Transformer.from_crs(4326, src.crs, always_xy=True).transform(lon, lat)
        return int(next(src.sample([(x, y)]))[0])
