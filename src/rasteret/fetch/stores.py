"""Route → obstore store: one per bucket / container / origin (and settings) per process.

Stores are created lazily (never at import) and forgotten after a fork: the registry
remembers the pid that built it. obstore 0.12 cannot be used at all in a forked child of
a process that already used it (its Tokio runtime's threads do not survive ``fork``), so
:func:`obstore_usable` tells the reader to switch to the pure-Python transport there —
also when other code than rasteret started obstore's runtime before the fork
(:mod:`rasteret._fork`).

Access is anonymous unless credentials are configured (store options) or present in the
environment; S3 regions come from the options, the URL, ``AWS_REGION`` or one HEAD
request per bucket (``x-amz-bucket-region``). Signers run here, at read time.
Store options unpickled without their credentials (``withheld``, see
:mod:`rasteret.fetch.options`) get this process's own: those of its ``configure(stores=...)``
(:func:`set_local_stores`) for the same URL, else the environment's.

The registry of user stores (:func:`register_store`) lives here, once per process:
readers pass :func:`registered_prefixes` to the pure :func:`~rasteret.fetch.routing.route`.
"""

from __future__ import annotations

import http.client
import os
import threading
import urllib.parse
from collections import OrderedDict
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from rasteret._fork import runtime_inherited
from rasteret.fetch.options import StoreOptions, options_for, with_local_credentials

if TYPE_CHECKING:
    from rasteret.fetch.config import FetchConfig
    from rasteret.fetch.routing import Route

_QUERY_STORES_MAX = 256
_AWS_CREDENTIAL_ENV = (
    "AWS_ACCESS_KEY_ID",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
)
_AZURE_CREDENTIAL_ENV = (
    "AZURE_STORAGE_ACCOUNT_KEY",
    "AZURE_STORAGE_ACCESS_KEY",
    "AZURE_STORAGE_SAS_KEY",
    "AZURE_STORAGE_SAS_TOKEN",
    "AZURE_STORAGE_TOKEN",
    "AZURE_CLIENT_SECRET",
    "AZURE_FEDERATED_TOKEN_FILE",
)
_GCS_CREDENTIAL_ENV = (
    "GOOGLE_APPLICATION_CREDENTIALS",
    "GOOGLE_SERVICE_ACCOUNT",
    "GOOGLE_SERVICE_ACCOUNT_PATH",
    "GOOGLE_SERVICE_ACCOUNT_KEY",
)
_GCS_BASE_URL_KEYS = ("base_url", "google_base_url")
_CREDENTIAL_WORDS = ("key", "secret", "token", "sas", "password", "service_account", "credential")
_LOCALHOSTS = frozenset({"127.0.0.1", "localhost", "::1"})

# rasteret retries itself (counted, bounded, also on short bodies): obstore must not.
_NO_RETRY: dict[str, Any] = {"max_retries": 0, "retry_timeout": timedelta(seconds=1)}

# -- process state ------------------------------------------------------------------------------
_lock = threading.Lock()
_discovery_lock = threading.Lock()
_pid = os.getpid()
_stores: dict[tuple[Any, ...], Any] = {}
_query_stores: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
_regions: dict[tuple[str, str | None], str | None] = {}
_graveyard: list[Any] = []  # stores inherited over fork: never used, never dropped
_obstore_pid: int | None = None  # the process that first used obstore through us


_local_stores: tuple[tuple[str, StoreOptions], ...] = ()  # this process's configure(stores=)


def set_local_stores(stores: tuple[tuple[str, StoreOptions], ...]) -> None:
    """Record the stores this process configured (``configure()``): where options
    unpickled without credentials take them from."""
    global _local_stores
    _local_stores = stores


# -- user-registered stores: the one registry (any obstore store, served for a URL prefix) ------
_custom: dict[str, Any] = {}
_custom_prefixes: tuple[str, ...] = ()


def register_store(prefix: str, store: Any) -> None:
    """Serve every URL starting with ``prefix`` (e.g. ``"s3://my-bucket"``) from ``store``
    (any obstore store), for every reader of this process."""
    global _custom_prefixes
    with _lock:
        _custom[prefix.rstrip("/")] = store
        _custom_prefixes = tuple(_custom)


def unregister_store(prefix: str) -> None:
    """Stop serving ``prefix`` from a registered store (no error when it is not registered)."""
    global _custom_prefixes
    with _lock:
        _custom.pop(prefix.rstrip("/"), None)
        _custom_prefixes = tuple(_custom)


def registered_prefixes() -> tuple[str, ...]:
    """The URL prefixes served by registered stores (what readers pass to ``route``)."""
    return _custom_prefixes


def obstore_usable() -> bool:
    """False in a forked child of a process that used obstore — through rasteret or
    through any other code (:mod:`rasteret._fork`): it would hang."""
    if runtime_inherited():
        return False
    return _obstore_pid is None or _obstore_pid == os.getpid()


def mark_obstore_used() -> None:
    global _obstore_pid
    if _obstore_pid is None:
        _obstore_pid = os.getpid()


def store_options(r: Route, config: FetchConfig) -> StoreOptions:
    """The merged store options that apply to ``r`` (by its URL and canonical URL), with
    this process's credentials when the pickle they came from withheld them."""
    options = options_for(config.stores, r.url, r.canonical)
    if options.withheld:
        local = options_for(_local_stores, r.url, r.canonical)
        options = with_local_credentials(options, local)
    return options


# -- lookup -------------------------------------------------------------------------------------
def get_store(r: Route, config: FetchConfig) -> Any:
    """The obstore store for a route (created on first use, one per store key and settings)."""
    if r.kind == "custom":
        store = _custom.get(r.key)
        if store is None:
            raise ValueError(f"{r.url}: no store is registered for {r.key!r}")
        mark_obstore_used()
        return store
    _check_pid()
    options = store_options(r, config)
    cache = _query_stores if r.kind == "http" and r.path == "" and "?" in r.key else _stores
    cache_key = _cache_key(r, options, config)
    with _lock:
        store = cache.get(cache_key)
        if store is not None:
            if cache is _query_stores:
                _query_stores.move_to_end(cache_key)
            return store
    store = _build_store(r, config, options)  # outside the lock: may discover a region
    with _lock:
        store = cache.setdefault(cache_key, store)
        if cache is _query_stores and len(cache) > _QUERY_STORES_MAX:
            _query_stores.popitem(last=False)
    return store


def resolve(r: Route, config: FetchConfig) -> tuple[Any, str]:
    """``(store, path)`` to read ``r`` with, after signing it when a signer applies."""
    if r.kind not in ("http", "cloud"):
        return get_store(r, config), r.path
    options = store_options(r, config)
    if r.query and r.provider == "azure":  # a pre-signed Azure URL: use its SAS as is
        return _sas_store(r, config, options, r.query), r.path
    signer = options.signer or config.signer
    if signer is None:
        return get_store(r, config), r.path
    signed = signer(r.url)
    if not isinstance(signed, str):
        raise TypeError(f"signer {signer!r} returned {type(signed).__name__}, not a URL string")
    if signed == r.url:
        return get_store(r, config), r.path
    from rasteret.fetch.routing import route

    sr = route(signed, (), registered_prefixes())
    if sr.provider == "azure" and sr.query:
        # a SAS on any spelling (az://, azure://, abfs[s]://, https://…blob…): a container
        # token, carried by the container's store with this URL's options (endpoint, account)
        return _sas_store(sr, config, options, sr.query), sr.path
    return get_store(sr, config.with_(stores=(("", options),), signer=None)), sr.path


async def resolve_async(r: Route, config: FetchConfig) -> tuple[Any, str]:
    """:func:`resolve`, building a new S3 store (which may discover its region with a
    HEAD request) in a worker thread so the event loop never blocks on it."""
    if r.provider == "s3" and not _is_cached(r, config):
        import asyncio

        return await asyncio.to_thread(resolve, r, config)
    return resolve(r, config)


def _is_cached(r: Route, config: FetchConfig) -> bool:
    options = store_options(r, config)
    return _cache_key(r, options, config) in _stores and _pid == os.getpid()


def _cache_key(r: Route, options: StoreOptions, config: FetchConfig) -> tuple[Any, ...]:
    # one store per bucket / origin and settings, whichever spelling of the URL came first
    return (r.key, options.endpoint or r.endpoint, options, _client_key(config))


def _sas_store(r: Route, config: FetchConfig, options: StoreOptions, sas: str) -> Any:
    _check_pid()
    key = ("sas", r.key, sas, options, _client_key(config))
    with _lock:
        store = _query_stores.get(key)
        if store is not None:
            _query_stores.move_to_end(key)
            return store
    store = _build_azure(r, config, options, sas=sas)
    with _lock:
        store = _query_stores.setdefault(key, store)
        if len(_query_stores) > _QUERY_STORES_MAX:
            _query_stores.popitem(last=False)
    return store


def _client_key(config: FetchConfig) -> tuple[float, float]:
    return (config.request_timeout, config.connect_timeout)


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


# -- building -----------------------------------------------------------------------------------
def _client_options(config: FetchConfig, options: StoreOptions, url: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "timeout": timedelta(seconds=config.request_timeout),
        "connect_timeout": timedelta(seconds=config.connect_timeout),
    }
    if url:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme == "http":
            out["allow_http"] = True
        if (parts.hostname or "") in _LOCALHOSTS:
            out["pool_idle_timeout"] = timedelta(seconds=20)
    out.update(options.client_options_dict())
    return out


def _has_credentials(options: StoreOptions, env_names: tuple[str, ...]) -> bool:
    if options.credential_provider is not None or options.withheld:
        return True  # withheld: configured where pickled, so never read anonymously here
    for name, value in options.config_dict().items():
        lowered = name.lower()
        if value and lowered != "skip_signature" and any(w in lowered for w in _CREDENTIAL_WORDS):
            return True
    return any(os.environ.get(name) for name in env_names)


def _build_store(r: Route, config: FetchConfig, options: StoreOptions) -> Any:
    mark_obstore_used()
    if r.kind == "local":
        from obstore.store import LocalStore

        return LocalStore()
    if r.kind == "http":
        from obstore.store import HTTPStore

        from rasteret.fetch.hub_auth import hub_headers

        client = _client_options(config, options, r.key)
        headers = hub_headers(r.key, client.get("default_headers"))
        if headers:  # the Hugging Face token, on the Hub's endpoint (hub_auth)
            client["default_headers"] = headers
        return HTTPStore.from_url(r.key, client_options=client, retry_config=_NO_RETRY)
    if r.provider == "s3":
        return _build_s3(r, config, options)
    if r.provider == "azure":
        return _build_azure(r, config, options)
    if r.provider == "gcs":
        return _build_gcs(r, config, options)
    raise ValueError(f"{r.url}: no store for provider {r.provider!r}")


def _build_s3(r: Route, config: FetchConfig, options: StoreOptions) -> Any:
    from obstore.store import S3Store

    kwargs: dict[str, Any] = options.config_dict()
    endpoint = options.endpoint or r.endpoint or kwargs.pop("endpoint", None)
    endpoint = endpoint or _env("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
    if endpoint:
        kwargs["endpoint"] = endpoint
        kwargs.setdefault("virtual_hosted_style_request", False)
    anonymous = options.anonymous
    if anonymous is None:
        anonymous = not (options.requester_pays or _has_credentials(options, _AWS_CREDENTIAL_ENV))
    if anonymous:
        if options.requester_pays:
            raise ValueError(
                f"{r.url}: requester-pays buckets need credentials; set a credential_provider "
                "or AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, not anonymous=True"
            )
        kwargs["skip_signature"] = True
    if options.requester_pays:
        kwargs["request_payer"] = True
    region = (
        options.region
        or r.region
        or kwargs.get("region")
        or os.environ.get("AWS_REGION")
        or os.environ.get("AWS_DEFAULT_REGION")
        or discover_region(r.bucket, endpoint, config.connect_timeout)
    )
    if region:
        kwargs["region"] = region
    return S3Store(
        r.bucket,
        client_options=_client_options(config, options, endpoint),
        retry_config=_NO_RETRY,
        credential_provider=options.credential_provider,
        **kwargs,
    )


def _build_gcs(r: Route, config: FetchConfig, options: StoreOptions) -> Any:
    from obstore.store import GCSStore

    kwargs: dict[str, Any] = options.config_dict()
    base_url = _gcs_base_url(options.endpoint, kwargs)
    for name in _GCS_BASE_URL_KEYS:
        kwargs.pop(name, None)
    if base_url:
        kwargs["base_url"] = base_url
    anonymous = options.anonymous
    if anonymous is None:
        anonymous = not _has_credentials(options, _GCS_CREDENTIAL_ENV)
    if anonymous:
        kwargs["skip_signature"] = True
    return GCSStore(
        r.bucket,
        client_options=_client_options(config, options, base_url),
        retry_config=_NO_RETRY,
        credential_provider=options.credential_provider,
        **kwargs,
    )


def _gcs_base_url(endpoint: str | None, config: dict[str, Any]) -> str | None:
    """The GCS API base URL for a store: its ``endpoint``, else ``base_url`` /
    ``google_base_url`` in its config, else ``GOOGLE_BASE_URL``, else
    ``STORAGE_EMULATOR_HOST`` (the emulator convention of Google's client libraries,
    ``http://`` assumed when it has no scheme); ``None``: Google's own."""
    found = endpoint or next((config[k] for k in _GCS_BASE_URL_KEYS if config.get(k)), None)
    found = found or _env("GOOGLE_BASE_URL")
    if not found and (host := _env("STORAGE_EMULATOR_HOST")):
        found = host if "://" in host else f"http://{host}"
    return str(found).rstrip("/") if found else None


def _build_azure(
    r: Route, config: FetchConfig, options: StoreOptions, sas: str | None = None
) -> Any:
    from obstore.store import AzureStore

    kwargs: dict[str, Any] = options.config_dict()
    if r.account:
        kwargs.setdefault("account_name", r.account)
    if options.endpoint:
        kwargs["endpoint"] = options.endpoint
    if sas is not None:
        kwargs["sas_key"] = sas
        anonymous = False
    else:
        anonymous = options.anonymous
        if anonymous is None:
            anonymous = not _has_credentials(options, _AZURE_CREDENTIAL_ENV)
    if anonymous:
        kwargs["skip_signature"] = True
    endpoint = kwargs.get("endpoint") or os.environ.get("AZURITE_BLOB_STORAGE_URL")
    return AzureStore(
        r.bucket,
        client_options=_client_options(config, options, endpoint),
        retry_config=_NO_RETRY,
        credential_provider=None if sas is not None else options.credential_provider,
        **kwargs,
    )


def _env(*names: str) -> str | None:
    for name in names:
        value = os.environ.get(name)
        if value:
            return value
    return None


# -- S3 region discovery ------------------------------------------------------------------------
def discover_region(bucket: str, endpoint: str | None = None, timeout: float = 5.0) -> str | None:
    """The bucket's region from one ``HEAD`` (header ``x-amz-bucket-region``), cached per
    process; ``None`` when the server does not say (obstore then uses ``us-east-1``)."""
    key = (bucket, endpoint)
    with _discovery_lock:  # concurrent first reads of a bucket ask once
        with _lock:
            if key in _regions:
                return _regions[key]
        region = _head_bucket_region(bucket, endpoint, timeout)
        with _lock:
            _regions[key] = region
        return region


def _head_bucket_region(bucket: str, endpoint: str | None, timeout: float) -> str | None:
    base = endpoint or "https://s3.amazonaws.com"
    parts = urllib.parse.urlsplit(f"{base.rstrip('/')}/{urllib.parse.quote(bucket)}")
    https = parts.scheme == "https"
    conn_type = http.client.HTTPSConnection if https else http.client.HTTPConnection
    region = None
    try:
        conn = conn_type(parts.netloc, timeout=timeout)
        try:
            conn.request("HEAD", parts.path or "/")
            response = conn.getresponse()
            response.read()
            region = response.getheader("x-amz-bucket-region")
        finally:
            conn.close()
    except (OSError, http.client.HTTPException):
        region = None
    return region


def _after_fork_in_child() -> None:
    global _lock, _discovery_lock
    _lock = threading.Lock()
    _discovery_lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)
