"""Google Cloud Storage on 127.0.0.1 for tests: gcp-storage-emulator behind a recording,
authorising HTTP server.

``GcsEmulator`` serves the emulator's own request handlers (its in-memory storage, JSON
and XML-style object routes) from a threaded ``http.server`` and adds what the tests need:

* a request log (method, path, ``Range``, ``Authorization``, status, body bytes), the
  oracle for request counts and for what credentials reached the server;
* private buckets: object requests without ``Authorization: Bearer <token>`` for a token
  in :attr:`GcsEmulator.tokens` get 401, as GCS answers an anonymous request to a
  private bucket (the emulator itself ignores authorisation);
* what GCS does and the emulator does not: ``Last-Modified`` and ``ETag`` on object
  reads (obstore refuses a response without ``Last-Modified``), ``HEAD`` on objects
  (answered as the ``GET`` without its body), and percent-encoded bucket names in object
  paths (obstore sends ``/my%2Dbucket/key``). Listing (the XML API's ``list-type=2``)
  is not emulated.

Setup goes through the emulator's JSON API with plain ``urllib``
(``google-cloud-storage`` is not needed)::

    with GcsEmulator() as gcs:
        gcs.create_bucket("public")
        gcs.create_bucket("private", private=True)
        gcs.upload("public", "cogs/a.tif", data)
        ...configure(stores={"gs://public": {"endpoint": gcs.endpoint}})...
"""

from __future__ import annotations

import json
import threading
import urllib.parse
import urllib.request
from dataclasses import dataclass
from email.utils import formatdate
from http.server import ThreadingHTTPServer
from typing import Any

from rasteret.testing._serving import ServerContext, serve_in_thread, stop_thread_server

_OBJECT_PATH = "/storage/v1/b/"


@dataclass(frozen=True)
class GcsRequest:
    """One request as the server saw it; ``end`` is exclusive (``None`` without Range)."""

    method: str
    bucket: str
    path: str  # the object name (percent-decoded), "" for bucket / API calls
    query: str
    start: int | None
    end: int | None
    status: int
    bytes_sent: int
    authorization: str | None

    @property
    def is_object_read(self) -> bool:
        return self.method in ("GET", "HEAD") and bool(self.path) and not self.query


def _parse_range(value: str | None) -> tuple[int | None, int | None]:
    if not value or not value.startswith("bytes="):
        return None, None
    first, _, last = value[6:].partition("-")
    try:
        return int(first), int(last) + 1 if last else None
    except ValueError:
        return None, None


def _bucket_and_object(path: str) -> tuple[str, str]:
    """``(bucket, object)`` of an XML-style object path ``/bucket/object`` (else the
    bucket of a JSON API path, and ``""``)."""
    path = urllib.parse.unquote(path)
    if path.startswith(_OBJECT_PATH):
        return path[len(_OBJECT_PATH) :].partition("/")[0], ""
    if path.startswith(("/upload/", "/download/", "/batch/")):
        return "", ""
    bucket, _, name = path.lstrip("/").partition("/")
    return bucket, name


class _Discard:
    """A write-only stream that drops what is written (the body of a HEAD response)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.closed = False

    def write(self, data: bytes) -> int:
        return len(data)

    def flush(self) -> None:
        self.inner.flush()

    def close(self) -> None:
        self.closed = True
        self.inner.close()


def _handler_class(owner: GcsEmulator) -> type:
    from gcp_storage_emulator.server import RequestHandler, Router

    class Handler(RequestHandler):  # type: ignore[misc,valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self._status = 0
            self._sent = 0
            self._extra: dict[str, str] = {}
            super().__init__(owner.storage, *args, **kwargs)

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_HEAD(self) -> None:
            self._dispatch("HEAD")

        def do_GET(self) -> None:
            self._dispatch("GET")

        def _dispatch(self, method: str) -> None:
            parts = urllib.parse.urlsplit(self.path)
            bucket, name = _bucket_and_object(parts.path)
            if name:  # GCS decodes a percent-encoded bucket name; the emulator's routes do not
                raw_object = parts.path.lstrip("/").partition("/")[2]
                self.path = urllib.parse.urlunsplit(parts._replace(path=f"/{bucket}/{raw_object}"))
            authorization = self.headers.get("Authorization")
            if name and bucket in owner.private and not owner.authorised(authorization):
                body = b'{"error": {"code": 401, "message": "Anonymous caller"}}'
                self.send_response(401)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if method != "HEAD":
                    self.wfile.write(body)
                    self._sent = len(body)
            else:
                if name and not parts.query:
                    self._extra = owner.object_headers(bucket, name)
                Router(self).handle("GET")
            start, end = _parse_range(self.headers.get("Range"))
            if start is not None and end is None:
                end = start + self._sent
            owner.record(
                GcsRequest(
                    method,
                    bucket,
                    name,
                    parts.query,
                    start,
                    end,
                    self._status,
                    0 if method == "HEAD" else self._sent,
                    authorization,
                )
            )

        def send_response(self, code: int, message: str | None = None) -> None:
            self._status = code
            super().send_response(code, message)

        def end_headers(self) -> None:
            if 200 <= self._status < 300:
                for key, value in self._extra.items():
                    self.send_header(key, value)
            super().end_headers()
            if self.command == "HEAD":  # the headers are out: drop the body
                self.wfile = _Discard(self.wfile)

        def send_header(self, keyword: str, value: str) -> None:
            if keyword.lower() == "content-length" and self.command != "HEAD":
                self._sent = int(value)
            super().send_header(keyword, value)

    return Handler


class GcsEmulator(ServerContext):
    """gcp-storage-emulator on ``127.0.0.1:<free port>`` (in memory) with a request log."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = 0
        self.log: list[GcsRequest] = []
        self.private: set[str] = set()
        #: Bearer tokens private buckets accept.
        self.tokens: set[str] = set()
        self.storage: Any = None
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> GcsEmulator:
        from gcp_storage_emulator.storage import Storage

        self.storage = Storage(use_memory_fs=True)
        server = ThreadingHTTPServer((self.host, 0), _handler_class(self))
        server.daemon_threads = True
        self._server = server
        self.port = int(server.server_address[1])
        self._thread = serve_in_thread(server, f"gcs-emulator:{self.port}")
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            stop_thread_server(server, self._thread)

    # -- authorisation and the headers GCS adds ----------------------------------------
    def authorised(self, authorization: str | None) -> bool:
        scheme, _, token = (authorization or "").partition(" ")
        return scheme.lower() == "bearer" and token in self.tokens

    def object_headers(self, bucket: str, name: str) -> dict[str, str]:
        """``Last-Modified`` and ``ETag`` of an object, as GCS sends them."""
        try:
            obj = self.storage.get_file_obj(bucket, name)
        except Exception:  # missing: the emulator answers 404 itself
            return {}
        generation = int(obj["generation"])
        return {
            "Last-Modified": formatdate(generation / 1e9, usegmt=True),
            "ETag": f'"{generation:x}"',
            "x-goog-generation": str(generation),
        }

    # -- log ---------------------------------------------------------------------------
    def record(self, request: GcsRequest) -> None:
        with self._lock:
            self.log.append(request)

    def reset(self) -> None:
        with self._lock:
            self.log = []

    def records(self, bucket: str | None = None) -> list[GcsRequest]:
        """Object reads (``GET`` / ``HEAD`` of an object), of ``bucket`` when given."""
        with self._lock:
            log = list(self.log)
        return [r for r in log if r.is_object_read and (bucket is None or r.bucket == bucket)]

    @property
    def requests(self) -> int:
        """Object reads since the last :meth:`reset`."""
        return len(self.records())

    # -- setup through the JSON API ------------------------------------------------------
    def _call(self, method: str, url: str, body: bytes, content_type: str) -> bytes:
        request = urllib.request.Request(
            url, data=body, method=method, headers={"Content-Type": content_type}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return bytes(response.read())

    def create_bucket(self, name: str, *, private: bool = False) -> None:
        """A bucket; ``private`` ones answer object reads only with a known bearer token."""
        body = json.dumps({"name": name}).encode()
        self._call("POST", f"{self.endpoint}/storage/v1/b", body, "application/json")
        if private:
            self.private.add(name)

    def upload(self, bucket: str, name: str, data: bytes) -> None:
        """One object, through the JSON API's media upload."""
        query = urllib.parse.urlencode({"uploadType": "media", "name": name})
        url = f"{self.endpoint}/upload/storage/v1/b/{bucket}/o?{query}"
        self._call("POST", url, data, "application/octet-stream")
