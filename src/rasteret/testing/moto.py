"""An S3 server on 127.0.0.1 (moto) that records every request it receives, for tests.

``MotoS3Server`` runs moto's S3 app in a background thread, like moto's own
``ThreadedMotoServer``, but wrapped in a small WSGI middleware that logs each request
*as the server received it*: method, path, query, ``Range``, the headers tests assert on
(``x-amz-request-payer``, whether ``Authorization`` was sent and by which access key),
the status and the body bytes sent. That log is the oracle for request counts,
coalescing, anonymous vs signed access and requester-pays. moto has no requester-pays
support, so the middleware enforces it for buckets created with ``requester_pays=True``:
object GETs / HEADs without ``x-amz-request-payer: requester`` get 403, as S3 answers
anyone but the bucket owner.

    with MotoS3Server() as s3:
        s3.create_bucket("public", public=True)
        s3.put("public", "a.tif", data)
        s3.reset()
        ...read s3://public/a.tif with endpoint=s3.endpoint...
        s3.log[0].header("range")

Needs ``moto[server]`` (a test dependency of rasteret).
"""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from rasteret.testing._serving import ServerContext, serve_in_thread, stop_thread_server

ACCESS_KEY = "AKIARASTERETTEST0001"
SECRET_KEY = "rasteret-test-secret"
_RECORDED_HEADERS = ("range", "x-amz-request-payer", "authorization", "host", "user-agent")
_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/")


@dataclass(frozen=True)
class S3Request:
    """One request as the server saw it; ``end`` is exclusive (``None`` without Range)."""

    method: str
    path: str  # percent-decoded, without the leading '/'
    query: str
    start: int | None
    end: int | None
    status: int
    bytes_sent: int
    headers: dict[str, str] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    @property
    def signed(self) -> bool:
        return "authorization" in self.headers or "X-Amz-Signature" in self.query

    @property
    def access_key(self) -> str | None:
        match = _CREDENTIAL.search(self.headers.get("authorization", ""))
        return match.group(1) if match else None


def _parse_range(value: str | None) -> tuple[int | None, int | None]:
    if not value or not value.startswith("bytes="):
        return None, None
    first, _, last = value[6:].partition("-")
    try:
        return int(first), int(last) + 1 if last else None
    except ValueError:
        return None, None


class _Recorder:
    def __init__(self, app: Any, owner: MotoS3Server) -> None:
        self.app = app
        self.owner = owner

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        headers = {
            name: environ[key]
            for name in _RECORDED_HEADERS
            if (key := "HTTP_" + name.upper().replace("-", "_")) in environ
        }
        status: list[int] = [0]
        bucket, slash, _ = (
            urllib.parse.unquote(environ.get("PATH_INFO", "")).lstrip("/").partition("/")
        )
        if (
            slash
            and bucket in self.owner.requester_pays
            and environ.get("REQUEST_METHOD") in ("GET", "HEAD")
            and environ.get("QUERY_STRING", "") == ""
            and headers.get("x-amz-request-payer", "").lower() != "requester"
        ):  # what S3 answers a non-owner that did not accept the charges (moto has no RP)
            body = b"<Error><Code>AccessDenied</Code><Message>requester pays</Message></Error>"
            start_response("403 Forbidden", [("Content-Length", str(len(body)))])
            return self._count(environ, headers, 403, [body])

        def recording_start(status_line: str, response_headers: Any, *args: Any) -> Any:
            status[0] = int(status_line.split(" ", 1)[0])
            return start_response(status_line, response_headers, *args)

        self.owner._enter()
        try:
            if self.owner.latency:
                time.sleep(self.owner.latency)
            response = self.app(environ, recording_start)
            try:
                chunks = list(response)
            finally:
                close = getattr(response, "close", None)
                if close is not None:
                    close()
        finally:
            self.owner._leave()
        return self._count(environ, headers, status[0], chunks)

    def _count(
        self, environ: dict[str, Any], headers: dict[str, str], status: int, chunks: list[bytes]
    ) -> list[bytes]:
        """Log the request before its response leaves (so a client never sees a response
        the log does not have yet)."""
        method = environ.get("REQUEST_METHOD", "")
        sent = 0 if method == "HEAD" else sum(len(c) for c in chunks)
        start, end = _parse_range(headers.get("range"))
        if start is not None and end is None:
            end = start + sent
        path = urllib.parse.unquote(environ.get("PATH_INFO", "")).lstrip("/")
        query = environ.get("QUERY_STRING", "")
        self.owner._record(S3Request(method, path, query, start, end, status, sent, headers))
        return chunks


class MotoS3Server(ServerContext):
    """moto's S3 on ``127.0.0.1:<free port>`` with a server-side request log."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, region: str = "us-east-1") -> None:
        self.host = host
        self.port = port
        self.region = region
        self.log: list[S3Request] = []
        self.requester_pays: set[str] = set()
        #: Seconds every request waits before moto answers it (first-byte latency).
        self.latency = 0.0
        #: Most requests in progress at once since the last :meth:`reset`.
        self.max_in_flight = 0
        self._in_flight = 0
        self._lock = threading.Lock()
        self._server: Any = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> MotoS3Server:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        class QuietHandler(MotoRequestHandler):  # type: ignore[misc,valid-type]
            def log_request(self, *args: Any, **kwargs: Any) -> None:
                pass

        app = _Recorder(DomainDispatcherApplication(create_backend_app), self)
        self._server = make_server(
            self.host, self.port, app, threaded=True, request_handler=QuietHandler
        )
        self.port = self._server.server_address[1]
        self._thread = serve_in_thread(self._server, f"moto-s3:{self.port}")
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            stop_thread_server(server, self._thread)

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    # -- log ----------------------------------------------------------------------------
    def _record(self, record: S3Request) -> None:
        with self._lock:
            self.log.append(record)

    def _enter(self) -> None:
        with self._lock:
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)

    def _leave(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def reset(self) -> None:
        with self._lock:
            self.log = []
            self.max_in_flight = self._in_flight

    def records(self, method: str | None = None, path: str | None = None) -> list[S3Request]:
        with self._lock:
            log = list(self.log)
        return [
            r
            for r in log
            if (method is None or r.method == method) and (path is None or r.path == path)
        ]

    @property
    def requests(self) -> int:
        return len(self.records())

    @property
    def bytes_sent(self) -> int:
        return sum(r.bytes_sent for r in self.records())

    # -- setup (through boto3, which moto depends on) ----------------------------------
    def client(self, region: str | None = None) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=region or self.region,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )

    def create_bucket(
        self,
        name: str,
        *,
        public: bool = False,
        requester_pays: bool = False,
        region: str | None = None,
    ) -> None:
        """A bucket; ``public`` adds a policy letting anyone ``s3:GetObject``."""
        region = region or self.region
        client = self.client(region)
        if region == "us-east-1":
            client.create_bucket(Bucket=name)
        else:
            client.create_bucket(
                Bucket=name, CreateBucketConfiguration={"LocationConstraint": region}
            )
        if public:
            policy = {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": "*",
                        "Action": "s3:GetObject",
                        "Resource": f"arn:aws:s3:::{name}/*",
                    }
                ],
            }
            client.put_bucket_policy(Bucket=name, Policy=json.dumps(policy))
        if requester_pays:  # moto has no requester-pays: the middleware enforces it
            self.requester_pays.add(name)

    def put(self, bucket: str, key: str, data: bytes) -> None:
        self.client().put_object(Bucket=bucket, Key=key, Body=data)
