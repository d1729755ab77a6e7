"""Azurite (Microsoft's Azure Storage emulator, an npm package) on 127.0.0.1, for tests.

``AzuriteServer`` starts ``azurite-blob`` on a free port with in-memory storage, and
speaks just enough of the Blob REST API (Shared Key signed) to create containers
(public or private) and upload blobs. :func:`account_sas` makes an account SAS token for
the emulator's well-known account, which tests hand to a signer.

The executable is looked up in ``$RASTERET_AZURITE`` (the ``azurite-blob`` file, or a
folder holding ``node_modules/.bin/azurite-blob``), then
``~/.cache/rasteret-test/azurite``, then ``PATH``. Install it with
``npm install --prefix ~/.cache/rasteret-test/azurite azurite``.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import http.client
import os
import shutil
import subprocess
import tempfile
import urllib.parse
from email.utils import formatdate
from pathlib import Path

from rasteret.testing._serving import ServerContext, free_port, stop_process, wait_for_port

ACCOUNT = "devstoreaccount1"
ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
API_VERSION = "2021-08-06"
DEFAULT_CACHE = Path.home() / ".cache" / "rasteret-test" / "azurite"


def install_azurite(prefix: Path = DEFAULT_CACHE, timeout: float = 600) -> bool:
    """``npm install`` azurite 3 into ``prefix`` (the npm registry only); ``True`` on success."""
    npm = shutil.which("npm")
    if npm is None:
        return False
    prefix.mkdir(parents=True, exist_ok=True)
    command = [npm, "install", "--no-audit", "--no-fund", "--prefix", str(prefix), "azurite@3"]
    try:
        done = subprocess.run(command, capture_output=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def find_azurite(*, install: bool = False) -> str | None:
    """Path of the ``azurite-blob`` executable, or ``None`` (see module docs).

    ``install=True`` installs it with npm into the cache folder when it is missing.
    """
    if shutil.which("node") is None:
        return None
    candidates = []
    env = os.environ.get("RASTERET_AZURITE")
    if env:
        candidates += [Path(env), Path(env) / "node_modules" / ".bin" / "azurite-blob"]
    candidates.append(DEFAULT_CACHE / "node_modules" / ".bin" / "azurite-blob")
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
    found = shutil.which("azurite-blob")
    if found is None and install and install_azurite():
        return find_azurite()
    return found


def _sign(string_to_sign: str, key: str = ACCOUNT_KEY) -> str:
    digest = hmac.new(base64.b64decode(key), string_to_sign.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def account_sas(
    permissions: str = "rl", expiry: dt.datetime | None = None, version: str = "2019-12-12"
) -> str:
    """An account SAS query string (blob service) for the emulator account."""
    expiry = expiry or dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    se = expiry.strftime("%Y-%m-%dT%H:%M:%SZ")
    fields = [ACCOUNT, permissions, "b", "sco", "", se, "", "https,http", version, ""]
    params = {
        "sv": version,
        "ss": "b",
        "srt": "sco",
        "sp": permissions,
        "se": se,
        "spr": "https,http",
        "sig": _sign("\n".join(fields)),
    }
    return urllib.parse.urlencode(params)


class AzuriteServer(ServerContext):
    """``azurite-blob`` on ``127.0.0.1:<free port>`` (in memory), started and stopped here."""

    def __init__(self, executable: str, host: str = "127.0.0.1") -> None:
        self.executable = executable
        self.host = host
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._workdir: tempfile.TemporaryDirectory[str] | None = None

    @property
    def endpoint(self) -> str:
        """The account's blob endpoint: ``http://127.0.0.1:<port>/devstoreaccount1``."""
        return f"http://{self.host}:{self.port}/{ACCOUNT}"

    def start(self, timeout: float = 30.0) -> AzuriteServer:
        self.port = free_port(self.host)
        self._workdir = tempfile.TemporaryDirectory(prefix="azurite-")
        self._process = subprocess.Popen(
            [
                self.executable,
                "--blobHost",
                self.host,
                "--blobPort",
                str(self.port),
                "--inMemoryPersistence",
                "--silent",
                "--skipApiVersionCheck",
                "--disableTelemetry",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            cwd=self._workdir.name,  # azurite writes its debug / config files here
        )
        try:
            wait_for_port(self._process, self.host, self.port, "azurite-blob", timeout)
        except RuntimeError:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            stop_process(process)
        if self._workdir is not None:
            self._workdir.cleanup()
            self._workdir = None

    # -- Blob REST (Shared Key) ----------------------------------------------------------
    def _request(
        self,
        method: str,
        path: str,
        query: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        body: bytes = b"",
    ) -> int:
        query = query or {}
        headers = {
            "x-ms-date": formatdate(usegmt=True),
            "x-ms-version": API_VERSION,
            **(headers or {}),
        }
        resource_path = f"/{ACCOUNT}/{path.lstrip('/')}"
        canonical_headers = "".join(
            f"{k.lower()}:{v}\n"
            for k, v in sorted(headers.items())
            if k.lower().startswith("x-ms-")
        )
        canonical_resource = f"/{ACCOUNT}{urllib.parse.quote(resource_path)}" + "".join(
            f"\n{k.lower()}:{v}" for k, v in sorted(query.items())
        )
        length = str(len(body)) if body else ""
        content_type = headers.get("Content-Type", "")
        string_to_sign = "\n".join(
            [method, "", "", length, "", content_type, "", "", "", "", "", ""]
        )
        string_to_sign += "\n" + canonical_headers + canonical_resource
        headers["Authorization"] = f"SharedKey {ACCOUNT}:{_sign(string_to_sign)}"
        target = urllib.parse.quote(resource_path)
        if query:
            target += "?" + urllib.parse.urlencode(query)
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            conn.request(method, target, body=body, headers=headers)
            response = conn.getresponse()
            text = response.read()
        finally:
            conn.close()
        if response.status >= 300:
            raise RuntimeError(f"azurite {method} {path}: HTTP {response.status} {text[:300]!r}")
        return response.status

    def create_container(self, name: str, *, public: bool = False) -> None:
        """A container; ``public`` lets anyone read its blobs (``x-ms-blob-public-access``)."""
        headers = {"x-ms-blob-public-access": "blob"} if public else {}
        self._request("PUT", name, {"restype": "container"}, headers)

    def put(self, container: str, blob: str, data: bytes) -> None:
        headers = {"x-ms-blob-type": "BlockBlob", "Content-Type": "application/octet-stream"}
        self._request("PUT", f"{container}/{blob}", None, headers, data)
