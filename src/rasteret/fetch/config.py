"""Settings of the fetch layer (coalescing, concurrency, retries, timeouts)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from rasteret.fetch.options import Signer, StoreOptions, normalise_stores

MiB = 1024 * 1024


@dataclass(frozen=True)
class FetchConfig:
    """How :class:`~rasteret.fetch.RangeReader` talks to object storage.

    ``coalesce_gap`` applies to remote objects: block reads of one object whose byte
    ranges are at most this far apart are merged into one request. ``local_coalesce_gap``
    is the same for local files (0: only adjacent or overlapping ranges are merged).
    ``max_in_flight`` bounds concurrent requests per event loop. Transient failures (5xx,
    timeouts, dropped connections, short bodies) are retried ``max_retries`` times with
    exponential backoff, never past ``retry_deadline`` seconds from the first attempt.
    ``request_timeout`` / ``connect_timeout`` bound each request.

    ``stores`` holds per-bucket / per-origin settings (credentials, requester-pays,
    region, endpoint, obstore client options, signer): ``{prefix: StoreOptions | dict}``,
    see :class:`~rasteret.fetch.options.StoreOptions`. ``signer`` (``url -> url``) signs
    every remote URL that no store entry signs, at read time.
    """

    coalesce_gap: int = MiB
    local_coalesce_gap: int = 0
    max_in_flight: int = 64
    prefetch: int = 65536
    max_retries: int = 4
    backoff_initial: float = 0.05
    backoff_max: float = 2.0
    retry_deadline: float = 60.0
    request_timeout: float = 30.0
    connect_timeout: float = 5.0
    batch_ticks: int = 3
    stores: Any = field(default=(), repr=False)
    signer: Signer | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if isinstance(self.stores, Mapping):
            object.__setattr__(self, "stores", normalise_stores(self.stores))
        elif not isinstance(self.stores, tuple) or not all(
            isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], StoreOptions)
            for item in self.stores
        ):
            raise TypeError("stores must be a dict {prefix: StoreOptions | dict}")
        if self.signer is not None and not callable(self.signer):
            raise TypeError(f"signer must be a callable url -> url, got {self.signer!r}")
        if self.coalesce_gap < 0 or self.local_coalesce_gap < 0:
            raise ValueError("coalesce gaps must be >= 0")
        if self.max_in_flight < 1:
            raise ValueError("max_in_flight must be >= 1")
        if self.max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        if self.batch_ticks < 1:
            raise ValueError("batch_ticks must be >= 1")

    def with_(self, **changes: object) -> FetchConfig:
        """A copy with some settings changed."""
        return replace(self, **changes)  # type: ignore[arg-type]

    def store_options(self, *urls: str) -> StoreOptions:
        """The merged :class:`StoreOptions` of every ``stores`` prefix matching ``urls``."""
        from rasteret.fetch.options import options_for

        return options_for(self.stores, *urls)

    @classmethod
    def from_env(cls, prefix: str = "RASTERET_FETCH_") -> FetchConfig:
        """Defaults overridden by env variables, e.g. ``RASTERET_FETCH_MAX_IN_FLIGHT=16``."""
        changes: dict[str, object] = {}
        for f in fields(cls):
            if f.type not in ("int", "float", int, float):
                continue
            raw = os.environ.get(prefix + f.name.upper())
            if raw is None:
                continue
            kind = int if f.type in ("int", int) else float
            try:
                changes[f.name] = kind(raw)
            except ValueError as exc:
                raise ValueError(f"{prefix}{f.name.upper()}={raw!r}: {exc}") from None
        return cls(**changes)  # type: ignore[arg-type]
