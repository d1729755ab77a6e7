"""``build("<dataset id>", ...)`` and the user-registry helpers.

Routing by descriptor: a STAC descriptor → :func:`~rasteret.ingest.stac.build_from_stac`
(the catalog's band map; bands whose asset a search's items never have are dropped,
logged); a record-table descriptor → :func:`~rasteret.ingest.build_from_table` with
``bbox`` / ``date_range`` pushed down as an Arrow filter; a local collection
(``register_local``) → :func:`~rasteret.index.load` then ``subset``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rasteret.index import CollectionTable

import datetime as dt
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from rasteret.catalog.descriptor import DatasetDescriptor
from rasteret.catalog.registry import (
    DatasetRegistry,
    local_registry_path,
    read_local_descriptors,
    write_local_descriptors,
)


def build(
    dataset: str,
    *,
    name: str,
    bbox: Any = None,
    date_range: Any = None,
    workspace_dir: str | Path | None = None,
    force: bool = False,
    max_concurrent: int = 64,
    query: Mapping[str, Any] | None = None,
    filter: Mapping[str, Any] | str | None = None,
    max_items: int | None = None,
    stac_api: str | None = None,
    band_map: Mapping[str, str] | None = None,
    append: bool = False,
    sign: Callable[[str], str] | None = None,
    progress: bool | None = None,
) -> CollectionTable:
    """Build (or reuse) a collection of a catalog dataset, e.g. ``"earthsearch/sentinel-2-l2a"``.

    ``bbox`` ``(west, south, east, north)`` and ``date_range`` ``(start, end)`` are
    required for STAC datasets (not for static catalogs). ``stac_api`` overrides the
    descriptor's API (a mirror); ``band_map`` narrows or replaces its band map.
    Raises ``KeyError`` for an unknown id.
    """
    from rasteret.ingest.stac_args import StacInputError, check_bbox, check_date_range

    descriptor = DatasetRegistry.require(dataset)
    box = check_bbox(bbox)
    check_date_range(date_range)
    if descriptor.kind == "collection":
        return _load_local(descriptor, name, box, date_range)
    if descriptor.kind == "record_table":
        return _build_table(descriptor, name, box, date_range, workspace_dir, force, max_concurrent)
    if not descriptor.static_catalog and (box is None or date_range is None):
        raise StacInputError(
            f"{dataset}: a STAC dataset needs bbox=(west, south, east, north) and "
            "date_range=(start, end) to bound the search"
            + (
                f"; e.g. bbox={descriptor.example_bbox}, date_range={descriptor.example_date_range}"
                if descriptor.example_bbox
                else ""
            )
        )
    from rasteret.ingest.stac import build_from_stac

    patterns = (descriptor.cloud_config or {}).get("url_patterns")
    return build_from_stac(
        name=name,
        stac_api=stac_api or descriptor.stac_api,
        collection=descriptor.stac_collection,
        data_source=descriptor.id,
        band_map=band_map or descriptor.band_map,
        band_index_map=descriptor.band_index_map if not band_map else None,
        bbox=box,
        date_range=date_range,
        workspace_dir=workspace_dir,
        force=force,
        max_concurrent=max_concurrent,
        query=query,
        filter=filter,
        max_items=max_items,
        static_catalog=descriptor.static_catalog,
        append=append,
        url_rewrite_patterns=patterns,
        sign=sign,
        progress=progress,
        require_all_bands=band_map is not None,
    )


def _load_local(descriptor: DatasetDescriptor, name: str, box, date_range) -> Any:
    from rasteret.index import load

    collection = load(  # a dataset the user registered: trusted as their own
        descriptor.collection_uri, name=name or descriptor.name, local_roots="any"
    )
    collection.data_source = collection.data_source or descriptor.id
    if box is not None or date_range is not None:
        collection = collection.subset(bbox=box, date_range=date_range)
    return collection


def _build_table(
    descriptor: DatasetDescriptor,
    name: str,
    box,
    date_range,
    workspace_dir,
    force: bool,
    max_concurrent: int,
) -> CollectionTable:
    from rasteret.ingest import build_from_table

    return build_from_table(
        descriptor.build_source_uri,
        name=name,
        data_source=descriptor.id,
        workspace_dir=workspace_dir,
        column_map=descriptor.column_map,
        href_column=descriptor.href_column,
        band_index_map=descriptor.band_index_map,
        filter_expr=table_filter(descriptor, box, date_range, _schema(descriptor)),
        enrich_cog=True,
        force=force,
        max_concurrent=max_concurrent,
        url_rewrite_patterns=(descriptor.cloud_config or {}).get("url_patterns"),
    )


def _schema(descriptor: DatasetDescriptor) -> pa.Schema | None:
    import pyarrow.dataset as pads

    try:
        return pads.dataset(descriptor.build_source_uri, format="parquet").schema
    except Exception:  # remote tables needing credentials: filter on a naive timestamp
        return None


_BBOX_KEYS = ("minx", "miny", "maxx", "maxy")
_DEFAULT_BBOX_COLUMNS = {"minx": "xmin", "miny": "ymin", "maxx": "xmax", "maxy": "ymax"}


def table_filter(
    descriptor: DatasetDescriptor, box, date_range, schema: pa.Schema | None = None
) -> pc.Expression | None:
    """Arrow filter pushed down to a record table: bbox overlap and date / year range.

    ``schema`` (the table's) makes the date bounds match a timezone-aware column.
    """
    terms = []
    if box is not None:
        cols = descriptor.bbox_columns or _DEFAULT_BBOX_COLUMNS
        bbox = descriptor.source_field("bbox")
        xmin, ymin, xmax, ymax = (pc.field(bbox, cols[k]) for k in _BBOX_KEYS)
        west, south, east, north = box
        terms += [xmax >= west, xmin <= east, ymax >= south, ymin <= north]
    if date_range is not None:
        start = dt.date.fromisoformat(str(date_range[0])[:10])
        end = dt.date.fromisoformat(str(date_range[1])[:10])
        column = pc.field(descriptor.source_field("datetime"))
        if descriptor.source_field("datetime") in ("year",):
            terms += [column >= start.year, column <= end.year]
        else:
            kind = pa.timestamp("us")
            if (
                schema is not None
                and schema.get_field_index(descriptor.source_field("datetime")) >= 0
            ):
                found = schema.field(descriptor.source_field("datetime")).type
                kind = found if pa.types.is_timestamp(found) else kind
            tz = dt.UTC if getattr(kind, "tz", None) else None
            first = dt.datetime(start.year, start.month, start.day, tzinfo=tz)
            stop = dt.datetime(end.year, end.month, end.day, tzinfo=tz) + dt.timedelta(days=1)
            terms += [column >= pa.scalar(first, kind), column < pa.scalar(stop, kind)]
    if not terms:
        return None
    expression = terms[0]
    for term in terms[1:]:
        expression = expression & term
    return expression


def register(descriptor: DatasetDescriptor, *, overwrite: bool = False) -> DatasetDescriptor:
    """Register ``descriptor`` for this process (``register_local`` persists it)."""
    DatasetRegistry.register(descriptor, overwrite=overwrite)
    return descriptor


def register_local(
    dataset_id: str,
    path: str | Path | DatasetDescriptor,
    *,
    name: str | None = None,
    description: str = "",
    data_source: str = "",
    persist: bool = True,
    registry_path: str | Path | None = None,
    workspace_dir: str | Path | None = None,
) -> DatasetDescriptor:
    """Register a dataset and, with ``persist``, save it to the user registry file.

    ``path`` is an exported collection (file, directory, or the name of a cached
    collection in the workspace), or a full :class:`DatasetDescriptor` (e.g. your own
    STAC API) whose id must be ``dataset_id``.
    """
    if isinstance(path, DatasetDescriptor):
        descriptor = path
        if descriptor.id != dataset_id:
            raise ValueError(f"descriptor id {descriptor.id!r} differs from {dataset_id!r}")
    else:
        descriptor = _local_descriptor(
            dataset_id, path, name, description, data_source, workspace_dir
        )
    DatasetRegistry.register(descriptor, overwrite=True)
    if persist:
        others = [d for d in read_local_descriptors(registry_path) if d.id != dataset_id]
        write_local_descriptors([*others, descriptor], registry_path)
        DatasetRegistry._local_ids.add(dataset_id)
    return descriptor


def _local_descriptor(dataset_id, path, name, description, data_source, workspace_dir):
    from rasteret.index import load
    from rasteret.ingest.manage import resolve_collection

    resolved = resolve_collection(path, workspace_dir)
    collection = load(resolved, local_roots="any")
    dates = collection.date_range
    return DatasetDescriptor(
        id=dataset_id,
        name=name or collection.name or dataset_id,
        description=description,
        collection_uri=str(Path(resolved).resolve()),
        spatial_coverage="local",
        temporal_range=None if dates is None else (dates[0].isoformat(), dates[1].isoformat()),
        extra={"data_source": data_source or collection.data_source},
    )


def unregister_local(dataset_id: str, *, registry_path: str | Path | None = None) -> bool:
    """Remove ``dataset_id`` from the user registry file and this process.

    Returns whether the file had it; ``KeyError`` when neither had it.
    """
    entries = read_local_descriptors(registry_path)
    kept = [d for d in entries if d.id != dataset_id]
    in_file = len(kept) != len(entries)
    if in_file:
        write_local_descriptors(kept, registry_path)
    try:
        DatasetRegistry.unregister(dataset_id)
    except KeyError:
        if not in_file:
            raise
    return in_file


def export_local(
    dataset_id: str, output_path: str | Path, *, registry_path: str | Path | None = None
) -> Path:
    """Write one user descriptor as JSON to ``output_path`` (to share or re-register)."""
    descriptor = next(
        (d for d in read_local_descriptors(registry_path) if d.id == dataset_id), None
    )
    if descriptor is None:
        descriptor = DatasetRegistry.get(dataset_id)
    if descriptor is None:
        raise KeyError(
            f"dataset {dataset_id!r} is not in {local_registry_path(registry_path)} "
            "nor registered in this process"
        )
    out = Path(output_path).expanduser()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(descriptor.to_dict(), indent=2) + "\n")
    return out


def describe_descriptor(descriptor: DatasetDescriptor) -> dict[str, Any]:
    """All fields plus ``kind`` and whether it is a user (local) entry."""
    data = descriptor.to_dict()
    data["kind"] = descriptor.kind
    data["local"] = DatasetRegistry.is_local(descriptor.id)
    return data


__all__ = [
    "build",
    "describe_descriptor",
    "export_local",
    "register",
    "register_local",
    "table_filter",
    "unregister_local",
]
