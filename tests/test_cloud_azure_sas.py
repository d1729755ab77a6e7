"""A SAS signer on every Azure URL spelling, through azurite (npm) on 127.0.0.1.

``az://``, ``azure://``, ``abfs[s]://container@account.dfs.core.windows.net`` and
``https://account.blob.core.windows.net`` hrefs of a *private* container, signed at read
time by a signer that appends a SAS token (a container SAS, and an account SAS, both
made here with ``hmac`` and azurite's well-known key). azurite checks every signature
itself and refuses anonymous reads of the container, so pixels equal to GDAL's
(rasterio reading the source files) prove the SAS reached the server on every request.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from _cloudscenes import NAMES, assert_pixels, clear_env, fetch_settings, open_ds, write_scenes
from rasteret import load
from rasteret._async import run_sync
from rasteret.errors import FetchError
from rasteret.fetch import default_reader, redact, route, strip_credentials
from rasteret.ingest import build_from_files
from rasteret.testing.azurite import ACCOUNT, ACCOUNT_KEY, AzuriteServer, account_sas, find_azurite

EXECUTABLE = find_azurite(install=True)
CONTAINER = "sasprivate"
BLOB = f"https://{ACCOUNT}.blob.core.windows.net"
DFS = f"{ACCOUNT}.dfs.core.windows.net"
_AZURE_ENV = (
    "AZURE_STORAGE_ACCOUNT_NAME",
    "AZURE_STORAGE_ACCOUNT_KEY",
    "AZURE_STORAGE_SAS_KEY",
    "AZURE_STORAGE_USE_EMULATOR",
    "AZURITE_BLOB_STORAGE_URL",
)
#: Spelling → (href of the first scene with ``{name}``, the store prefix configured).
SPELLINGS = {
    "az": ("az://{c}/v002/sentinel 2/{name}", "az://{c}"),
    "azure": ("azure://{c}/v002/sentinel 2/{name}", "azure://{c}"),
    "abfs": ("abfs://{c}@{dfs}/v002/sentinel 2/{name}", "abfs://{c}@{dfs}"),
    "abfss": ("abfss://{c}@{dfs}/v002/sentinel 2/{name}", "abfss://{c}@{dfs}"),
    "https": ("{blob}/{c}/v002/sentinel%202/{name}", "{blob}/{c}"),
}


def container_sas(container: str = CONTAINER, permissions: str = "rl") -> str:
    """A service SAS for one container (``sr=c``; what Planetary Computer hands out),
    signed with the emulator account's key (string-to-sign of version 2019-12-12)."""
    expiry = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    version = "2019-12-12"
    fields = [
        permissions,
        "",  # start
        expiry,
        f"/blob/{ACCOUNT}/{container}",
        "",  # identifier
        "",  # IP
        "https,http",
        version,
        "c",  # resource: the container
        "",  # snapshot time
        "",  # rscc
        "",  # rscd
        "",  # rsce
        "",  # rscl
        "",  # rsct
    ]
    key = base64.b64decode(ACCOUNT_KEY)
    digest = hmac.new(key, "\n".join(fields).encode(), hashlib.sha256).digest()
    return urllib.parse.urlencode(
        {
            "sv": version,
            "sp": permissions,
            "se": expiry,
            "spr": "https,http",
            "sr": "c",
            "sig": base64.b64encode(digest).decode(),
        }
    )


@pytest.fixture(scope="module")
def scenes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_scenes(tmp_path_factory.mktemp("sasscenes"))


@pytest.fixture(scope="module")
def azurite(scenes: dict[str, Path]) -> Iterator[AzuriteServer]:
    if EXECUTABLE is None:
        pytest.skip(
            "azurite-blob not found (needs node + `npm install --prefix "
            "~/.cache/rasteret-test/azurite azurite`, or RASTERET_AZURITE)"
        )
    with AzuriteServer(EXECUTABLE) as server:
        server.create_container(CONTAINER)
        for name, path in scenes.items():
            server.put(CONTAINER, f"v002/sentinel 2/{name}", path.read_bytes())
        yield server


@pytest.fixture
def az(azurite: AzuriteServer, monkeypatch: pytest.MonkeyPatch) -> AzuriteServer:
    clear_env(monkeypatch, _AZURE_ENV)
    return azurite


def spelled(spelling: str) -> tuple[list[str], str]:
    """The hrefs of both scenes in one spelling, and the store prefix for them."""
    template, prefix = SPELLINGS[spelling]
    values = {"c": CONTAINER, "dfs": DFS, "blob": BLOB}
    return [template.format(name=n, **values) for n in NAMES], prefix.format(**values)


def options(az: AzuriteServer, signer: object) -> dict[str, object]:
    """Store options for the emulator: its endpoint, the account (``az://`` hrefs do not
    name it) and the signer."""
    return {"endpoint": az.endpoint, "config": {"account_name": ACCOUNT}, "signer": signer}


def test_abfs_container_is_no_credential() -> None:
    """``abfs[s]://container@account…`` names the container: kept in saved hrefs and
    messages; a password in user info (and the SAS) is still removed."""
    href = f"abfss://{CONTAINER}@{DFS}/v002/a.tif"
    assert strip_credentials(f"{href}?sv=1&sig=secret") == href
    assert redact(f"reading {href}?sig=secret") == f"reading {href}?sig=REDACTED"
    assert strip_credentials(f"abfs://user:pw@{DFS}/a.tif") == f"abfs://{DFS}/a.tif"
    assert strip_credentials(f"https://token@{DFS}/c/a.tif") == f"https://{DFS}/c/a.tif"
    for spelling in SPELLINGS:
        hrefs, _ = spelled(spelling)
        r = route(f"{hrefs[0]}?{account_sas()}")
        assert (r.provider, r.bucket, r.path) == ("azure", CONTAINER, f"v002/sentinel 2/{NAMES[0]}")
        assert "sig=" in r.query


def test_the_container_is_private(az: AzuriteServer) -> None:
    hrefs, prefix = spelled("az")
    stores = {prefix: {"endpoint": az.endpoint, "config": {"account_name": ACCOUNT}}}
    with fetch_settings(stores=stores), pytest.raises(FetchError) as info:
        run_sync(default_reader().read_range(hrefs[0], 0, 8))
    assert "403" in str(info.value)


@pytest.mark.parametrize("spelling", list(SPELLINGS))
@pytest.mark.parametrize("sas", ["container", "account"])
def test_sas_signer_reads_every_spelling(
    az: AzuriteServer, scenes: dict[str, Path], tmp_path: Path, spelling: str, sas: str
) -> None:
    token = container_sas() if sas == "container" else account_sas()
    hrefs, prefix = spelled(spelling)
    signed: list[str] = []

    def sign(url: str) -> str:
        signed.append(url)
        return f"{url}?{token}"

    with fetch_settings(stores={prefix: options(az, sign)}):
        collection = build_from_files(hrefs, name="sas", workspace_dir=tmp_path)
        assert_pixels(open_ds(collection), list(scenes.values()))
    assert set(signed) == set(hrefs)  # the unsigned hrefs go in, as written
    saved = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    assert b"sig=" not in saved
    assert load(collection.uri).hrefs("b1") == hrefs


def test_signer_may_answer_with_another_spelling(
    az: AzuriteServer, scenes: dict[str, Path]
) -> None:
    """A signer turning ``az://container/path`` into the signed blob URL of the same
    object (percent-encoded path, as a signing service returns it)."""
    hrefs, prefix = spelled("az")
    token = container_sas()

    def sign(url: str) -> str:
        container, _, path = url.removeprefix("az://").partition("/")
        return f"{BLOB}/{container}/{urllib.parse.quote(path)}?{token}"

    with fetch_settings(stores={prefix: options(az, sign)}):
        collection = build_from_files(hrefs)
        assert_pixels(open_ds(collection), list(scenes.values()))


def test_presigned_az_hrefs_are_read_and_stripped(
    az: AzuriteServer, scenes: dict[str, Path], tmp_path: Path
) -> None:
    """``az://`` hrefs carrying their SAS: their headers are read with it (the container
    refuses anything else), the index saves them without it, and reading them later
    takes a signer."""
    hrefs, prefix = spelled("az")
    token = container_sas()
    presigned = [f"{href}?{token}" for href in hrefs]
    stores = {prefix: {"endpoint": az.endpoint, "config": {"account_name": ACCOUNT}}}
    with fetch_settings(stores=stores):
        collection = build_from_files(presigned, name="pre", workspace_dir=tmp_path)
    assert collection.table["b1_metadata"].null_count == 0
    assert load(collection.uri).hrefs("b1") == hrefs
    with fetch_settings(stores={prefix: options(az, lambda u: f"{u}?{token}")}):
        assert_pixels(open_ds(load(collection.uri)), list(scenes.values()))


def test_a_wrong_signature_is_refused_and_not_leaked(az: AzuriteServer) -> None:
    bad = container_sas().replace("sig=", "sig=AAAA")
    secret = urllib.parse.parse_qs(bad)["sig"][0]
    hrefs, prefix = spelled("az")
    stores = {prefix: options(az, lambda u: f"{u}?{bad}")}
    with fetch_settings(stores=stores), pytest.raises(FetchError) as info:
        run_sync(default_reader().read_range(hrefs[0], 0, 8))
    text = str(info.value)
    assert hrefs[0] in text and "403" in text
    assert secret not in text and urllib.parse.quote(secret, safe="") not in text
