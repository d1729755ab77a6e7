"""``DatasetRegistry``: the built-in datasets plus the user's own (persisted locally).

User descriptors live in ``~/.rasteret/datasets.local.json`` (a JSON list of descriptor
dicts), or the file named by ``$RASTERET_LOCAL_DATASETS_PATH``. They are loaded the first
time the registry is used. A user descriptor may not reuse a built-in id.
"""

from __future__ import annotations

import difflib
import json
import logging
import os
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import ClassVar

from rasteret.catalog.builtin import BUILTIN_DATASETS
from rasteret.catalog.descriptor import DatasetDescriptor

log = logging.getLogger("rasteret.catalog")

DEFAULT_LOCAL_PATH = "~/.rasteret/datasets.local.json"
ENV_LOCAL_PATH = "RASTERET_LOCAL_DATASETS_PATH"


def local_registry_path(registry_path: str | Path | None = None) -> Path:
    """The user registry file: argument, else ``$RASTERET_LOCAL_DATASETS_PATH``, else default."""
    return Path(registry_path or os.environ.get(ENV_LOCAL_PATH) or DEFAULT_LOCAL_PATH).expanduser()


def read_local_descriptors(registry_path: str | Path | None = None) -> list[DatasetDescriptor]:
    """Descriptors stored in the user registry file (``[]`` when there is none)."""
    path = local_registry_path(registry_path)
    if not path.is_file():
        return []
    try:
        entries = json.loads(path.read_text() or "[]")
    except ValueError as exc:
        raise ValueError(f"{path}: not a JSON list of dataset descriptors ({exc})") from exc
    if not isinstance(entries, list):
        raise ValueError(f"{path}: expected a JSON list of dataset descriptors")
    out = []
    for entry in entries:
        try:
            out.append(DatasetDescriptor.from_dict(entry))
        except (TypeError, ValueError) as exc:
            log.warning("%s: skipping an invalid descriptor (%s)", path, exc)
    return out


def write_local_descriptors(
    descriptors: Iterable[DatasetDescriptor], registry_path: str | Path | None = None
) -> Path:
    """Replace the user registry file atomically."""
    path = local_registry_path(registry_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    temporary.write_text(json.dumps([d.to_dict() for d in descriptors], indent=2) + "\n")
    os.replace(temporary, path)
    return path


class DatasetRegistry:
    """Class-level registry of :class:`DatasetDescriptor` by id."""

    _entries: ClassVar[dict[str, DatasetDescriptor]] = {}
    _local_ids: ClassVar[set[str]] = set()
    _loaded_from: Path | None = None
    _lock = threading.RLock()

    @classmethod
    def _ensure(cls) -> None:
        path = local_registry_path()
        with cls._lock:
            if cls._loaded_from == path and cls._entries:
                return
            entries = {d.id: d for d in BUILTIN_DATASETS}
            runtime = {k: v for k, v in cls._entries.items() if k not in cls._local_ids}
            entries.update({k: v for k, v in runtime.items() if k not in entries})
            cls._local_ids = set()
            for descriptor in read_local_descriptors(path):
                if descriptor.id in {d.id for d in BUILTIN_DATASETS}:
                    log.warning(
                        "%s: descriptor %r reuses a built-in id; ignored", path, descriptor.id
                    )
                    continue
                entries[descriptor.id] = descriptor
                cls._local_ids.add(descriptor.id)
            cls._entries = entries
            cls._loaded_from = path

    @classmethod
    def register(cls, descriptor: DatasetDescriptor, *, overwrite: bool = False) -> None:
        """Add ``descriptor`` (this process only; see ``register_local`` to persist)."""
        if not isinstance(descriptor, DatasetDescriptor):
            raise TypeError(f"expected a DatasetDescriptor, got {type(descriptor).__name__}")
        cls._ensure()
        with cls._lock:
            if descriptor.id in {d.id for d in BUILTIN_DATASETS}:
                raise ValueError(f"{descriptor.id!r} is a built-in dataset id; choose another id")
            if descriptor.id in cls._entries and not overwrite:
                raise ValueError(
                    f"dataset {descriptor.id!r} is already registered; pass overwrite=True to "
                    "replace it"
                )
            cls._entries[descriptor.id] = descriptor

    @classmethod
    def unregister(cls, dataset_id: str) -> DatasetDescriptor:
        """Remove a user dataset from this process (built-ins cannot be removed)."""
        cls._ensure()
        with cls._lock:
            if dataset_id in {d.id for d in BUILTIN_DATASETS}:
                raise ValueError(f"{dataset_id!r} is built in and cannot be unregistered")
            if dataset_id not in cls._entries:
                raise KeyError(_unknown(dataset_id, cls._entries))
            cls._local_ids.discard(dataset_id)
            return cls._entries.pop(dataset_id)

    @classmethod
    def get(cls, dataset_id: str) -> DatasetDescriptor | None:
        cls._ensure()
        return cls._entries.get(dataset_id)

    @classmethod
    def require(cls, dataset_id: str) -> DatasetDescriptor:
        """The descriptor of ``dataset_id``; ``KeyError`` suggesting close ids otherwise."""
        descriptor = cls.get(dataset_id)
        if descriptor is None:
            raise KeyError(_unknown(dataset_id, cls._entries))
        return descriptor

    @classmethod
    def list(cls) -> list[DatasetDescriptor]:
        """Every dataset, sorted by id."""
        cls._ensure()
        return [cls._entries[k] for k in sorted(cls._entries)]

    @classmethod
    def search(cls, keyword: str) -> list[DatasetDescriptor]:
        """Datasets whose id, name, description, collection or coverage mention ``keyword``."""
        word = keyword.lower()
        return [
            d
            for d in cls.list()
            if any(
                word in (text or "").lower()
                for text in (d.id, d.name, d.description, d.stac_collection, d.spatial_coverage)
            )
        ]

    @classmethod
    def is_local(cls, dataset_id: str) -> bool:
        cls._ensure()
        return dataset_id in cls._local_ids

    @classmethod
    def reload(cls) -> None:
        """Forget user descriptors loaded from disk and read the registry file again."""
        with cls._lock:
            cls._loaded_from = None


def _unknown(dataset_id: str, entries: dict) -> str:
    close = difflib.get_close_matches(dataset_id, list(entries), n=3, cutoff=0.5)
    hint = f"; did you mean {close}?" if close else ""
    return (
        f"unknown dataset {dataset_id!r}{hint} (see `rasteret datasets list` or "
        "rasteret.catalog.DatasetRegistry.list())"
    )


def catalog_summary(data_source: str) -> dict[str, object]:
    """What ``Collection.compare_to_catalog`` shows of the catalog entry of
    ``data_source``: the entry whose id it is, else the first whose STAC collection it is.
    ``ValueError`` when no entry matches."""
    entries = DatasetRegistry.list()
    match = [d for d in entries if data_source and d.id == data_source] or [
        d for d in entries if data_source and d.stac_collection == data_source
    ]
    if not match:
        raise ValueError(
            f"no catalog entry matches the collection's data source {data_source!r} (a "
            "catalog id such as 'earthsearch/sentinel-2-l2a', or its STAC collection); "
            "see rasteret.catalog, or register one"
        )
    entry = match[0]
    return {
        "id": entry.id,
        "name": entry.name,
        "all_bands": list(entry.band_map or {}),
        "temporal_range": entry.temporal_range,
        "spatial_coverage": entry.spatial_coverage,
        "requires_auth": entry.requires_auth,
        "license": entry.license,
    }
