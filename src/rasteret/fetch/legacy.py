"""The original API's storage settings (``CloudConfig``, ``create_backend``) as store options.

The original rasteret passed credentials and bucket settings to its reads as
``backend=`` (an obstore-backed router from :func:`create_backend`) or
``cloud_config=`` (a :class:`CloudConfig`). Here they are values translated into the
fetch layer's own per-prefix :class:`~rasteret.fetch.StoreOptions`, so a read given
them goes through the same :class:`~rasteret.fetch.RangeReader` as every other read,
with those settings for that read only (:func:`legacy_reader`):

* ``default_s3_config`` / ``region`` of :func:`create_backend` → the ``s3://`` prefix
  (every bucket): ``region``, ``endpoint``, ``request_payer`` → ``requester_pays``,
  ``skip_signature`` → ``anonymous``, any other key (``access_key_id``,
  ``secret_access_key``, ``session_token``...) → ``config``;
* ``credential_provider`` → ``s3://``, ``gs://`` and ``az://`` (only the one its class
  names, when it names one: ``Azure*`` / ``PlanetaryComputer*``, ``GCS*`` / ``Google*``,
  ``Boto3*`` / ``S3*`` / ``*Earthdata*``);
* :class:`CloudConfig` → each ``url_patterns`` source prefix is rewritten to its target
  at read time (``https://landsatlook.usgs.gov/data/…`` → ``s3://usgs-landsat/…``), S3
  target buckets get ``region`` (and requester-pays), and as ``cloud_config=`` of a read
  ``requester_pays=True`` sets requester-pays (and the region) on every S3 bucket, as
  the original did (``create_backend(cloud_config=...)``: only on the target buckets);
* explicit ``default_s3_config`` / ``region`` of :func:`create_backend` win over its
  ``cloud_config``; ``backend=`` / ``cloud_config=`` win over the reader's own settings.

Nothing is silently dropped: an unsupported ``backend`` object (a custom
``StorageBackend``) raises :class:`TypeError` naming what to use instead. Credentials in
these settings never travel in a pickle (see :mod:`rasteret.fetch.options`).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from rasteret.fetch.config import FetchConfig
from rasteret.fetch.options import StoreOptions, normalise_stores, options_for
from rasteret.fetch.reader import RangeReader, default_reader

__all__ = [
    "CloudConfig",
    "LegacyBackend",
    "PrefixRewrite",
    "cloud_config_stores",
    "create_backend",
    "legacy_reader",
]

Stores = tuple[tuple[str, StoreOptions], ...]

_TRUE = frozenset({"true", "1", "yes", "on"})
_REGION_KEYS = frozenset({"region", "aws_region", "aws_default_region"})
_ENDPOINT_KEYS = frozenset({"endpoint", "endpoint_url", "aws_endpoint", "aws_endpoint_url"})
_PAYER_KEYS = frozenset({"request_payer", "aws_request_payer"})
_ANONYMOUS_KEYS = frozenset({"skip_signature", "aws_skip_signature"})
_CLOUD_PREFIXES = ("s3://", "gs://", "az://")


def _truthy(value: Any) -> bool:
    return value is True or str(value).strip().lower() in _TRUE


@dataclass(frozen=True)
class PrefixRewrite:
    """A read-time URL rewrite ``old`` prefix → ``new`` prefix (a picklable signer)."""

    old: str
    new: str

    def __call__(self, url: str) -> str:
        return self.new + url[len(self.old) :] if url.startswith(self.old) else url


@dataclass(frozen=True)
class CloudConfig:
    """Storage settings of one data source, as in the original rasteret.

    ``provider`` (``"aws"``, ``"azure"``, ``"gcs"``...), ``requester_pays`` (S3 only),
    ``region`` (of the S3 buckets) and ``url_patterns`` (``{source prefix: target
    prefix}``, applied to hrefs at read time). Pass one as ``cloud_config=`` to a read,
    or register it for a data source (``CloudConfig.register("my-source", cfg)``) and
    pass ``data_source="my-source"``. Prefer :func:`rasteret.configure` (``stores=``)
    in new code: see ``docs/cloud.md``.
    """

    provider: str
    requester_pays: bool = False
    region: str = "us-west-2"
    url_patterns: Mapping[str, str] = field(default_factory=dict)

    _configs: ClassVar[dict[str, CloudConfig]] = {}
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def __post_init__(self) -> None:
        if not isinstance(self.provider, str) or not self.provider:
            raise ValueError(
                f"CloudConfig.provider must be a name such as 'aws', got {self.provider!r}"
            )
        if not isinstance(self.region, str) or not self.region:
            raise ValueError(f"CloudConfig.region must be a region name, got {self.region!r}")
        if self.requester_pays and self.provider.lower() not in ("aws", "s3"):
            raise ValueError(
                f"CloudConfig(provider={self.provider!r}, requester_pays=True): requester-pays "
                "is an S3 feature (provider='aws')"
            )
        patterns = dict(self.url_patterns or {})
        for old, new in patterns.items():
            if not (isinstance(old, str) and isinstance(new, str) and old and new):
                raise ValueError(f"url_patterns must map URL prefixes to URL prefixes: {old!r}")
        object.__setattr__(self, "url_patterns", patterns)  # a private copy

    @classmethod
    def register(cls, collection_id: str, config: CloudConfig) -> None:
        """Register ``config`` for a data source / collection id (case-insensitive)."""
        if not isinstance(config, CloudConfig):
            raise TypeError(f"expected a CloudConfig, got {type(config).__name__}")
        with cls._lock:
            cls._configs[collection_id.lower()] = config

    @classmethod
    def get_config(cls, data_source: str) -> CloudConfig | None:
        """The config registered for ``data_source`` (case-insensitive), else ``None``."""
        with cls._lock:
            return cls._configs.get((data_source or "").lower())

    @classmethod
    def coerce(cls, value: CloudConfig | Mapping[str, Any]) -> CloudConfig:
        """``value``, or a dict of the same fields (a catalog entry's ``cloud_config``)
        as a :class:`CloudConfig`; other keys raise ``ValueError``."""
        if isinstance(value, CloudConfig):
            return value
        if not isinstance(value, Mapping):
            raise TypeError(
                f"cloud_config must be a rasteret.CloudConfig or a dict, got {type(value).__name__}"
            )
        known = {"provider", "requester_pays", "region", "url_patterns"}
        unknown = sorted(set(value) - known)
        if unknown:
            raise ValueError(f"cloud_config: unknown field(s) {unknown}; expected {sorted(known)}")
        return cls(**value)


# The original's pre-registered sources.
CloudConfig.register("sentinel-2-l2a", CloudConfig(provider="aws", region="us-west-2"))
CloudConfig.register(
    "landsat-c2-l2", CloudConfig(provider="aws", requester_pays=True, region="us-west-2")
)


def _merge(into: dict[str, StoreOptions], prefix: str, options: StoreOptions) -> None:
    into[prefix] = options.over(into[prefix]) if prefix in into else options


def cloud_config_stores(
    config: CloudConfig, *, every_bucket: bool = True
) -> dict[str, StoreOptions]:
    """``{prefix: StoreOptions}`` equivalent to ``config`` (see the module docs);
    ``every_bucket=False`` applies ``requester_pays`` to the ``url_patterns`` buckets only
    (what the original's ``create_backend(cloud_config=...)`` did)."""
    out: dict[str, StoreOptions] = {}
    payer = True if config.requester_pays else None
    for old, new in config.url_patterns.items():
        _merge(out, old, StoreOptions(signer=PrefixRewrite(old, new)))
        if new.startswith("s3://"):
            bucket = new[len("s3://") :].split("/", 1)[0]
            _merge(out, f"s3://{bucket}", StoreOptions(region=config.region, requester_pays=payer))
    if config.requester_pays and every_bucket:
        _merge(out, "s3://", StoreOptions(requester_pays=True, region=config.region))
    return out


def _s3_options(settings: Mapping[str, Any]) -> StoreOptions:
    """An obstore ``S3Store`` config dict (the original's ``default_s3_config``) as options."""
    values: dict[str, Any] = {}
    config: dict[str, Any] = {}
    for key, value in settings.items():
        name = str(key).lower()
        if name in _REGION_KEYS:
            values["region"] = str(value)
        elif name in _ENDPOINT_KEYS:
            values["endpoint"] = str(value)
        elif name in _PAYER_KEYS:
            values["requester_pays"] = _truthy(value) or None
        elif name in _ANONYMOUS_KEYS:
            values["anonymous"] = _truthy(value)
        else:
            config[name] = value
    return StoreOptions(config=config or None, **values)


def _provider_prefixes(provider: Any) -> tuple[str, ...]:
    """The cloud prefixes an obstore credential provider is for (by its class name)."""
    name = type(provider).__name__.lower()
    if "azure" in name or "planetarycomputer" in name:
        return ("az://",)
    if "gcs" in name or "google" in name:
        return ("gs://",)
    if "boto3" in name or "earthdata" in name or name.startswith(("s3", "aws")):
        return ("s3://",)
    return _CLOUD_PREFIXES


@dataclass(frozen=True)
class LegacyBackend:
    """What :func:`create_backend` returns: per-prefix store options for reads.

    Pass it as ``backend=`` to a read of the original API (``get_numpy``,
    ``get_xarray``, ``get_gdf``, ``sample_points``, ``to_torchgeo_dataset``), or use its
    settings directly: ``reader=backend.reader()`` for one read,
    ``rasteret.configure(stores=backend.stores_dict())`` for every read and build.
    """

    stores: Stores = ()

    def stores_dict(self) -> dict[str, StoreOptions]:
        """``{prefix: StoreOptions}`` for ``rasteret.configure(stores=...)``."""
        return dict(self.stores)

    def reader(self, base: RangeReader | None = None) -> RangeReader:
        """A reader with ``base``'s settings (default: the process's reader) and these
        store options over them."""
        return legacy_reader(self, reader=base)

    def __repr__(self) -> str:
        return f"LegacyBackend({', '.join(f'{p!r}: {o!r}' for p, o in self.stores)})"


def create_backend(
    credential_provider: Any = None,
    cloud_config: CloudConfig | Mapping[str, Any] | None = None,
    region: str | None = None,
    default_s3_config: Mapping[str, Any] | None = None,
) -> LegacyBackend:
    """Storage settings for authenticated reads, in the original API's terms.

    ``credential_provider``: an obstore credential provider (or a callable returning
    credentials) for S3 / GCS / Azure; ``cloud_config``: a :class:`CloudConfig`;
    ``region``: shorthand for ``default_s3_config={"region": region}``;
    ``default_s3_config``: obstore ``S3Store`` settings for every bucket (e.g.
    ``{"access_key_id": ..., "secret_access_key": ..., "endpoint": ...}``).

    Returns a :class:`LegacyBackend` to pass as ``backend=`` to a read. Prefer
    ``rasteret.configure(stores=...)`` / ``reader=RangeReader(FetchConfig(stores=...))``
    in new code.
    """
    s3 = dict(default_s3_config or {})
    if region is not None and not _REGION_KEYS & {k.lower() for k in s3}:
        s3["region"] = region
    out: dict[str, StoreOptions] = {}
    if cloud_config is not None:
        config = CloudConfig.coerce(cloud_config)
        out.update(cloud_config_stores(config, every_bucket=False))
    if s3:
        _merge(out, "s3://", _s3_options(s3))
    if credential_provider is not None:
        if not callable(credential_provider):
            raise TypeError(
                "credential_provider must be an obstore credential provider (a callable "
                f"returning credentials), got {type(credential_provider).__name__}"
            )
        for prefix in _provider_prefixes(credential_provider):
            _merge(out, prefix, StoreOptions(credential_provider=credential_provider))
    return LegacyBackend(normalise_stores(out))


def _backend_stores(backend: Any) -> tuple[FetchConfig | None, dict[str, StoreOptions]]:
    """``(base config or None, stores)`` of a ``backend=`` value; anything else raises."""
    if isinstance(backend, LegacyBackend):
        return None, dict(backend.stores)
    if isinstance(backend, FetchConfig):
        return backend, {}
    raise TypeError(
        f"backend={type(backend).__name__}(...) cannot be used: rasteret reads through its "
        "own RangeReader, not a custom StorageBackend. Pass backend=rasteret.create_backend("
        "credential_provider=..., default_s3_config=..., cloud_config=...), or "
        "reader=rasteret.fetch.RangeReader(FetchConfig(stores={...})), or set "
        "rasteret.configure(stores={...}); for an obstore store of your own use "
        "rasteret.fetch.register_store(prefix, store)"
    )


def legacy_reader(
    backend: Any = None,
    cloud_config: CloudConfig | Mapping[str, Any] | None = None,
    *,
    reader: RangeReader | None = None,
) -> RangeReader:
    """A reader with the settings of ``reader`` (default: the process's reader) plus the
    store options of ``backend`` (a :class:`LegacyBackend`, a ``RangeReader`` or a
    ``FetchConfig``) and ``cloud_config`` (a :class:`CloudConfig`), which win where they
    set a field. Raises :class:`TypeError` for a ``backend`` it cannot honour."""
    if isinstance(backend, RangeReader):  # already a reader: its settings are the base
        reader, backend = backend, None
    base_reader = reader or default_reader()
    base, transport = base_reader.config, base_reader.transport
    added: dict[str, StoreOptions] = {}
    if backend is not None:
        own, added = _backend_stores(backend)
        base = own or base
    if cloud_config is not None:
        for prefix, options in cloud_config_stores(CloudConfig.coerce(cloud_config)).items():
            _merge(added, prefix, options)
    if not added:
        return base_reader if base is base_reader.config else RangeReader(base, transport=transport)
    stores = dict(base.stores)
    for prefix, options in added.items():
        _merge(stores, prefix, options)
    merged = normalise_stores(stores)
    # a rewritten URL is read with the options of the prefix it was rewritten from:
    # give those the options of its target (endpoint, region, credentials...) too
    final = dict(merged)
    for prefix, options in merged:
        if isinstance(options.signer, PrefixRewrite) and prefix == options.signer.old:
            target = options_for(merged, options.signer.new)
            final[prefix] = options.over(target)
    return RangeReader(base.with_(stores=normalise_stores(final)), transport=transport)
