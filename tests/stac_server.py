"""Test helpers: a real STAC API (``rustac serve``) over real items with locally served COGs.

* :func:`corpus_items` reads real STAC items from ``../shared/corpus/stac``.
* :func:`serve_assets` rewrites the chosen assets of each item to COGs generated with
  :func:`rasteret.samples.write_cog` and served by the local ``ObjectServer``. Each COG
  matches the item's ``proj:epsg`` / ``proj:transform`` / ``proj:shape`` at a coarser
  resolution: the pixel size is multiplied by ``ceil(max(shape) / max_px)`` and the shape
  divided by it (rounded up), and the item's ``proj:shape`` / ``proj:transform`` are
  rewritten to the coarse grid so item and file agree. Files stay ≤ ``max_px``² pixels.
* :class:`StacApi` starts ``rustac serve`` (in-memory backend) on 127.0.0.1 behind a
  small forwarding proxy that can inject HTTP errors and delays, and logs requests.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import http.server
import json
import math
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import CORPUS  # ../shared/corpus, or $RASTERET_SHARED/corpus
from rasteret.samples import write_cog
from rasteret.testing._serving import free_port, serve_in_thread, stop_process, stop_thread_server

STAC_CORPUS = CORPUS / "stac"
DTYPES = {"uint8": np.uint8, "uint16": np.uint16, "int16": np.int16, "float32": np.float32}


def stac_corpus() -> Path:
    """``../shared/corpus/stac``; skips the test when it is absent."""
    if not (STAC_CORPUS / "SOURCES.md").is_file():
        pytest.skip(f"STAC corpus not found at {STAC_CORPUS} (../shared is absent)")
    return STAC_CORPUS


def corpus_items(relpath: str) -> list[dict]:
    """The items of one ``.ndjson`` file of the corpus."""
    path = stac_corpus() / relpath
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def rustac_binary() -> str:
    """Path of the ``rustac`` CLI; skips the test when it is not installed."""
    found = shutil.which("rustac") or str(Path(sys.executable).parent / "rustac")
    if not Path(found).exists():
        pytest.skip("rustac is not installed (pip install rustac) - needed for a local STAC API")
    return found


def _seed(*parts: str) -> int:
    return int.from_bytes(hashlib.sha256("/".join(parts).encode()).digest()[:4], "little")


def coarse_grid(shape: Sequence[int], transform: Sequence[float], max_px: int):
    """(shape, transform) of the grid ``ceil(max(shape) / max_px)`` times coarser."""
    factor = max(1, math.ceil(max(shape) / max_px))
    a, b, c, d, e, f = transform[:6]
    new_shape = [math.ceil(shape[0] / factor), math.ceil(shape[1] / factor)]
    return new_shape, [a * factor, b * factor, c, d * factor, e * factor, f]


def serve_assets(
    items: Iterable[dict],
    assets: Sequence[str],
    root: Path,
    server: Any,
    *,
    max_px: int = 256,
    drop_other_tiffs: bool = False,
) -> list[dict]:
    """Copies of ``items`` whose ``assets`` point to generated COGs served by ``server``.

    Returns the rewritten items; each asset's file is ``<root>/<item id>/<asset>.tif``
    (``root`` inside the server's root).
    """
    out = []
    for original in items:
        item = copy.deepcopy(original)
        props = item["properties"]
        epsg = props.get("proj:epsg")
        for key in assets:
            asset = item["assets"][key]
            shape = asset.get("proj:shape") or props["proj:shape"]
            transform = asset.get("proj:transform") or props["proj:transform"]
            new_shape, new_transform = coarse_grid(shape, transform, max_px)
            asset["proj:shape"], asset["proj:transform"] = new_shape, new_transform
            bands = asset.get("raster:bands") or [{}]
            count = max(len(bands), len(asset.get("eo:bands") or []), 1)
            dtype = DTYPES[bands[0].get("data_type", "uint8" if count == 3 else "uint16")]
            nodata = bands[0].get("nodata")
            rng = np.random.default_rng(_seed(item["id"], key))
            high = 255 if dtype == np.uint8 else 10000
            data = rng.integers(1, high, size=(count, *new_shape)).astype(dtype)
            rel = Path(item["id"]) / f"{key}.tif"
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            write_cog(
                path,
                data,
                transform=tuple(new_transform),
                epsg=epsg,
                nodata=nodata,
                tile=128,
                overviews=(2,),
            )
            asset["href"] = server.url_for(path.relative_to(server.root))
        if "proj:shape" in props and assets:
            first = item["assets"][assets[0]]
            props["proj:shape"], props["proj:transform"] = (
                first["proj:shape"],
                first["proj:transform"],
            )
        if drop_other_tiffs:
            item["assets"] = {k: v for k, v in item["assets"].items() if k in assets}
        out.append(item)
    return out


class _Proxy(http.server.ThreadingHTTPServer):
    daemon_threads = True
    api: StacApi


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self._forward()

    def do_POST(self) -> None:
        self._forward()

    def _forward(self) -> None:
        api = self.server.api  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        fault = api._take_fault()
        api.log.append((self.command, self.path, body, fault))
        if fault and fault[0] == "delay":
            time.sleep(fault[1])
        if fault and fault[0] == "status":
            payload = json.dumps({"code": "injected", "description": "injected fault"}).encode()
            self._reply(fault[1], payload, "application/json")
            return
        request = urllib.request.Request(
            f"http://127.0.0.1:{api.backend_port}{self.path}", data=body, method=self.command
        )
        for name in ("Content-Type", "Accept"):
            if self.headers.get(name):
                request.add_header(name, self.headers[name])
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, payload = response.status, response.read()
                kind = response.headers.get("Content-Type", "application/json")
        except urllib.error.HTTPError as exc:
            status, payload, kind = exc.code, exc.read(), "application/json"
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self._reply(status, payload, kind)

    def _reply(self, status: int, payload: bytes, kind: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class StacApi:
    """``rustac serve`` on 127.0.0.1 loaded with ``items``, behind a fault-injecting proxy.

    ``url`` is the API root (the proxy). ``fail(n, status)`` answers the next ``n``
    requests with ``status``; ``delay(n, seconds)`` holds them before forwarding.
    ``log`` lists ``(method, path, body, fault)`` of every request.
    """

    def __init__(self, items: Sequence[dict], workdir: Path) -> None:
        self.binary = rustac_binary()
        self.workdir = workdir
        self.items = list(items)
        self.log: list[tuple[str, str, bytes | None, Any]] = []
        self._faults: list[tuple[str, float]] = []
        self._lock = threading.Lock()
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> StacApi:
        self.workdir.mkdir(parents=True, exist_ok=True)
        by_collection: dict[str, list[dict]] = {}
        for item in self.items:
            by_collection.setdefault(item.get("collection") or "items", []).append(item)
        files = []
        for name, items in by_collection.items():
            path = self.workdir / f"{name}.ndjson"
            path.write_text("".join(json.dumps(i) + "\n" for i in items))
            files.append(str(path))
        self.proxy = _Proxy(("127.0.0.1", 0), _Handler)
        self.proxy.api = self
        self.url = f"http://127.0.0.1:{self.proxy.server_address[1]}"
        self.backend_port = free_port("127.0.0.1")
        self.process = subprocess.Popen(
            [
                self.binary,
                "serve",
                "--create-collections",
                "-a",
                self.url,
                "-b",
                f"127.0.0.1:{self.backend_port}",
                *files,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self._proxy_thread = serve_in_thread(self.proxy, "stac-proxy")
        self._wait_ready()
        return self

    def _wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                err = self.process.stderr.read().decode() if self.process.stderr else ""
                raise RuntimeError(f"rustac serve exited: {err}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.backend_port}/", timeout=1):
                    self.log.clear()
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("rustac serve did not start within 20 s")

    def __exit__(self, *exc: object) -> None:
        stop_thread_server(self.proxy, self._proxy_thread)
        if self.process is not None:
            stop_process(self.process, timeout=5)

    def fail(self, times: int, status: int = 503) -> None:
        with self._lock:
            self._faults += [("status", status)] * times

    def delay(self, times: int, seconds: float) -> None:
        with self._lock:
            self._faults += [("delay", seconds)] * times

    def _take_fault(self) -> tuple[str, float] | None:
        with self._lock:
            return self._faults.pop(0) if self._faults else None

    @property
    def searches(self) -> list[tuple[str, str, bytes | None, Any]]:
        return [entry for entry in self.log if entry[1].startswith("/search")]


@contextlib.contextmanager
def earth_search_api(
    objects: Any, workdir: Path, assets: Sequence[str], *, drop_other_tiffs: bool = False
) -> Iterator[StacApi]:
    """A :class:`StacApi` of the corpus' Earth Search sentinel-2-l2a items, their ``assets``
    generated under ``es/`` and served by the object server ``objects``."""
    items = corpus_items("earth-search-v1/sentinel-2-l2a.ndjson")
    items = serve_assets(
        items, assets, objects.root / "es", objects, drop_other_tiffs=drop_other_tiffs
    )
    with StacApi(items, workdir) as server:
        yield server
