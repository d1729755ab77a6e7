"""URL → :class:`Route`: which store (bucket / container / origin) an object lives in.

Pure parsing: no I/O, and :func:`route` reads no module state (registered store prefixes
are an argument; :meth:`RangeReader.route <rasteret.fetch.RangeReader.route>` passes the
registry's). Understood spellings:

* S3: ``s3://bucket/key`` (``s3a://``), virtual-host ``https://bucket.s3[.region].amazonaws.com/key``
  (also ``s3-region``, ``s3.dualstack.region``), path-style
  ``https://s3[.region].amazonaws.com/bucket/key``, and path-style URLs on a configured
  S3-compatible endpoint (``StoreOptions.endpoint`` of an ``s3://`` prefix, or
  ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``): ``http://127.0.0.1:9000/bucket/key``.
* GCS: ``gs://bucket/key`` (``gcs://``), ``https://storage.googleapis.com/bucket/key``,
  ``https://bucket.storage.googleapis.com/key``.
* Azure Blob: ``https://account.blob.core.windows.net/container/path`` (Planetary
  Computer hrefs; nothing is stripped from the path), ``…dfs.core.windows.net``,
  ``az://container/path`` / ``azure://`` (account from the store options / environment),
  ``abfs[s]://container@account.dfs.core.windows.net/path``. A query on any of them is
  a SAS token (``Route.query``): the store for the container carries it.
* Hugging Face Hub: ``hf://datasets/<org>/<name>[@<revision>]/<path>`` (also
  ``hf://spaces/…`` and model repos ``hf://<org>/<name>/…``) read from the file's
  resolve URL, ``{HF_ENDPOINT or https://huggingface.co}/datasets/<org>/<name>/resolve/
  <revision or main>/<path>`` (:func:`hf_resolve_url`): an HTTP route, one store per
  repository revision. The route's ``url`` is that resolve URL.
* Anything else ``http(s)://`` (one store per origin), ``file://`` and plain paths.
* A URL under a prefix in ``custom_prefixes`` (the longest wins): kind ``"custom"``.

The store (obstore) for a route is built in :mod:`rasteret.fetch.stores`.
"""

from __future__ import annotations

import os
import re
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from rasteret.fetch.stores import get_store, mark_obstore_used, obstore_usable

Kind = Literal["local", "http", "cloud", "custom"]
Provider = Literal["local", "http", "s3", "gcs", "azure", "custom"]
CLOUD_SCHEMES = frozenset({"s3", "s3a", "gs", "gcs", "az", "azure", "abfs", "abfss", "adl"})
HF_DEFAULT_ENDPOINT = "https://huggingface.co"
_HF_REPO_TYPES = ("datasets", "spaces")

_S3_VHOST = re.compile(
    r"^(?P<bucket>.+?)\.s3(?:[.-](?:dualstack\.)?(?P<region>[a-z]{2}(?:-[a-z]+)+-\d+))?"
    r"\.amazonaws\.com$"
)
_S3_PATH_HOST = re.compile(
    r"^s3(?:[.-](?:dualstack\.)?(?P<region>[a-z]{2}(?:-[a-z]+)+-\d+))?\.amazonaws\.com$"
)
_GCS_VHOST = re.compile(r"^(?P<bucket>.+)\.storage\.googleapis\.com$")
_AZURE_HOST = re.compile(r"^(?P<account>[a-z0-9]+)\.(?:blob|dfs)\.core\.windows\.net$")

__all__ = [
    "HF_DEFAULT_ENDPOINT",
    "Route",
    "get_store",
    "hf_resolve_url",
    "mark_obstore_used",
    "obstore_usable",
    "route",
    "s3_endpoints",
]


@dataclass(frozen=True)
class Route:
    """Where a URL lives: ``key`` names its store (bucket / container / origin), ``path``
    the object in it. ``canonical`` is the provider URL of the object (``s3://bucket/key``
    for every S3 spelling), used to match store options."""

    url: str
    kind: Kind
    key: str
    path: str
    provider: Provider = "http"
    bucket: str = ""  # S3 / GCS bucket, Azure container
    account: str = ""  # Azure storage account
    region: str | None = None  # S3 region named by the URL
    endpoint: str | None = None  # S3-compatible endpoint the URL was found on
    query: str = ""  # an Azure SAS the URL carries (a container token, used by the store)

    @property
    def is_local(self) -> bool:
        return self.kind == "local"

    @property
    def canonical(self) -> str:
        if self.kind in ("http", "local", "custom"):
            return self.url
        return f"{self.key}/{self.path}"


def route(
    url: str, endpoints: tuple[str, ...] | None = None, custom_prefixes: Iterable[str] = ()
) -> Route:
    """Parse a URL or a local path into a :class:`Route` (no I/O, no store).

    ``endpoints``: S3-compatible endpoints whose path-style URLs are read as S3
    (default: ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``). ``custom_prefixes``: URL
    prefixes served by registered stores (``registered_prefixes()`` of
    :mod:`rasteret.fetch.stores`); a URL under one routes to it.
    """
    custom = _custom_prefix(url, custom_prefixes)
    if custom is not None:
        return Route(url, "custom", custom, url[len(custom) :].lstrip("/"), "custom")
    if url.startswith("hf://"):
        return _parse_hf(url, hf_endpoint())
    if endpoints is None:
        endpoints = env_s3_endpoints()
    return _parse(url, endpoints)


def hf_endpoint() -> str:
    """The Hugging Face Hub endpoint: ``$HF_ENDPOINT`` (a mirror), else the public Hub."""
    return (os.environ.get("HF_ENDPOINT") or HF_DEFAULT_ENDPOINT).rstrip("/")


def hf_resolve_url(url: str, endpoint: str | None = None) -> str:
    """The download (resolve) URL of ``hf://[datasets/|spaces/]<org>/<name>[@<rev>]/<path>``
    on ``endpoint`` (default :func:`hf_endpoint`).

    ``<rev>`` is a branch, tag or commit (default ``main``; ``refs/pr/1`` may be written
    percent-encoded, as ``huggingface_hub`` does). Raises ``ValueError`` naming the URL
    when it names no file of a repository.
    """
    base, path = _hf_split(url, endpoint or hf_endpoint())
    return f"{base}/{urllib.parse.quote(path)}"


def _hf_split(url: str, endpoint: str) -> tuple[str, str]:
    """``(repository revision base URL, file path)`` of an ``hf://`` URL."""
    rest = url[len("hf://") :].split("?", 1)[0].split("#", 1)[0]
    parts = [p for p in rest.split("/") if p]
    kind = parts.pop(0) if parts and parts[0] in _HF_REPO_TYPES else ""
    if len(parts) < 3:
        raise ValueError(
            f"{url}: not a file of a Hugging Face repository "
            "(expected hf://datasets/<org>/<name>[@<revision>]/<path>)"
        )
    org, name, path = parts[0], parts[1], "/".join(parts[2:])
    name, _, revision = name.partition("@")
    if not revision and "@" in org:
        raise ValueError(f"{url}: a revision follows the repository name (<org>/<name>@<rev>)")
    revision = urllib.parse.quote(urllib.parse.unquote(revision or "main"), safe="")
    repo = "/".join(p for p in (kind, org, name) if p)
    return f"{endpoint}/{repo}/resolve/{revision}", path


@lru_cache(maxsize=1024)
def _parse_hf(url: str, endpoint: str) -> Route:
    base, path = _hf_split(url, endpoint)
    return Route(f"{base}/{urllib.parse.quote(path)}", "http", base, path, "http")


def env_s3_endpoints() -> tuple[str, ...]:
    found = (os.environ.get("AWS_ENDPOINT_URL_S3"), os.environ.get("AWS_ENDPOINT_URL"))
    return tuple(e.rstrip("/") for e in found if e)


def s3_endpoints(stores: tuple[tuple[str, Any], ...]) -> tuple[str, ...]:
    """Endpoints configured for S3 prefixes in ``FetchConfig.stores``, then the env ones."""
    configured = [
        options.endpoint
        for prefix, options in stores
        if options.endpoint and prefix.startswith(("s3://", "s3a://"))
    ]
    return tuple(dict.fromkeys([*configured, *env_s3_endpoints()]))


@lru_cache(maxsize=4096)
def _parse(url: str, endpoints: tuple[str, ...]) -> Route:
    parsed = urllib.parse.urlsplit(url)
    scheme = parsed.scheme.lower()
    if scheme in ("http", "https"):
        return _parse_http(url, parsed, endpoints)
    if scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise ValueError(f"{url}: file URLs with a remote host are not supported")
        return Route(url, "local", "file", _local_path(urllib.parse.unquote(parsed.path)), "local")
    if scheme in ("s3", "s3a"):
        return _s3(url, parsed.netloc, parsed.path.lstrip("/"))
    if scheme in ("gs", "gcs"):
        return Route(url, "cloud", f"gs://{parsed.netloc}", parsed.path.lstrip("/"), "gcs",
                     bucket=parsed.netloc)  # fmt: skip
    if scheme in ("az", "azure", "abfs", "abfss", "adl"):
        container, _, account = parsed.netloc.partition("@")
        match = _AZURE_HOST.match(account.lower()) if account else None
        found = _azure(url, match.group("account") if match else "", container, parsed.path)
        # a SAS token (pre-signed, or appended by a signer): the store carries it
        return replace(found, query=parsed.query) if parsed.query else found
    if scheme and len(scheme) > 1:  # not a Windows drive letter
        raise ValueError(f"{url}: unsupported URL scheme {scheme!r}")
    return Route(url, "local", "file", _local_path(url), "local")


def _parse_http(url: str, parsed: urllib.parse.SplitResult, endpoints: tuple[str, ...]) -> Route:
    host = (parsed.hostname or "").lower()
    path = urllib.parse.unquote(parsed.path).lstrip("/")
    if parsed.query:
        match = _AZURE_HOST.match(host)
        if match:  # a SAS token: it grants access to the container, the store carries it
            unsigned = _azure(url, match.group("account"), *_split_container(path))
            return replace(unsigned, query=parsed.query)
        # other signed URLs: the query belongs to the object, one store per URL
        return Route(url, "http", url, "", "http")
    if match := _S3_PATH_HOST.match(host):
        bucket, _, key = path.partition("/")
        if bucket:
            return _s3(url, bucket, key, match.group("region"))
    elif match := _S3_VHOST.match(host):
        return _s3(url, match.group("bucket"), path, match.group("region"))
    elif host == "storage.googleapis.com":
        bucket, _, key = path.partition("/")
        if bucket:
            return Route(url, "cloud", f"gs://{bucket}", key, "gcs", bucket=bucket)
    elif match := _GCS_VHOST.match(host):
        bucket = match.group("bucket")
        return Route(url, "cloud", f"gs://{bucket}", path, "gcs", bucket=bucket)
    elif match := _AZURE_HOST.match(host):
        return _azure(url, match.group("account"), *_split_container(path))
    base = f"{parsed.scheme.lower()}://{parsed.netloc}"
    for endpoint in endpoints:
        if url.startswith(endpoint + "/"):
            rest = urllib.parse.unquote(urllib.parse.urlsplit(url).path)
            rest = rest[len(urllib.parse.urlsplit(endpoint).path) :].lstrip("/")
            bucket, _, key = rest.partition("/")
            if bucket and key:
                return _s3(url, bucket, key, endpoint=endpoint)
    return Route(url, "http", base, path, "http")


def _split_container(path: str) -> tuple[str, str]:
    container, _, rest = path.partition("/")
    return container, rest


def _s3(
    url: str, bucket: str, key: str, region: str | None = None, endpoint: str | None = None
) -> Route:
    return Route(url, "cloud", f"s3://{bucket}", key, "s3", bucket=bucket, region=region,
                 endpoint=endpoint)  # fmt: skip


def _azure(url: str, account: str, container: str, path: str) -> Route:
    path = path.lstrip("/")
    key = f"https://{account}.blob.core.windows.net/{container}" if account else f"az://{container}"
    return Route(url, "cloud", key, path, "azure", bucket=container, account=account)


def _local_path(path: str) -> str:
    return str(Path(path).expanduser().absolute()).lstrip("/")


def _custom_prefix(url: str, prefixes: Iterable[str]) -> str | None:
    """The longest of ``prefixes`` that ``url`` is (or lies under), else ``None``."""
    best = None
    for prefix in prefixes:
        prefix = prefix.rstrip("/")
        if (url == prefix or url.startswith(prefix + "/")) and (
            best is None or len(prefix) > len(best)
        ):
            best = prefix
    return best
