"""URL → (obstore store, path): one store per origin / bucket per process.

Stores are created lazily (never at import) and forgotten after a fork: the registry
remembers the pid that built it. obstore 0.12 cannot be used at all in a forked child of
a process that already used it (its Tokio runtime's threads do not survive ``fork``), so
:func:`obstore_usable` tells the reader to switch to the pure-Python transport there.
"""

from __future__ import annotations

import os
import threading
import urllib.parse
from collections import OrderedDict
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from rasteret.fetch.config import FetchConfig

Kind = Literal["local", "http", "cloud", "custom"]
CLOUD_SCHEMES = frozenset({"s3", "s3a", "gs", "gcs", "az", "azure", "abfs", "abfss", "adl"})
_QUERY_STORES_MAX = 256


@dataclass(frozen=True)
class Route:
    """Where a URL lives: ``key`` names its store (origin / bucket), ``path`` the object in it."""

    url: str
    kind: Kind
    key: str
    path: str

    @property
    def is_local(self) -> bool:
        return self.kind == "local"


def route(url: str) -> Route:
    """Parse a URL or a local path into a :class:`Route` (no I/O, no store)."""
    custom = _registered_prefix(url)
    if custom is not None:
        return Route(url, "custom", custom, url[len(custom) :].lstrip("/"))
    parsed = urllib.parse.urlsplit(url)
    scheme = parsed.scheme.lower()
    if scheme in ("http", "https"):
        path = urllib.parse.unquote(parsed.path).lstrip("/")
        if parsed.query:  # signed URLs: the query belongs to the object, so one store per URL
            return Route(url, "http", url, "")
        return Route(url, "http", f"{scheme}://{parsed.netloc}", path)
    if scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise ValueError(f"{url}: file URLs with a remote host are not supported")
        return Route(url, "local", "file", _local_path(urllib.parse.unquote(parsed.path)))
    if scheme in CLOUD_SCHEMES:
        return Route(url, "cloud", f"{scheme}://{parsed.netloc}", parsed.path.lstrip("/"))
    if scheme and len(scheme) > 1:  # not a Windows drive letter
        raise ValueError(f"{url}: unsupported URL scheme {scheme!r}")
    return Route(url, "local", "file", _local_path(url))


def _local_path(path: str) -> str:
    return str(Path(path).expanduser().absolute()).lstrip("/")


# -- user-registered stores (credentials etc.) ---------------------------------------------------
_custom: dict[str, Any] = {}


def register_store(prefix: str, store: Any) -> None:
    """Serve every URL starting with ``prefix`` (e.g. ``"s3://my-bucket"``) from ``store``."""
    _custom[prefix.rstrip("/")] = store


def unregister_store(prefix: str) -> None:
    _custom.pop(prefix.rstrip("/"), None)


def _registered_prefix(url: str) -> str | None:
    best = None
    for prefix in _custom:
        if (url == prefix or url.startswith(prefix + "/")) and (
            best is None or len(prefix) > len(best)
        ):
            best = prefix
    return best


# -- the registry -------------------------------------------------------------------------------
_lock = threading.Lock()
_pid = os.getpid()
_stores: dict[tuple[str, FetchConfig], Any] = {}
_query_stores: OrderedDict[tuple[str, FetchConfig], Any] = OrderedDict()
_graveyard: list[Any] = []  # stores inherited over fork: never used, never dropped
_obstore_pid: int | None = None  # the process that first used obstore through us


def obstore_usable() -> bool:
    """False in a forked child of a process that used obstore (it would hang)."""
    return _obstore_pid is None or _obstore_pid == os.getpid()


def mark_obstore_used() -> None:
    global _obstore_pid
    if _obstore_pid is None:
        _obstore_pid = os.getpid()


def get_store(r: Route, config: FetchConfig) -> Any:
    """The obstore store for a route (created on first use, one per origin and config)."""
    if r.kind == "custom":
        mark_obstore_used()
        return _custom[r.key]
    _check_pid()
    cache = _query_stores if r.kind == "http" and r.path == "" and "?" in r.key else _stores
    cache_key = (r.key, config)
    with _lock:
        store = cache.get(cache_key)
        if store is None:
            mark_obstore_used()
            store = _build_store(r, config)
            cache[cache_key] = store
            if cache is _query_stores and len(cache) > _QUERY_STORES_MAX:
                _query_stores.popitem(last=False)
        elif cache is _query_stores:
            _query_stores.move_to_end(cache_key)
    return store


def _check_pid() -> None:
    global _pid
    if _pid != os.getpid():
        with _lock:
            if _pid != os.getpid():
                _graveyard.extend(_stores.values())
                _graveyard.extend(_query_stores.values())
                _stores.clear()
                _query_stores.clear()
                _pid = os.getpid()


def _client_options(config: FetchConfig, **extra: Any) -> dict[str, Any]:
    return {
        "timeout": timedelta(seconds=config.request_timeout),
        "connect_timeout": timedelta(seconds=config.connect_timeout),
        **extra,
    }


# rasteret retries itself (counted, bounded, also on short bodies): obstore must not.
_NO_RETRY: dict[str, Any] = {"max_retries": 0, "retry_timeout": timedelta(seconds=1)}


def _build_store(r: Route, config: FetchConfig) -> Any:
    from obstore.store import HTTPStore, LocalStore, from_url

    if r.kind == "local":
        return LocalStore()
    if r.kind == "http":
        host = urllib.parse.urlsplit(r.key).hostname or ""
        allow_http = r.key.startswith("http://")
        options = _client_options(config, allow_http=allow_http)
        if host in ("127.0.0.1", "localhost", "::1"):
            options["pool_idle_timeout"] = timedelta(seconds=20)
        return HTTPStore.from_url(r.key, client_options=options, retry_config=_NO_RETRY)
    # cloud buckets: anonymous access for now (credentials come with a later issue)
    kwargs: dict[str, Any] = {"skip_signature": True}
    scheme = r.key.split("://", 1)[0]
    if scheme in ("s3", "s3a"):
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        if region:
            kwargs["region"] = region
    return from_url(r.key, client_options=_client_options(config), retry_config=_NO_RETRY, **kwargs)


def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)
