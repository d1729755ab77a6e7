"""Collections cached in a workspace: list, resolve a name, describe, delete.

Only reads Parquet footers (schema metadata, row counts): no table is materialised to
list a workspace, and nothing touches the network.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from rasteret.ingest.workspace import (
    BUILD_KEY,
    RECORDS_SUFFIX,
    STAC_SUFFIX,
    _slug,
    workspace_root,
)

STAC_PARAMS_KEY = b"rasteret:stac"


class CollectionNotFoundError(FileNotFoundError):
    """No cached collection matches a name (the message lists what the workspace has)."""


def _parquet_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return sorted(
        f
        for f in path.rglob("*.parquet")
        if not any(p.startswith((".", "_")) for p in f.relative_to(path).parts)
    )


def _kind(path: Path) -> str | None:
    if path.name.endswith(STAC_SUFFIX):
        return "stac"
    if path.name.endswith(RECORDS_SUFFIX):
        return "records"
    return None


def _stem(path: Path) -> str:
    return path.name.removesuffix(STAC_SUFFIX).removesuffix(RECORDS_SUFFIX)


def _footer(path: Path) -> tuple[dict[str, str], int, list[str]]:
    """(schema metadata, row count, column names) from the Parquet footers under ``path``."""
    files = _parquet_files(path)
    if not files:
        return {}, 0, []
    first = pq.ParquetFile(files[0])
    schema = first.schema_arrow
    raw = schema.metadata or {}
    metadata = {
        k.decode(errors="replace"): v.decode(errors="replace")
        for k, v in raw.items()
        if k not in (b"ARROW:schema",)
    }
    rows = first.metadata.num_rows + sum(pq.ParquetFile(f).metadata.num_rows for f in files[1:])
    columns = list(schema.names)
    partitioning = metadata.get("rasteret_partitioning")
    if partitioning:
        try:
            order = json.loads(partitioning).get("order")
            if order:
                columns = list(order)
        except ValueError:
            pass
    return metadata, rows, columns


def _date_range(metadata: dict[str, str]) -> tuple[str, str] | None:
    text = metadata.get("date_range", "")
    if "," not in text:
        return None
    start, end = text.split(",", 1)
    return start[:10], end[:10]


def list_collections(workspace_dir: str | Path | None = None) -> list[dict[str, Any]]:
    """Every ``*_stac`` / ``*_records`` collection in the workspace, sorted by name.

    Each entry: ``name`` (directory stem), ``kind`` (``stac`` / ``records``),
    ``data_source``, ``date_range`` (``(start, end)`` ISO dates or ``None``), ``size``
    (records), ``created`` (ISO time of the build), ``path``.
    """
    root = workspace_root(workspace_dir)
    if not root.is_dir():
        return []
    out = []
    for path in sorted(root.iterdir()):
        kind = _kind(path)
        if kind is None or not path.is_dir() or path.name.startswith("."):
            continue
        metadata, rows, _ = _footer(path)
        out.append(
            {
                "name": _stem(path),
                "kind": kind,
                "data_source": metadata.get("data_source") or "unknown",
                "date_range": _date_range(metadata),
                "size": rows,
                "created": metadata.get("created", ""),
                "path": str(path),
            }
        )
    return out


def resolve_collection(
    name: str | Path, workspace_dir: str | Path | None = None, *, exact: bool = False
) -> Path:
    """The directory of a cached collection.

    Tries, in order: an existing path, ``<workspace>/NAME``, ``NAME_stac``,
    ``NAME_records``, then (unless ``exact``) a unique ``NAME*_stac`` / ``NAME*_records``
    (also with the name slugified as :func:`~rasteret.ingest.workspace.create_name` does).
    """
    text = str(name)
    direct = Path(text).expanduser()
    if direct.exists() and (direct.is_absolute() or text.startswith(".") or "/" in text):
        return direct
    root = workspace_root(workspace_dir)
    for candidate in (root / text, root / f"{text}{STAC_SUFFIX}", root / f"{text}{RECORDS_SUFFIX}"):
        if candidate.exists():
            return candidate
    if exact:
        known = [c["name"] for c in list_collections(root)]
        raise CollectionNotFoundError(
            f"no collection named exactly {text!r} in the workspace {root} "
            f"(collections there: {known or 'none'})"
        )
    prefixes = dict.fromkeys([text, _slug(text)])
    matches = sorted(
        {
            p
            for prefix in prefixes
            for suffix in (STAC_SUFFIX, RECORDS_SUFFIX)
            for p in root.glob(f"{_glob_escape(prefix)}*{suffix}")
            if p.is_dir()
        }
    )
    if len(matches) == 1:
        return matches[0]
    known = [c["name"] for c in list_collections(root)]
    if len(matches) > 1:
        raise CollectionNotFoundError(
            f"{text!r} matches several collections in {root}: "
            f"{[m.name for m in matches]}; use the full name"
        )
    raise CollectionNotFoundError(
        f"no collection {text!r} in the workspace {root} (collections there: {known or 'none'}); "
        "pass --workspace-dir / workspace_dir= if it lives elsewhere"
    )


def _glob_escape(text: str) -> str:
    return "".join(f"[{c}]" if c in "*?[]" else c for c in text)


def collection_info(name: str | Path, workspace_dir: str | Path | None = None) -> dict[str, Any]:
    """What a cached collection holds, from its footers (no table is read).

    Keys: ``name, path, kind, data_source, records, date_range, bands, columns, split``
    (has a ``split`` column), ``created``, ``build_key`` and, for STAC builds, ``stac``
    (the search that built it: API, collection, bbox, dates, query, filter, band map).
    """
    path = resolve_collection(name, workspace_dir)
    metadata, rows, columns = _footer(path)
    info: dict[str, Any] = {
        "name": metadata.get("name") or _stem(path),
        "path": str(path),
        "kind": _kind(path) or "file",
        "data_source": metadata.get("data_source", ""),
        "records": rows,
        "date_range": _date_range(metadata),
        "bands": [c.removesuffix("_metadata") for c in columns if c.endswith("_metadata")],
        "columns": columns,
        "split": "split" in columns,
        "created": metadata.get("created", ""),
        "build_key": metadata.get(BUILD_KEY.decode(), ""),
    }
    stac = metadata.get(STAC_PARAMS_KEY.decode())
    if stac:
        info["stac"] = json.loads(stac)
    return info


def stac_params(path: Path) -> dict[str, Any] | None:
    """The STAC search parameters stored with a collection (``None``: not a STAC build)."""
    metadata, _, _ = _footer(path)
    text = metadata.get(STAC_PARAMS_KEY.decode())
    return json.loads(text) if text else None


def delete_collection(name: str | Path, workspace_dir: str | Path | None = None) -> Path:
    """Delete a cached collection of the workspace; returns the path that was removed.

    The name must match exactly (``NAME``, ``NAME_records`` / ``NAME_stac`` or its path —
    never a prefix: ``"sentinel"`` does not delete ``sentinel2_bangalore_records``), the
    collection must lie inside the workspace, and only a ``*_stac`` / ``*_records``
    directory or a single ``.parquet`` file is removed, so a mistyped name can never
    remove an unrelated folder.
    """
    path = resolve_collection(name, workspace_dir, exact=True)
    root = workspace_root(workspace_dir).resolve()
    if not path.resolve().is_relative_to(root):
        raise ValueError(
            f"{path}: outside the workspace {root}; not deleting (remove it yourself, or "
            "pass the workspace that holds it)"
        )
    if path.is_file() and path.suffix == ".parquet":
        path.unlink()
        return path
    if not path.is_dir() or _kind(path) is None:
        raise ValueError(
            f"{path}: not a rasteret collection directory (*_stac / *_records); not deleting"
        )
    shutil.rmtree(path)
    return path
