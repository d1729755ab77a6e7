"""Per-bucket / per-origin store settings: credentials, requester-pays, region, endpoint,
client options, signing.

Users set them once, through :func:`rasteret.fetch.configure`::

    configure(stores={
        "s3://": {"endpoint": "http://127.0.0.1:9000"},             # every S3 bucket
        "s3://usgs-landsat": {"requester_pays": True, "region": "us-west-2"},
        "s3://private": {"credential_provider": my_provider},
        "https://pcstacitems.blob.core.windows.net": {"signer": sign},
    })

A URL gets the options of every matching prefix, the longer prefix winning field by
field. Prefixes match the URL as written and its canonical form (``s3://bucket/key``
for every S3 spelling, ``az://account/container/path`` for Azure, ``gs://bucket/key``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

Signer = Callable[[str], str]


def freeze(value: Any) -> Any:
    """A hashable, order-independent form of a (nested) mapping / sequence."""
    if isinstance(value, Mapping):
        return tuple(sorted((str(k), freeze(v)) for k, v in value.items()))
    if isinstance(value, list | tuple | set | frozenset):
        return tuple(freeze(v) for v in value)
    return value


@dataclass(frozen=True)
class StoreOptions:
    """How to reach one bucket / origin. ``None`` means "not set here".

    * ``anonymous`` — unsigned requests. Default: anonymous unless credentials are
      configured (``credential_provider``, keys in ``config``, ``requester_pays``) or
      present in the environment (``AWS_ACCESS_KEY_ID``, ``AZURE_STORAGE_ACCOUNT_KEY``,
      ``GOOGLE_APPLICATION_CREDENTIALS``...).
    * ``credential_provider`` — an obstore credential provider (S3/GCS/Azure).
    * ``requester_pays`` — S3 requester-pays (sends ``x-amz-request-payer: requester``).
    * ``region`` — S3 region (else from the URL, ``AWS_REGION`` or discovered once per
      bucket with a HEAD request reading ``x-amz-bucket-region``).
    * ``endpoint`` — an S3-compatible / Azure endpoint (MinIO, moto, azurite...); for S3
      also ``AWS_ENDPOINT_URL(_S3)``. Path-style HTTP(S) URLs on it are read as S3.
    * ``config`` — any other obstore store configuration (``S3Config``, ``AzureConfig``,
      ``GCSConfig`` keys).
    * ``client_options`` — obstore ``ClientConfig`` (timeouts, pool, proxy, headers).
    * ``signer`` — ``url -> signed url`` applied at read time (never stored).
    """

    anonymous: bool | None = None
    credential_provider: Any = None
    requester_pays: bool | None = None
    region: str | None = None
    endpoint: str | None = None
    config: Any = None  # frozen mapping
    client_options: Any = None  # frozen mapping
    signer: Signer | None = None

    def __post_init__(self) -> None:
        for name in ("config", "client_options"):
            value = getattr(self, name)
            if isinstance(value, Mapping):
                object.__setattr__(self, name, freeze(value))
        if self.signer is not None and not callable(self.signer):
            raise TypeError(f"signer must be a callable url -> url, got {self.signer!r}")
        if self.endpoint is not None:
            object.__setattr__(self, "endpoint", self.endpoint.rstrip("/"))

    @classmethod
    def coerce(cls, value: StoreOptions | Mapping[str, Any]) -> StoreOptions:
        if isinstance(value, StoreOptions):
            return value
        if not isinstance(value, Mapping):
            raise TypeError(f"store options must be a dict or StoreOptions, got {value!r}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(value) - known)
        if unknown:
            raise ValueError(
                f"unknown store option(s) {unknown}; expected some of {sorted(known)} "
                "(obstore settings go in config={...} or client_options={...})"
            )
        return cls(**value)

    def over(self, base: StoreOptions) -> StoreOptions:
        """``base`` with every field set here taking precedence (mappings merged)."""
        changes: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            if f.name in ("config", "client_options") and getattr(base, f.name):
                merged = dict(getattr(base, f.name)) | dict(value)
                value = freeze(merged)
            changes[f.name] = value
        return replace(base, **changes)

    def config_dict(self) -> dict[str, Any]:
        return _thaw(self.config)

    def client_options_dict(self) -> dict[str, Any]:
        return _thaw(self.client_options)


def _thaw(frozen: Any) -> dict[str, Any]:
    return {k: v for k, v in (frozen or ())}


NO_OPTIONS = StoreOptions()


def normalise_stores(
    stores: Mapping[str, StoreOptions | Mapping[str, Any]] | None,
) -> tuple[tuple[str, StoreOptions], ...]:
    """``{prefix: options}`` → a sorted, hashable tuple (shortest prefix first)."""
    if not stores:
        return ()
    out = []
    for prefix, value in stores.items():
        if not isinstance(prefix, str):
            raise TypeError(f"store prefixes must be strings, got {prefix!r}")
        out.append((prefix, StoreOptions.coerce(value)))
    return tuple(sorted(out, key=lambda item: (len(item[0]), item[0])))


def _matches(prefix: str, url: str) -> bool:
    if not prefix:
        return True
    if not url.startswith(prefix):
        return False
    if len(url) == len(prefix) or prefix.endswith(("/", "://")):
        return True
    return url[len(prefix)] in "/?"


def options_for(stores: tuple[tuple[str, StoreOptions], ...], *urls: str) -> StoreOptions:
    """The merged options of every prefix matching any of ``urls`` (longest wins)."""
    result = NO_OPTIONS
    for prefix, options in stores:  # shortest first: later (longer) ones override
        if any(_matches(prefix, u) for u in urls if u):
            result = options.over(result)
    return result
