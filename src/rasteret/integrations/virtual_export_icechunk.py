"""A Collection as an Icechunk virtual dataset (Zarr v3), readable without rasteret.

:func:`to_icechunk` writes the :class:`~rasteret.integrations.virtual_export.ExportPlan`
into an Icechunk repository (created when there is none) as one commit on ``branch``:
group / array ``zarr.json`` documents, coordinate chunks as real chunks and every tile
as a virtual chunk reference ``(url, offset, length)``. Re-exporting a group replaces it.

Every referenced file must lie under a *virtual chunk container* of the repository. The
export adds one per location it references, unless ``containers`` names one:

* local files → ``file://{directory}/`` (their common directory) with
  ``icechunk.local_filesystem_store``; paths are percent-encoded as Icechunk requires;
* ``http(s)://host/...`` → ``http(s)://host/`` with ``icechunk.http_store()``;
* ``s3://bucket/...`` → ``s3://bucket/`` with ``icechunk.s3_store`` (region and endpoint
  from ``AWS_REGION`` / ``AWS_ENDPOINT_URL_S3``); ``gs://bucket/...`` likewise;
* anything else (Azure, signed URLs): pass ``containers={prefix: ObjectStoreConfig}``.

Readers must authorize the containers (``IcechunkExport.containers``) when opening::

    repo = icechunk.Repository.open(
        icechunk.local_filesystem_storage("scenes.icechunk"),
        authorize_virtual_chunk_access={prefix: icechunk.credentials.LocalFileSystemAccess},
    )
    ds = xr.open_zarr(repo.readonly_session("main").store, group="epsg32633_10m",
                      consolidated=False)

Chunk references carry the object's identity at index time where Icechunk can check it,
so a file that changed since it was indexed fails to read instead of returning other
bytes: the ETag for ``s3://`` / ``gs://`` objects, the index-time modification time for
local files. HTTP(S) references carry none (Icechunk sends the ETag unquoted in
``If-Match``, which standard HTTP servers reject).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from rasteret.integrations.virtual_export import (
    ExportArray,
    ExportGroup,
    RecordChunks,
    VirtualExportError,
    file_url,
    local_file,
    plan_export,
)
from rasteret.integrations.virtual_export_codecs import CodecMode
from rasteret.store.coords import Coordinate

if TYPE_CHECKING:
    from rasteret.index import CollectionTable
    from rasteret.index.failed import OnFailedAsset
    from rasteret.integrations.virtual_export import ExportPlan, InternalMasks

_DIMENSIONS = ["time", "y", "x"]
_KEY_ENCODING = {"name": "default", "configuration": {"separator": "/"}}


@dataclass(frozen=True, slots=True)
class IcechunkExport:
    """What :func:`to_icechunk` committed.

    ``containers`` are the virtual chunk container prefixes readers must authorize
    (``authorize_virtual_chunk_access``); ``custom_codec_arrays`` the ``group/band``
    arrays whose tiles need the ``rasteret.tiff`` codec (``pip install rasteret``).
    """

    snapshot_id: str
    branch: str
    groups: tuple[str, ...]
    containers: tuple[str, ...]
    custom_codec_arrays: tuple[str, ...]

    def credentials(self) -> dict[str, Any]:
        """An ``authorize_virtual_chunk_access`` mapping for the containers: no-auth
        sentinels for ``file://`` and ``http(s)://``, credentials from the environment
        for ``s3://`` / ``gs://`` (replace them where other credentials are needed)."""
        import icechunk
        from icechunk import credentials

        found: dict[str, Any] = {}
        for prefix in self.containers:
            scheme = prefix.partition("://")[0]
            if scheme == "file":
                found[prefix] = credentials.LocalFileSystemAccess
            elif scheme in ("http", "https"):
                found[prefix] = credentials.HttpAccess
            elif scheme == "s3":
                found[prefix] = icechunk.s3_from_env_credentials()
            elif scheme in ("gs", "gcs"):
                found[prefix] = icechunk.gcs_from_env_credentials()
            else:
                found[prefix] = None
        return icechunk.containers_credentials(found)


def to_icechunk(
    collection: CollectionTable,
    storage_or_path: Any,
    *,
    bands: str | Sequence[str] | None = None,
    branch: str = "main",
    message: str | None = None,
    codecs: CodecMode = "auto",
    containers: Mapping[str, Any] | None = None,
    errors: OnFailedAsset = "raise",
    internal_masks: InternalMasks = "export",
) -> IcechunkExport:
    """Commit ``collection``'s records and ``bands`` (default: all) as an Icechunk virtual
    dataset (module docs) on ``branch`` of the repository at ``storage_or_path`` (an
    ``icechunk.Storage``, or a local directory), creating the repository or branch.

    ``codecs="standard"`` refuses arrays that would need the ``rasteret.tiff`` codec;
    ``containers`` maps URL prefixes to ``icechunk.ObjectStoreConfig`` values that
    override the default containers; ``internal_masks="omit"`` leaves the bands'
    internal masks out (exported as ``{band}_mask`` by default). Raises
    :class:`~rasteret.integrations.virtual_export.VirtualExportError` (naming the group,
    band, records and cause) before anything is written.
    """
    import icechunk

    plan = plan_export(
        collection, bands, codecs=codecs, errors=errors, internal_masks=internal_masks
    )
    chosen = _containers(plan, dict(containers or {}))
    storage = _storage(storage_or_path)
    existing = icechunk.Repository.exists(storage)
    repo = icechunk.Repository.open(storage) if existing else None
    config = repo.config if repo is not None else icechunk.RepositoryConfig.default()
    for prefix, store_config in chosen.items():  # added to the repository's own containers
        config.set_virtual_chunk_container(icechunk.VirtualChunkContainer(prefix, store_config))
    if repo is not None:
        repo = repo.reopen(config=config)
        repo.save_config()
    else:
        repo = icechunk.Repository.create(storage, config=config)
    if branch not in repo.list_branches():
        repo.create_branch(branch, repo.lookup_branch("main"))
    session = repo.writable_session(branch)
    from rasteret._async import run_sync

    run_sync(_write(session.store, plan))
    for group in plan.groups:
        for array in group.arrays:
            _set_references(session.store, f"{group.name}/{array.name}", array)
    text = message or _message(plan)
    snapshot = session.commit(text)
    return IcechunkExport(
        snapshot_id=str(snapshot),
        branch=branch,
        groups=tuple(g.name for g in plan.groups),
        containers=tuple(chosen),
        custom_codec_arrays=plan.custom_codec_arrays,
    )


def _storage(value: Any) -> Any:
    import icechunk

    if isinstance(value, (str, os.PathLike)):
        return icechunk.local_filesystem_storage(os.path.abspath(os.fspath(value)))
    if isinstance(value, icechunk.Storage):
        return value
    raise TypeError(
        f"expected an icechunk.Storage or a local directory, got {type(value).__name__}"
    )


def _message(plan: ExportPlan) -> str:
    records = len({r.record_id for g in plan.groups for a in g.arrays for r in a.records})
    return (
        f"rasteret: {records} record(s), bands {', '.join(plan.bands)}, "
        f"groups {', '.join(g.name for g in plan.groups)}"
    )


# ----------------------------------------------------------------------------- containers


def _containers(plan: ExportPlan, given: dict[str, Any]) -> dict[str, Any]:
    """Container prefix → ``ObjectStoreConfig`` covering every location of ``plan``."""
    import icechunk

    chosen: dict[str, Any] = {}
    local: list[str] = []
    for href in plan.hrefs:
        url = location(href)
        if any(url.startswith(prefix) for prefix in given):
            continue
        path = local_file(href)
        if path is not None:
            local.append(path)
            continue
        parts = urllib.parse.urlsplit(url)
        scheme = parts.scheme.lower()
        prefix = f"{scheme}://{parts.netloc}/"
        if prefix in chosen:
            continue
        if scheme in ("http", "https"):
            chosen[prefix] = icechunk.http_store()
        elif scheme == "s3":
            endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
            chosen[prefix] = icechunk.s3_store(
                region=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"),
                endpoint_url=endpoint,
                allow_http=bool(endpoint and endpoint.startswith("http://")),
                force_path_style=bool(endpoint),
            )
        elif scheme in ("gs", "gcs"):
            chosen[prefix] = icechunk.gcs_store()
        else:
            raise VirtualExportError(
                f"{href}: no default Icechunk virtual chunk container for {scheme}:// "
                f"locations; pass containers={{{prefix!r}: <icechunk ObjectStoreConfig>}}"
            )
    for directory in _local_roots(local):
        prefix = file_url(directory.rstrip("/") + "/", quote=True)
        chosen[prefix] = icechunk.local_filesystem_store(directory)
    return {**given, **chosen}


def _local_roots(paths: list[str]) -> list[str]:
    """Container directories of local ``paths``: their common directory per top-level
    directory (Icechunk refuses a ``file:///`` container), raised to the deepest one
    whose path needs no percent-encoding (Icechunk 2.3 accepts references under an
    encoded container prefix but then cannot read them)."""
    by_top: dict[str, list[str]] = {}
    for path in paths:
        top = path.lstrip("/").split("/", 1)[0]
        by_top.setdefault(top, []).append(os.path.dirname(path))
    roots = []
    for dirs in by_top.values():
        root = os.path.commonpath(dirs)
        while urllib.parse.quote(root, safe="/:") != root and os.path.dirname(root) != root:
            root = os.path.dirname(root)
        if root == os.path.dirname(root):
            raise VirtualExportError(
                f"{dirs[0]}: no directory above it can be an Icechunk virtual chunk "
                "container (its top-level directory name needs percent-encoding); pass "
                "containers={'file:///…/': icechunk.local_filesystem_store('/…')}"
            )
        roots.append(root)
    return sorted(roots)


def location(href: str) -> str:
    """The URL a reference to ``href`` uses (local paths as percent-encoded ``file://``)."""
    path = local_file(href)
    return href if path is None else file_url(path, quote=True)


# ----------------------------------------------------------------------------- writing


async def _write(store: Any, plan: ExportPlan) -> None:
    """Group / array documents and coordinate chunks (no chunk references)."""
    from zarr.core.buffer import default_buffer_prototype

    prototype = default_buffer_prototype()

    async def put(key: str, value: bytes) -> None:
        await store.set(key, prototype.buffer.from_bytes(value))

    root = await store.get("zarr.json", prototype)
    attributes = json.loads(root.to_bytes()).get("attributes", {}) if root is not None else {}
    attributes.update(plan.root_attributes())
    await put("zarr.json", _doc({"zarr_format": 3, "node_type": "group", "attributes": attributes}))
    for group in plan.groups:
        await store.delete_dir(group.name)
        await _write_group(put, group)


async def _write_group(put: Any, group: ExportGroup) -> None:
    name = group.name
    doc = {"zarr_format": 3, "node_type": "group", "attributes": dict(group.attributes)}
    await put(f"{name}/zarr.json", _doc(doc))
    for cname, coord in group.coords.items():
        await _write_coordinate(put, f"{name}/{cname}", coord)
    for array in group.arrays:
        await put(f"{name}/{array.name}/zarr.json", _doc(array_document(array)))
        for cname, coord in array.coords.items():
            await _write_coordinate(put, f"{name}/{cname}", coord)


def array_document(array: ExportArray) -> dict[str, Any]:
    """The Zarr v3 ``zarr.json`` of an exported band."""
    from rasteret.store.metadata import encode_attribute_fill, json_fill

    attributes = dict(array.attributes)
    if array.nodata is not None:
        attributes["_FillValue"] = encode_attribute_fill(array.fill, array.dtype)
    return {
        "zarr_format": 3,
        "node_type": "array",
        "shape": list(array.shape),
        "data_type": array.dtype.name,
        "chunk_grid": {
            "name": "regular",
            "configuration": {"chunk_shape": list(array.chunk_shape)},
        },
        "chunk_key_encoding": _KEY_ENCODING,
        "fill_value": json_fill(array.fill, array.dtype),
        "codecs": [dict(c) for c in array.codec.v3],
        "attributes": attributes,
        "dimension_names": list(_DIMENSIONS),
        "storage_transformers": [],
    }


async def _write_coordinate(put: Any, path: str, coord: Coordinate) -> None:
    from rasteret.store.coords import encode_vlen_utf8

    dims, values, attrs = coord
    values = np.asarray(values)
    shape = list(values.shape)
    if values.dtype.kind in "US":
        data_type, fill = "string", ""
        codecs: list[dict[str, Any]] = [{"name": "vlen-utf8", "configuration": {}}]
        chunk = encode_vlen_utf8([str(v) for v in values.tolist()])
    else:
        data = np.ascontiguousarray(values, dtype=values.dtype.newbyteorder("<"))
        data_type, fill, chunk = data.dtype.name, 0, data.tobytes()
        codecs = [{"name": "bytes", "configuration": {"endian": "little"}}]
    doc = {
        "zarr_format": 3,
        "node_type": "array",
        "shape": shape,
        "data_type": data_type,
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": shape}},
        "chunk_key_encoding": _KEY_ENCODING,
        "fill_value": fill,
        "codecs": codecs,
        "attributes": dict(attrs),
        "dimension_names": list(dims),
        "storage_transformers": [],
    }
    await put(f"{path}/zarr.json", _doc(doc))
    if values.size:
        key = "/".join("0" for _ in shape)
        await put(f"{path}/c/{key}" if key else f"{path}/c", chunk)


def _set_references(store: Any, path: str, array: ExportArray) -> None:
    """One virtual reference per non-sparse tile of every record of ``array``."""
    from icechunk import VirtualChunkSpec

    _, _, across = array.chunk_grid
    specs = []
    for record in array.records:
        url = location(record.href)
        checksum = _checksum(record)
        lengths = record.lengths.tolist()
        offsets = record.offsets.tolist()
        for n, (offset, length) in enumerate(zip(offsets, lengths, strict=True)):
            if length <= 0:
                continue
            i, j = divmod(n, across)
            specs.append(
                VirtualChunkSpec([record.t, i, j], url, int(offset), int(length), **checksum)
            )
    if not specs:
        return
    failed = store.set_virtual_refs(path, specs, validate_containers=True)
    if failed:
        raise VirtualExportError(
            f"{path}: Icechunk refused the references of chunks {failed[:5]} (no virtual "
            "chunk container covers their location)"
        )


def _checksum(record: RecordChunks) -> dict[str, Any]:
    """The object identity Icechunk can check for ``record``'s file (module docs)."""
    scheme = urllib.parse.urlsplit(record.href).scheme.lower()
    if local_file(record.href) is not None:
        modified = _parse_time(record.last_modified)
        if modified is None:
            return {}
        # Icechunk compares whole seconds: the next second still refuses later changes
        whole = modified.replace(microsecond=0) + dt.timedelta(seconds=1)
        return {"last_updated_at_checksum": whole}
    if scheme in ("s3", "s3a", "gs", "gcs") and record.etag:
        return {"etag_checksum": record.etag.removeprefix("W/").strip('"')}
    return {}


def _parse_time(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def _doc(doc: Mapping[str, Any]) -> bytes:
    return json.dumps(doc, allow_nan=False, default=_default).encode("utf-8")


def _default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
