"""Azure Blob through azurite (npm) on 127.0.0.1: public container (anonymous), private
container with an account key, Planetary-Computer-style hrefs signed at read time with a
SAS token, and signed hrefs never written into a saved index.

azurite enforces authorisation itself (a private container refuses anonymous and badly
signed requests), so a successful read proves the credentials reached the server.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from _cloudscenes import (
    NAMES,
    assert_pixels,
    clear_env,
    fetch_settings,
    open_ds,
    write_scenes,
)
from rasteret import load
from rasteret._async import run_sync
from rasteret.errors import FetchError
from rasteret.fetch import default_reader, track
from rasteret.ingest import build_from_files
from rasteret.testing.azurite import (
    ACCOUNT,
    ACCOUNT_KEY,
    AzuriteServer,
    account_sas,
    find_azurite,
)

EXECUTABLE = find_azurite(install=True)  # the npm registry is reachable here and in CI
pytestmark = pytest.mark.skipif(
    EXECUTABLE is None,
    reason="azurite-blob not found (needs node + `npm install --prefix "
    "~/.cache/rasteret-test/azurite azurite`, or RASTERET_AZURITE)",
)
HOST = f"https://{ACCOUNT}.blob.core.windows.net"  # the production spelling (PC hrefs)
_AZURE_ENV = (
    "AZURE_STORAGE_ACCOUNT_NAME",
    "AZURE_STORAGE_ACCOUNT_KEY",
    "AZURE_STORAGE_SAS_KEY",
    "AZURE_STORAGE_USE_EMULATOR",
    "AZURITE_BLOB_STORAGE_URL",
)


@pytest.fixture(scope="module")
def scenes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_scenes(tmp_path_factory.mktemp("azscenes"))


@pytest.fixture(scope="module")
def azurite(scenes: dict[str, Path]) -> Iterator[AzuriteServer]:
    assert EXECUTABLE is not None
    with AzuriteServer(EXECUTABLE) as server:
        server.create_container("public", public=True)
        server.create_container("private")
        for name, path in scenes.items():
            for container in ("public", "private"):
                server.put(container, f"v002/sentinel 2/{name}", path.read_bytes())
        yield server


@pytest.fixture
def az(azurite: AzuriteServer, monkeypatch: pytest.MonkeyPatch) -> AzuriteServer:
    clear_env(monkeypatch, _AZURE_ENV)
    return azurite


def hrefs(container: str) -> list[str]:
    """Planetary-Computer-style hrefs (percent-encoded path, a 'v002/' prefix kept)."""
    return [f"{HOST}/{container}/v002/sentinel%202/{name}" for name in NAMES]


def test_public_container_is_read_anonymously(az: AzuriteServer, scenes) -> None:
    with fetch_settings(stores={HOST: {"endpoint": az.endpoint}}):
        reader = default_reader()
        r = reader.route(hrefs("public")[0])
        assert (r.provider, r.account, r.bucket) == ("azure", ACCOUNT, "public")
        assert r.path == f"v002/sentinel 2/{NAMES[0]}"  # nothing stripped from the path
        collection = build_from_files(hrefs("public"))
        with track() as t:
            assert_pixels(open_ds(collection), list(scenes.values()))
    assert t.requests == 2 and t.retries == 0  # one coalesced request per 4×4-tile scene


def test_private_container_refuses_anonymous_reads(az: AzuriteServer) -> None:
    url = hrefs("private")[0]
    stores = {HOST: {"endpoint": az.endpoint}}
    with fetch_settings(stores=stores), pytest.raises(FetchError) as info:
        run_sync(default_reader().read_range(url, 0, 8))
    assert info.value.url == url and "403" in str(info.value)


def test_private_container_with_an_account_key(az: AzuriteServer, scenes) -> None:
    keys = {"account_name": ACCOUNT, "account_key": ACCOUNT_KEY}
    urls = [f"az://private/v002/sentinel 2/{name}" for name in NAMES]
    with fetch_settings(stores={"az://": {"endpoint": az.endpoint, "config": keys}}):
        collection = build_from_files(urls)
        assert_pixels(open_ds(collection), list(scenes.values()))


def test_sas_signer_applies_at_read_time(az: AzuriteServer, scenes, tmp_path: Path) -> None:
    sas = account_sas()
    signed_urls: list[str] = []

    def sign(url: str) -> str:
        signed_urls.append(url)
        return f"{url}?{sas}"

    with fetch_settings(stores={HOST: {"endpoint": az.endpoint, "signer": sign}}):
        collection = build_from_files(hrefs("private"), name="pc", workspace_dir=tmp_path)
        assert_pixels(open_ds(collection), list(scenes.values()))
    assert set(signed_urls) == set(hrefs("private"))  # the unsigned href goes in
    saved = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    assert b"sig=" not in saved and sas.encode() not in saved
    assert load(collection.uri).hrefs("b1") == hrefs("private")


def test_presigned_hrefs_are_stripped_before_saving(
    az: AzuriteServer, scenes, tmp_path: Path
) -> None:
    sas = account_sas()
    presigned = [f"{url}?{sas}" for url in hrefs("private")]
    with fetch_settings(stores={HOST: {"endpoint": az.endpoint}}):
        collection = build_from_files(presigned, name="presigned", workspace_dir=tmp_path)
    saved = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    assert b"sig=" not in saved and b"se=" not in saved
    assert load(collection.uri).hrefs("b1") == hrefs("private")
    # reading needs a signer now; with one, the pixels are right
    with fetch_settings(stores={HOST: {"endpoint": az.endpoint, "signer": lambda u: f"{u}?{sas}"}}):
        assert_pixels(open_ds(load(collection.uri)), list(scenes.values()))


def test_errors_do_not_leak_signatures(az: AzuriteServer) -> None:
    bad = account_sas().replace("sig=", "sig=AAAA")  # a wrong signature: azurite says 403
    secret = bad.split("sig=")[1].split("&")[0]
    url = hrefs("private")[0]
    stores = {HOST: {"endpoint": az.endpoint, "signer": lambda u: f"{u}?{bad}"}}
    with fetch_settings(stores=stores), pytest.raises(FetchError) as info:
        run_sync(default_reader().read_range(url, 0, 8))
    text = str(info.value)
    assert url in text and "403" in text
    assert secret not in text and urllib_unquote(secret) not in text


def urllib_unquote(text: str) -> str:
    import urllib.parse

    return urllib.parse.unquote(text)
