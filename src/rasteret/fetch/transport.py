"""Transports: one ranged GET or one HEAD against a route, with no retries.

``ObstoreTransport`` is the normal path: obstore for object stores and HTTP(S), and
``os.pread`` (:mod:`rasteret.fetch.local_files`) for reads and HEADs of local files on
POSIX, which costs a third of obstore's ``LocalStore`` CPU per byte; writes, deletes and
listings of local files stay with obstore. :mod:`rasteret.fetch.fallback` provides a
pure-Python transport for processes forked after obstore was used.
"""

from __future__ import annotations

import asyncio
from collections.abc import Buffer
from typing import Any, Protocol

from rasteret.fetch.config import FetchConfig
from rasteret.fetch.local_files import PREAD_LOCAL, head_local, read_local
from rasteret.fetch.model import ObjectInfo
from rasteret.fetch.routing import Route
from rasteret.fetch.stores import resolve_async


class Transport(Protocol):
    async def get(self, route: Route, start: int, end: int) -> tuple[Buffer, ObjectInfo]:
        """Bytes ``[start, min(end, size))`` and the object's metadata, in one request."""
        ...

    async def head(self, route: Route) -> ObjectInfo:
        """The object's metadata."""
        ...


class ObstoreTransport:
    """Requests through obstore (Rust object_store): HTTP(S), local files, S3/GCS/Azure."""

    def __init__(self, config: FetchConfig) -> None:
        self.config = config

    async def get(self, route: Route, start: int, end: int) -> tuple[Buffer, ObjectInfo]:
        if PREAD_LOCAL and route.kind == "local":
            return await asyncio.to_thread(read_local, route.path, start, end)
        import obstore

        store, path = await resolve_async(route, self.config)
        result = await obstore.get_async(store, path, options={"range": (start, end)})
        data = await result.bytes_async()
        return data, ObjectInfo.from_meta(result.meta)

    async def head(self, route: Route) -> ObjectInfo:
        if PREAD_LOCAL and route.kind == "local":
            return await asyncio.to_thread(head_local, route.path)
        import obstore

        store, path = await resolve_async(route, self.config)
        return ObjectInfo.from_meta(await obstore.head_async(store, path))

    async def put(self, route: Route, file: Any) -> None:
        """Upload ``file`` (bytes or a local :class:`~pathlib.Path`; multipart when large)."""
        import obstore

        store, path = await resolve_async(route, self.config)
        await obstore.put_async(store, path, file)

    async def delete(self, route: Route) -> None:
        import obstore

        store, path = await resolve_async(route, self.config)
        await obstore.delete_async(store, path)

    async def list(self, route: Route) -> list[tuple[str, ObjectInfo]]:
        """Objects below ``route`` (a directory / key prefix): ``(url, info)`` pairs."""
        import obstore

        store, path = await resolve_async(route, self.config)
        prefix = path.strip("/")
        base = route.url.split("?", 1)[0].rstrip("/")
        base = base[: len(base) - len(prefix)] if prefix and base.endswith(prefix) else base + "/"
        found: list[tuple[str, ObjectInfo]] = []
        stream = obstore.list(store, prefix=prefix + "/" if prefix else None)
        async for batch in stream:
            for meta in batch:
                key = str(meta["path"]).lstrip("/")
                found.append((base.rstrip("/") + "/" + key, ObjectInfo.from_meta(meta)))
        return found
