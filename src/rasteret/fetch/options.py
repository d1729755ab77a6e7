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
for every S3 spelling; for Azure ``https://{account}.blob.core.windows.net/{container}``,
or ``az://container`` when the account comes from the store options; ``gs://bucket/key``).

Credentials never travel in a pickle (dask graphs, TorchGeo datasets, pickled stores
and readers). A pickled :class:`StoreOptions` leaves out every secret setting
(:func:`is_secret_setting`: access / secret keys, session, SAS and bearer tokens,
account keys, client secrets, ``Authorization`` headers, proxy passwords) and names
them in ``withheld`` instead: "this store's credentials come from the unpickling
process". That process supplies its own (:func:`with_local_credentials`): the secret
settings of its own ``configure(stores=...)`` for the same URL, else its environment
(``AWS_ACCESS_KEY_ID``, ``AZURE_STORAGE_ACCOUNT_KEY``, ...). ``credential_provider`` and
``signer`` pickle as themselves: define them at module level and let them read their
secret in the process that calls them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

Signer = Callable[[str], str]

# Store-setting names (lower case, without their aws_ / azure_storage_ / google_ prefix)
# that are credentials, and the words that make any other name one...
_SECRET_SETTINGS = frozenset(
    {
        "access_key_id",
        "secret_access_key",
        "session_token",
        "token",
        "account_key",
        "access_key",
        "master_key",
        "client_secret",
        "sas_key",
        "sas_token",
        "bearer_token",
        "service_account_key",
        "encryption_key",
        "fabric_session_token",
        "password",
    }
)
_SECRET_WORDS = ("secret", "token", "password", "sas", "key", "bearer", "auth", "cookie")
# ... unless they name a file, an address or a key *id* (never a secret themselves).
_PUBLIC_SETTINGS = frozenset({"sse_kms_key_id", "sse_bucket_key_enabled"})
_PUBLIC_SUFFIXES = ("_file", "_path", "_url", "_uri", "_endpoint", "_host")
_PREFIXES = ("azure_storage_", "azure_", "aws_", "google_", "gcs_")
_SECRET_FIELDS = ("config", "client_options")


def is_secret_setting(name: str) -> bool:
    """Whether the store setting / HTTP header ``name`` holds a credential."""
    lowered = name.strip().lower().replace("-", "_")
    for prefix in _PREFIXES:
        lowered = lowered.removeprefix(prefix)
    if lowered in _SECRET_SETTINGS:
        return True
    if lowered in _PUBLIC_SETTINGS or lowered.endswith(_PUBLIC_SUFFIXES):
        return False
    return any(word in lowered for word in _SECRET_WORDS)


def _secret_entry(path: str, value: Any) -> bool:
    """Whether one ``config`` / ``client_options`` entry (``path``: its dotted name)
    is a credential: by name, or a proxy URL carrying a password."""
    name = path.rpartition(".")[2]
    if name == "proxy_url":
        return "@" in str(value)
    return is_secret_setting(name)


def _split(frozen: Any, path: str) -> tuple[Any, Any, list[str]]:
    """A frozen mapping → ``(public, secret, secret names)``; ``default_headers`` is
    split header by header."""
    if not frozen:
        return frozen, None, []
    public, secret, names = [], [], []
    for key, value in frozen:
        where = f"{path}.{key}"
        if key == "default_headers" and isinstance(value, tuple):
            kept, hidden, inner = _split(value, where)
            if kept:
                public.append((key, kept))
            if hidden:
                secret.append((key, hidden))
            names += inner
        elif _secret_entry(where, value):
            secret.append((key, value))
            names.append(where)
        else:
            public.append((key, value))
    return tuple(public) or None, tuple(secret) or None, names


def _merge(base: Any, extra: Any) -> Any:
    """Two frozen mappings merged (``extra`` wins; ``default_headers`` merged too)."""
    merged = dict(base or ())
    for key, value in extra or ():
        if key == "default_headers" and isinstance(merged.get(key), tuple):
            value = _merge(merged[key], value)
        merged[key] = value
    return freeze(merged) if merged else None


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

    ``withheld`` is set only on options that were unpickled: the secret settings the
    pickle left out, which this process supplies (see the module docs).
    """

    anonymous: bool | None = None
    credential_provider: Any = None
    requester_pays: bool | None = None
    region: str | None = None
    endpoint: str | None = None
    config: Any = None  # frozen mapping
    client_options: Any = None  # frozen mapping
    signer: Signer | None = None
    withheld: tuple[str, ...] = ()

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
        known = {f.name for f in fields(cls)} - {"withheld"}
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
            if f.name == "withheld":
                value = tuple(dict.fromkeys(base.withheld + value))
            changes[f.name] = value
        return replace(base, **changes)

    def split_secrets(self) -> tuple[StoreOptions, StoreOptions]:
        """``(public, secret)``: these options without their credentials, and only them
        (``secret`` also names them in ``withheld``)."""
        public: dict[str, Any] = {}
        secret: dict[str, Any] = {}
        names: list[str] = []
        for name in _SECRET_FIELDS:
            public[name], secret[name], found = _split(getattr(self, name), name)
            names += found
        hidden = replace(NO_OPTIONS, withheld=tuple(names), **secret)
        return replace(self, **public), hidden

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        public, secret = self.split_secrets()
        values = {f.name: getattr(public, f.name) for f in fields(self)}
        values["withheld"] = tuple(dict.fromkeys(self.withheld + secret.withheld))
        return (_restore, (values,))

    def __copy__(self) -> StoreOptions:
        return self  # immutable; and a copy must keep the credentials pickling leaves out

    def __deepcopy__(self, memo: dict[int, Any]) -> StoreOptions:
        return self

    def __repr__(self) -> str:
        public, secret = self.split_secrets()
        shown = [
            f"{f.name}={getattr(public, f.name)!r}"
            for f in fields(self)
            if getattr(public, f.name) not in (None, ())
        ]
        if secret.withheld:
            shown.append(f"secrets={list(secret.withheld)!r}")
        return f"StoreOptions({', '.join(shown)})"

    def config_dict(self) -> dict[str, Any]:
        return _thaw(self.config)

    def client_options_dict(self) -> dict[str, Any]:
        options = _thaw(self.client_options)
        if isinstance(options.get("default_headers"), tuple):  # obstore wants a dict
            options["default_headers"] = _thaw(options["default_headers"])
        return options


def _thaw(frozen: Any) -> dict[str, Any]:
    return {k: v for k, v in (frozen or ())}


def _restore(values: dict[str, Any]) -> StoreOptions:
    """Unpickle :class:`StoreOptions` (credentials withheld, see the module docs)."""
    return StoreOptions(**values)


NO_OPTIONS = StoreOptions()


def with_local_credentials(options: StoreOptions, local: StoreOptions) -> StoreOptions:
    """Unpickled ``options`` with this process's credentials for the same URL: the
    secret settings (and credential provider, when ``options`` has none) of ``local``
    (the options this process configured). Options with nothing withheld are returned
    as they are; without local secrets the store reads the environment's credentials."""
    if not options.withheld:
        return options
    _, secret = local.split_secrets()
    return replace(
        options,
        config=_merge(options.config, secret.config),
        client_options=_merge(options.client_options, secret.client_options),
        credential_provider=options.credential_provider or local.credential_provider,
    )


def secrets_digest(stores: tuple[tuple[str, StoreOptions], ...]) -> bytes:
    """Bytes that differ when the credentials of ``stores`` differ (for settings
    identity; the digest of them is safe to pickle, they are not)."""
    import hashlib

    secrets = [(prefix, options.split_secrets()[1]) for prefix, options in stores]
    material = repr([(p, s.config, s.client_options) for p, s in secrets if s.withheld])
    return hashlib.blake2b(material.encode(), digest_size=16).digest()


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
