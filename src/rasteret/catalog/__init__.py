"""The dataset catalog: named datasets that ``rasteret.build("<id>", ...)`` knows how to reach.

* :class:`DatasetDescriptor` — where a dataset lives (STAC API / static catalog, record
  table, or an existing collection), its band map, licence and auth needs.
* :class:`DatasetRegistry` — the built-in datasets plus the user's own, persisted in
  ``~/.rasteret/datasets.local.json`` (``$RASTERET_LOCAL_DATASETS_PATH``).
* :func:`build`, :func:`register`, :func:`register_local`, :func:`unregister_local`,
  :func:`export_local`.
"""

from rasteret.catalog.build import (
    build,
    describe_descriptor,
    export_local,
    register,
    register_local,
    table_filter,
    unregister_local,
)
from rasteret.catalog.builtin import BUILTIN_DATASETS
from rasteret.catalog.descriptor import DatasetDescriptor
from rasteret.catalog.registry import (
    DatasetRegistry,
    local_registry_path,
    read_local_descriptors,
    write_local_descriptors,
)
from rasteret.fetch.secrets import redact_loggers

redact_loggers("rasteret.catalog")  # no signed URL in any catalog log record

load_local_descriptors = read_local_descriptors
save_local_descriptor = register_local
remove_local_descriptor = unregister_local
unregister_local_descriptor = unregister_local
export_local_descriptor = export_local

__all__ = [
    "BUILTIN_DATASETS",
    "DatasetDescriptor",
    "DatasetRegistry",
    "build",
    "describe_descriptor",
    "export_local",
    "export_local_descriptor",
    "load_local_descriptors",
    "local_registry_path",
    "read_local_descriptors",
    "register",
    "register_local",
    "remove_local_descriptor",
    "save_local_descriptor",
    "table_filter",
    "unregister_local",
    "unregister_local_descriptor",
    "write_local_descriptors",
]
