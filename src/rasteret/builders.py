"""The build functions of the public API, returning :class:`rasteret.Collection`.

Each one is the ingest / catalog function of the same name (same parameters and
documentation, visible to ``inspect.signature`` and, through ``ParamSpec``, to type
checkers) whose result is the user-facing :class:`~rasteret.collection.Collection`
rather than the control plane's :class:`~rasteret.index.CollectionTable`.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable

from rasteret.catalog.build import build as _build
from rasteret.collection import Collection
from rasteret.index.table import CollectionTable
from rasteret.ingest.files import build_from_files as _build_from_files
from rasteret.ingest.stac import build_from_stac as _build_from_stac
from rasteret.ingest.stac import update_collection as _update_collection
from rasteret.ingest.table import build_from_table as _build_from_table

#: The original API's storage arguments, refused by the builds with what to use instead.
_ORIGINAL_STORAGE_ARGUMENTS = ("backend", "cloud_config")

__all__ = ["build", "build_from_files", "build_from_stac", "build_from_table", "update_collection"]


def returning_collection[**P](func: Callable[P, CollectionTable]) -> Callable[P, Collection]:
    """``func`` with its result adopted as a :class:`Collection` (signature and docs kept)."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> Collection:
        given = [name for name in _ORIGINAL_STORAGE_ARGUMENTS if name in kwargs]
        if given:  # never ignored: the headers of a private bucket need its credentials
            raise TypeError(
                f"{func.__name__}() does not take {' / '.join(given)}= (the original API's "
                "object-store settings): set the bucket's credentials and options with "
                "rasteret.configure(stores={'s3://bucket': {...}}) before building"
            )
        return Collection.of(func(*args, **kwargs))

    signature = inspect.signature(func)
    wrapper.__signature__ = signature.replace(return_annotation=Collection)  # type: ignore[attr-defined]
    wrapper.__module__ = __name__
    return wrapper


build = returning_collection(_build)
build_from_stac = returning_collection(_build_from_stac)
build_from_table = returning_collection(_build_from_table)
build_from_files = returning_collection(_build_from_files)
update_collection = returning_collection(_update_collection)
