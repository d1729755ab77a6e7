"""Workspace directories, build keys and atomic replacement of cached collections.

A table/file build writes ``<workspace>/<name>_records/``, a STAC build
``<workspace>/<create_name(name, date_range, source)>_stac/``. The workspace is the
``workspace_dir`` argument, else ``$RASTERET_WORKSPACE``, else ``~/rasteret_workspace``.
The collection's Parquet schema metadata carries a *build key* (a hash of the source's
fingerprint and the build arguments; for STAC, of the whole query); a cached directory
is reused only when its key matches. Writing is ``Collection.export``, which writes a
temporary sibling directory and swaps it into place, so a crash never leaves a half
written collection and a rebuild leaves no stale files.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from rasteret.index.workspace import workspace_root
from rasteret.ingest.safe_names import safe_collection_name

log = logging.getLogger("rasteret.ingest")

BUILD_KEY = b"rasteret:build_key"
RECORDS_SUFFIX = "_records"
STAC_SUFFIX = "_stac"
_KEY_VERSION = 1


def records_dir(name: str, workspace_dir: str | Path | None) -> Path | None:
    """Where a table/file build named ``name`` lives, or ``None`` for an in-memory build.

    A ``workspace_dir`` that already ends in ``_records`` / ``_stac`` is the target itself.
    """
    name = safe_collection_name(name)  # refuses names that could leave the workspace
    if workspace_dir is not None:
        root = Path(workspace_dir).expanduser()
        if root.name.endswith((RECORDS_SUFFIX, STAC_SUFFIX)):
            return root
        return root / f"{name or 'collection'}{RECORDS_SUFFIX}"
    if not name:
        return None
    return workspace_root() / f"{name}{RECORDS_SUFFIX}"


def stac_dir(
    name: str,
    workspace_dir: str | Path | None,
    *,
    date_range: Sequence[Any] | None = None,
    data_source: str = "",
) -> Path:
    """Where a STAC build lives: ``<workspace>/<create_name(...)>_stac``.

    A ``workspace_dir`` that already ends in ``_stac`` / ``_records`` is the target itself.
    """
    if workspace_dir is not None:
        root = Path(workspace_dir).expanduser()
        if root.name.endswith((RECORDS_SUFFIX, STAC_SUFFIX)):
            return root
    else:
        root = workspace_root()
    return root / f"{create_name(name, date_range, data_source)}{STAC_SUFFIX}"


_SOURCE_TOKENS = {"sentinel-2-l2a": "sentinel", "landsat-c2-l2": "landsat"}


def _slug(text: str) -> str:
    text = text.strip().lower().replace(" ", "-").replace("_", "-").replace("/", "-")
    return re.sub(r"[^a-z0-9-]", "-", text).strip("-") or "collection"


def create_name(custom_name: str, date_range: Sequence[Any] | None, data_source: str) -> str:
    """The original system's directory stem: ``{custom}_{YYYYMM-MM|YYYYMM-YYYYMM}_{source}``.

    ``custom`` is lower-cased with spaces / underscores / other characters turned into
    ``-``; the source token is ``sentinel`` for ``sentinel-2-l2a``, ``landsat`` for
    ``landsat-c2-l2``, else the slugified source (``earthsearch/sentinel-2-l2a`` →
    ``earthsearch-sentinel-2-l2a``). Without a date range the date token is left out.
    """
    parts = [_slug(custom_name)]
    if date_range:
        start, end = (_as_date(d) for d in date_range)
        if start.year == end.year:
            parts.append(f"{start.year}{start.month:02d}-{end.month:02d}")
        else:
            parts.append(f"{start.year}{start.month:02d}-{end.year}{end.month:02d}")
    if data_source:
        parts.append(_SOURCE_TOKENS.get(data_source, _slug(data_source)))
    return "_".join(parts)


def parse_name(name: str) -> dict[str, str]:
    """Split a :func:`create_name` stem (suffix optional) into ``custom_name`` / ``data_source``."""
    stem = re.sub(r"_(stac|records)$", "", name)
    parts = stem.split("_")
    return {
        "custom_name": parts[0],
        "data_source": parts[-1] if len(parts) > 1 else "",
        "name": stem,
    }


def _as_date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


def build_key(source_fingerprint: Any, arguments: dict[str, Any]) -> str:
    """A stable hash of what a build was made from."""
    payload = {"v": _KEY_VERSION, "source": source_fingerprint, "args": arguments}
    text = json.dumps(payload, sort_keys=True, default=_jsonable)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _jsonable(value: Any) -> Any:
    if callable(value):
        return f"{getattr(value, '__module__', '')}.{getattr(value, '__qualname__', repr(value))}"
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, set | frozenset | tuple):
        return sorted(map(str, value)) if isinstance(value, set | frozenset) else list(value)
    return str(value)


def path_fingerprint(path: str | Path) -> Any:
    """(relative path, size, mtime) of every file of a local Parquet file or directory."""
    text = str(path)
    if "://" in text:
        return text
    p = Path(text).resolve()
    files = [p] if p.is_file() else sorted(f for f in p.rglob("*") if f.is_file())
    out = []
    for f in files:
        st = f.stat()
        out.append([str(f.relative_to(p)) if f != p else f.name, st.st_size, st.st_mtime_ns])
    return {"path": str(p), "files": out}


def files_fingerprint(hrefs: Iterable[str]) -> list[Any]:
    """(href, size, mtime) of local files; remote URLs only by name (no request)."""
    out: list[Any] = []
    for href in hrefs:
        if "://" not in href and os.path.exists(href):
            st = os.stat(href)
            out.append([href, st.st_size, st.st_mtime_ns])
        else:
            out.append([href])
    return out


def table_fingerprint(table: pa.Table) -> str:
    """Hash of a table's schema and buffers (in-memory sources)."""
    h = hashlib.sha256(table.schema.to_string().encode())
    h.update(str(table.num_rows).encode())
    for batch in table.to_batches():
        for column in batch.columns:
            for buf in column.buffers():
                if buf is not None:
                    h.update(buf)
    return h.hexdigest()


def stored_build_key(target: Path) -> str | None:
    """The build key of the collection at ``target`` (``None``: absent or not ours)."""
    if not target.exists():
        return None
    if target.is_file():
        files = [target]
    else:
        files = sorted(
            f
            for f in target.rglob("*.parquet")
            if not any(p.startswith((".", "_")) for p in f.relative_to(target).parts)
        )
    for file in files[:1]:
        try:
            metadata = pq.read_schema(file).metadata or {}
        except Exception:
            return None
        key = metadata.get(BUILD_KEY)
        return key.decode() if key else None
    return None


def cache_status(target: Path | None, key: str, force: bool) -> str:
    """``"hit"`` (reuse), ``"build"`` (nothing there / in-memory) or ``"rebuild"``."""
    if target is None or not target.exists():
        return "build"
    if force:
        log.info("%s: force=True, rebuilding", target)
        return "rebuild"
    stored = stored_build_key(target)
    if stored == key:
        log.info("%s: reusing the cached collection (same inputs)", target)
        return "hit"
    reason = "has no build key" if stored is None else "was built from different inputs"
    log.warning("%s: the cached collection %s; rebuilding it", target, reason)
    return "rebuild"
