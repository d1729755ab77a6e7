"""rasteret: index-first access to collections of cloud-native GeoTIFFs.

Parse every TIFF header once into a GeoParquet *Collection*; read pixels through a
virtual Zarr v3 store synthesised from it (``xr.open_dataset(path, engine="rasteret")``).

Public names are imported lazily so ``import rasteret`` stays cheap and never touches
the network stack (obstore is not fork-safe: nothing may create a client at import).
It only registers a fork hook (:mod:`rasteret._fork`) that tells a forked child whether
obstore's runtime ran in its parent, whoever started it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rasteret import _fork  # noqa: F401  (registers the fork hook)
from rasteret._lazy import lazy_exports
from rasteret._version import __version__

if TYPE_CHECKING:
    from rasteret._options import get_options, options, set_options
    from rasteret.builders import (
        build,
        build_from_files,
        build_from_stac,
        build_from_table,
        update_collection,
    )
    from rasteret.catalog import (
        DatasetDescriptor,
        DatasetRegistry,
        register,
        register_local,
    )
    from rasteret.collection import Collection, as_collection, load
    from rasteret.fetch import configure
    from rasteret.fetch.legacy import CloudConfig, create_backend
    from rasteret.store import open_store

_LAZY: dict[str, str] = {
    "DatasetDescriptor": "rasteret.catalog",
    "DatasetRegistry": "rasteret.catalog",
    "build": "rasteret.builders",
    "register": "rasteret.catalog",
    "register_local": "rasteret.catalog",
    "configure": "rasteret.fetch",
    "CloudConfig": "rasteret.fetch.legacy",
    "create_backend": "rasteret.fetch.legacy",
    "build_from_stac": "rasteret.builders",
    "update_collection": "rasteret.builders",
    "Collection": "rasteret.collection",
    "as_collection": "rasteret.collection",
    "load": "rasteret.collection",
    "build_from_table": "rasteret.builders",
    "build_from_files": "rasteret.builders",
    "open_store": "rasteret.store",
    "get_options": "rasteret._options",
    "options": "rasteret._options",
    "set_options": "rasteret._options",
}

__all__ = [
    "CloudConfig",
    "Collection",
    "DatasetDescriptor",
    "DatasetRegistry",
    "__version__",
    "as_collection",
    "build",
    "build_from_files",
    "build_from_stac",
    "build_from_table",
    "configure",
    "create_backend",
    "get_options",
    "load",
    "open_store",
    "options",
    "register",
    "register_local",
    "set_options",
    "update_collection",
    "version",
]


def version() -> str:
    """The installed rasteret version."""
    return __version__


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, __all__)
