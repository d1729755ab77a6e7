"""The Hugging Face token, sent as ``huggingface_hub`` sends it, to the Hub only.

A private repository is the object server at ``$HF_ENDPOINT`` answering 401 to any
request without ``Authorization: Bearer <token>``: an index built and read from
``hf://datasets/...`` with ``$HF_TOKEN`` (or the token file) gives GDAL's pixels; without
a token, or with ``$HF_HUB_DISABLE_IMPLICIT_TOKEN``, the read fails naming the file; the
token never reaches another origin; the pure-Python transport (forked workers) sends it
too.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
import rasterio
import xarray as xr

import rasteret
from rasteret.errors import RasteretError
from rasteret.fetch.config import FetchConfig
from rasteret.fetch.fallback import PythonTransport
from rasteret.fetch.retry import TransportFailure
from rasteret.fetch.routing import route
from rasteret.samples import write_cog
from rasteret.testing.objserver import ObjectServer

TOKEN = "hf_private_test_token"
URL = "hf://datasets/me/private/scene-1/B04.tif"


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """A private dataset repository on a local Hub (a fresh server: stores are per origin)."""
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_TOKEN_PATH"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("HF_HUB_DISABLE_IMPLICIT_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))  # no token file of the machine's
    folder = tmp_path / "hub" / "datasets" / "me" / "private" / "resolve" / "main" / "scene-1"
    folder.mkdir(parents=True)
    pixels = np.random.default_rng(5).integers(0, 3000, (300, 300)).astype(np.uint16)
    path = write_cog(
        folder / "B04.tif", pixels, transform=(10.0, 0.0, 500000.0, 0.0, -10.0, 5200000.0),
        epsg=32633, tile=128, overviews=(),
    ).path  # fmt: skip
    with ObjectServer(tmp_path / "hub") as server:
        server.token = TOKEN
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        yield server, path, tmp_path


def _build_and_read(workspace: Path) -> np.ndarray:
    collection = rasteret.build_from_files(
        [URL], workspace_dir=workspace, group_by=lambda url: ("scene-1", "B04")
    )
    return xr.open_dataset(collection, engine="rasteret")["B04"].values[0]


def _gdal(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read(1)


def test_hf_token_from_the_environment_reads_a_private_repository(hub, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    server, path, tmp = hub
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    np.testing.assert_array_equal(_build_and_read(tmp / "ws"), _gdal(path))
    assert server.requests > 0 and server.unauthorized == 0


def test_the_token_file_of_huggingface_cli_login_is_used(hub, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    server, path, tmp = hub
    (tmp / "hf-home").mkdir()
    (tmp / "hf-home" / "token").write_text(TOKEN + "\n")
    np.testing.assert_array_equal(_build_and_read(tmp / "ws"), _gdal(path))
    assert server.unauthorized == 0


@pytest.mark.parametrize("setting", ["no token", "implicit token disabled"])
def test_without_a_token_the_read_fails_naming_the_file(hub, monkeypatch, setting: str) -> None:  # type: ignore[no-untyped-def]
    server, _, tmp = hub
    if setting == "implicit token disabled":
        monkeypatch.setenv("HF_TOKEN", TOKEN)
        monkeypatch.setenv("HF_HUB_DISABLE_IMPLICIT_TOKEN", "1")
    with pytest.raises(RasteretError, match=r"B04\.tif"):
        _build_and_read(tmp / "ws")
    assert server.unauthorized > 0


def test_the_token_is_not_sent_to_another_origin(hub, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Another server that would accept the Hub's token: reading it without configuring
    a header fails, so the token stayed with the Hub."""
    _, path, tmp = hub
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    with ObjectServer(path.parent) as other:
        other.token = TOKEN
        with pytest.raises(RasteretError, match=r"B04\.tif"):
            rasteret.build_from_files(
                [other.url_for("B04.tif")], workspace_dir=tmp / "ws-other",
                group_by=lambda url: ("scene-1", "B04"),
            )  # fmt: skip
        assert other.unauthorized > 0


def test_the_python_transport_sends_the_token_too(hub, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    server, path, _ = hub
    transport = PythonTransport(FetchConfig())
    with pytest.raises(TransportFailure, match="401"):
        asyncio.run(transport.get(route(URL), 0, 16))
    assert server.unauthorized == 1
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    data, info = asyncio.run(transport.get(route(URL), 0, 16))
    assert bytes(data) == path.read_bytes()[:16] and info.size == path.stat().st_size
    assert server.unauthorized == 1
