"""What a virtual export of a Collection holds: groups, arrays, codecs and chunk references.

:func:`plan_export` turns (a selection of) a Collection into an :class:`ExportPlan` that
:mod:`~rasteret.integrations.virtual_export_icechunk` (Icechunk, Zarr v3) and
:mod:`~rasteret.integrations.virtual_export_kerchunk` (kerchunk references, Zarr v2)
write. The layout is the virtual store's (:mod:`rasteret.store.layout`):

* one group per grid (CRS, transform, size), named after its CRS and resolution
  (``epsg32633_10m``); overview levels are not exported;
* a band's internal mask (a GDAL mask band in the files) is exported next to it as
  ``{band}_mask`` (uint8 as decoded: 0 = masked, 1 (1-bit masks) or 255 = valid; CF
  ``flag_values`` / ``flag_meanings``),
  named by the band's ``ancillary_variables``: readers must apply it, as GDAL does.
  1-bit masks need the ``rasteret.tiff`` codec. A band whose records have a mask only
  in part is refused (a record without a mask would read as masked everywhere);
  ``internal_masks="omit"`` leaves masks out, said in the band's attributes — never
  silently;
* in each group one array per band, shaped ``(time, y, x)``, one chunk per COG tile
  ``(1, tile_height, tile_width)``; a chunk reference is ``(href, offset, length)`` of
  the tile; sparse tiles (byte count 0) and records without the band get none and read
  as the array's fill value (the band's nodata, else 0);
* coordinates ``x`` / ``y`` (pixel centres), ``time``, ``id`` and the CF ``spatial_ref``
  (:mod:`rasteret.store.coords`), written as real arrays, and ``grid_mapping`` /
  ``coordinates`` attributes on every band, so ``xr.open_zarr`` gives dimensions,
  coordinates and the CRS without rasteret.

A reference carries no per-chunk codec settings (DESIGN decision 2), so every record of
an exported band must decode the same way: records whose compression, predictor, tile
size or dtype differ raise :class:`VirtualExportError` naming them (never references
that decode wrongly, never a split that reads records as fill). Records that differ only
in scale / offset / nodata share one array, with those values as per-record coordinates
along ``time`` (as the virtual store does). Files whose tiles need per-file JPEG tables
are refused; codecs are chosen by :mod:`~rasteret.integrations.virtual_export_codecs`.
"""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from rasteret.errors import RasteretError
from rasteret.integrations.virtual_export_codecs import ArrayCodec, CodecMode, choose_codec
from rasteret.store.coords import Coordinate

if TYPE_CHECKING:
    from rasteret.index import CollectionTable
    from rasteret.index.failed import OnFailedAsset
    from rasteret.store.bands import BandStack
    from rasteret.store.layout import GroupLayout

_SHOWN = 5  # record ids named per message
#: What an export does with the bands' internal masks (module docs).
InternalMasks = Literal["export", "omit"]
#: The band attribute that says its internal mask was left out.
MASK_NOTE = "rasteret_internal_mask"


class VirtualExportError(RasteretError, ValueError):
    """A collection cannot be exported as virtual references that decode correctly
    (the message names the group, band and records, and the cause)."""


@dataclass(frozen=True, slots=True)
class RecordChunks:
    """The tiles of one record (time step ``t``) in one exported array."""

    t: int
    record_id: str
    href: str  # as indexed: a URL or a local path
    offsets: np.ndarray  # int64, one per tile, row-major
    lengths: np.ndarray  # int64, 0 = sparse tile (no reference)
    etag: str | None = None
    last_modified: str | None = None  # ISO 8601, local files: mtime at index time


@dataclass(frozen=True, slots=True)
class ExportArray:
    """One band of one group: ``(time, y, x)``, one chunk per tile of one record."""

    name: str
    band: str
    dtype: np.dtype
    shape: tuple[int, int, int]
    chunk_shape: tuple[int, int, int]
    codec: ArrayCodec
    fill: Any  # a value of ``dtype``: the shared nodata, else 0
    nodata: float | None  # the shared nodata (``_FillValue``), ``None`` when there is none
    attributes: Mapping[str, Any]  # CF and descriptive attributes, without ``_FillValue``
    records: tuple[RecordChunks, ...]
    coords: Mapping[str, Coordinate]  # per-record scale / offset / nodata along time

    @property
    def chunk_grid(self) -> tuple[int, int, int]:
        """Chunks per dimension."""
        return tuple(-(-s // c) for s, c in zip(self.shape, self.chunk_shape, strict=True))  # type: ignore[return-value]


@dataclass(frozen=True, slots=True)
class ExportGroup:
    """One grid: its attributes, coordinates and band arrays."""

    name: str
    attributes: Mapping[str, Any]
    coords: Mapping[str, Coordinate]
    arrays: tuple[ExportArray, ...]


@dataclass(frozen=True, slots=True)
class ExportPlan:
    """Every group of an export, in the virtual store's order."""

    groups: tuple[ExportGroup, ...]
    bands: tuple[str, ...]

    @property
    def hrefs(self) -> tuple[str, ...]:
        """Every file a reference points into (sorted)."""
        return tuple(sorted({r.href for g in self.groups for a in g.arrays for r in a.records}))

    @property
    def custom_codec_arrays(self) -> tuple[str, ...]:
        """``group/band`` of the arrays that need the ``rasteret.tiff`` codec."""
        return tuple(
            f"{g.name}/{a.name}"
            for g in self.groups
            for a in g.arrays
            if a.codec.kind != "standard"
        )

    def root_attributes(self) -> dict[str, Any]:
        """Attributes of the root group: what the export holds."""
        from rasteret._version import __version__

        return {
            "rasteret_export": {
                "bands": list(self.bands),
                "groups": [g.name for g in self.groups],
                "rasteret_version": __version__,
                "needs_rasteret_codec": list(self.custom_codec_arrays),
            }
        }


def plan_export(
    collection: CollectionTable,
    bands: str | Sequence[str] | None = None,
    *,
    codecs: CodecMode = "auto",
    errors: OnFailedAsset = "raise",
    internal_masks: InternalMasks = "export",
) -> ExportPlan:
    """The :class:`ExportPlan` of ``collection``'s records and ``bands`` (default: all).

    ``codecs="standard"`` refuses arrays that need the ``rasteret.tiff`` codec (1-bit
    internal masks among them); ``internal_masks="omit"`` leaves the bands' internal
    masks out (module docs). Raises
    :class:`VirtualExportError` (module docs), :class:`~rasteret.errors.BandNotFoundError`
    and, for assets that could not be indexed, :class:`~rasteret.errors.UnindexedAssetError`
    (``errors="skip"`` leaves those records out).
    """
    from rasteret.index.failed import check_indexed
    from rasteret.store.layout import build_layout

    if codecs not in ("auto", "standard"):
        raise ValueError(f"codecs= must be 'auto' or 'standard', got {codecs!r}")
    if internal_masks not in ("export", "omit"):
        raise ValueError(f"internal_masks= must be 'export' or 'omit', got {internal_masks!r}")
    selected = (bands,) if isinstance(bands, str) else (None if bands is None else tuple(bands))
    collection = check_indexed(collection, selected, errors)
    layout = build_layout(collection.table, selected)
    groups = tuple(
        _group(name, group, codecs, internal_masks)
        for name, group in layout.groups.items()
        if group.overview is None
    )
    if not any(g.arrays for g in groups):
        raise VirtualExportError(
            f"nothing to export: no record of the selection has bands {list(layout.bands)}"
        )
    return ExportPlan(groups=groups, bands=layout.bands)


def _group(
    name: str, group: GroupLayout, codecs: CodecMode, internal_masks: InternalMasks
) -> ExportGroup:
    from rasteret.store.bands import band_stacks
    from rasteret.store.coords import coordinate_arrays
    from rasteret.store.metadata import group_attributes

    coords = coordinate_arrays(group)
    georeferenced = "spatial_ref" in coords
    stacks = band_stacks(group, name)
    masks = {s.band: s for s in stacks.values() if s.kind == "mask"}
    arrays: list[ExportArray] = []
    for stack in stacks.values():
        if stack.kind != "data":
            continue
        array = _array(name, group, stack, codecs, georeferenced)
        mask = masks.get(stack.band)
        if mask is None:
            arrays.append(array)
        elif internal_masks == "omit":
            note = "omitted (internal_masks='omit'): masked pixels read as stored values"
            arrays.append(replace(array, attributes={**array.attributes, MASK_NOTE: note}))
        else:
            exported = _mask_array(name, group, stack, mask, codecs, georeferenced)
            linked = {**array.attributes, "ancillary_variables": exported.name}
            arrays += [replace(array, attributes=linked), exported]
    return ExportGroup(name, group_attributes(group), coords, tuple(arrays))


def _mask_array(
    path: str,
    group: GroupLayout,
    data: BandStack,
    mask: BandStack,
    codecs: CodecMode,
    georeferenced: bool,
) -> ExportArray:
    """The internal mask of ``data``'s band as an exported array; raises unless every
    record with the band has a mask (a record without one would read as masked)."""
    where = f"group {path!r}, band {data.band!r}"
    unmasked = [
        str(group.ids[t])
        for t, (d, m) in enumerate(zip(data.member_of, mask.member_of, strict=True))
        if d >= 0 and m < 0
    ]
    if unmasked:
        shown = ", ".join(unmasked[:_SHOWN]) + (" ..." if len(unmasked) > _SHOWN else "")
        raise VirtualExportError(
            f"{where}: some records have an internal mask and {len(unmasked)} have none "
            f"({shown}); one exported mask array would read those as masked everywhere. "
            "Export them separately (collection.where(...) / subset(...)), or pass "
            "internal_masks='omit' to leave the masks out"
        )
    try:
        array = _array(path, group, mask, codecs, georeferenced)
    except VirtualExportError as error:
        raise VirtualExportError(
            f"{error} [the band's internal mask; internal_masks='omit' exports the band "
            "without it, its masked pixels then reading as their stored values]"
        ) from None
    valid = 1 if int(mask.first.codec.get("bits_per_sample", 8)) == 1 else 255
    attributes = {
        **array.attributes,
        "long_name": f"internal mask of {data.band} (0: masked)",
        "flag_values": [0, valid],
        "flag_meanings": "masked valid",
    }
    return replace(array, attributes=attributes)


def _array(
    path: str, group: GroupLayout, stack: BandStack, codecs: CodecMode, georeferenced: bool
) -> ExportArray:
    from rasteret.store.bands import radiometry_coordinates
    from rasteret.store.metadata import fill_value

    where = f"group {path!r}, band {stack.band!r}"
    first = stack.first
    _check_one_decoding(where, group, stack)
    if first.codec.get("jpeg_tables_present"):
        raise VirtualExportError(
            f"{where}: its tiles need the JPEG tables stored once per file (records "
            f"{_ids(group, stack, 0)}); the rasteret store splices them into every tile at "
            "read time, which a virtual reference cannot. Read these records with rasteret "
            "(engine='rasteret') instead"
        )
    codec = choose_codec(first.codec, first.dtype)
    if codec.kind != "standard" and codecs == "standard":
        raise VirtualExportError(
            f"{where}: tiles use {codec.reason}, which no standard Zarr codec decodes "
            f"(records {_ids(group, stack, 0)}); export with codecs='auto' (readers then "
            "need `pip install rasteret` for the rasteret.tiff codec) or rewrite the files"
        )
    radiometry = stack.radiometry
    same_nodata, nodata = radiometry.uniform_nodata
    dtype = np.dtype(first.dtype)
    fill, note = fill_value(nodata if same_nodata else None, dtype)
    attributes: dict[str, Any] = {
        "band": stack.band,
        "records": stack.records,
        "coordinates": "id spatial_ref" if georeferenced else "id",
    }
    if georeferenced:
        attributes["grid_mapping"] = "spatial_ref"
    if note is not None:
        attributes["rasteret_fill_value"] = note if same_nodata else "0 (nodata differs per record)"
    if codec.kind != "standard":
        attributes["rasteret_codec"] = (
            f"tiles use {codec.reason}: decoding needs the rasteret.tiff codec "
            "(pip install rasteret; zarr finds it through its codec entry point)"
        )
    same_scaling, scale, offset = radiometry.uniform_scaling
    coords: dict[str, Coordinate] = {}
    if same_scaling:
        if scale is not None and scale != 1.0:
            attributes["scale_factor"] = scale
        if offset is not None and offset != 0.0:
            attributes["add_offset"] = offset
    for cname, coord in radiometry_coordinates(stack).items():
        if same_scaling and not cname.endswith("_nodata"):
            continue  # shared scale / offset are the CF attributes above
        coords[cname] = coord
        attributes["coordinates"] = f"{attributes['coordinates']} {cname}"
    records = _records(where, group, stack, fill, dtype)
    return ExportArray(
        name=stack.name,
        band=stack.band,
        dtype=dtype,
        shape=first.shape,
        chunk_shape=first.chunk_shape,
        codec=codec,
        fill=fill,
        nodata=nodata if same_nodata and note is None else None,
        attributes=attributes,
        records=records,
        coords=coords,
    )


def _check_one_decoding(where: str, group: GroupLayout, stack: BandStack) -> None:
    """Raise unless every stack of the band decodes the same way (only radiometry differs)."""
    first = stack.first
    reference = (first.dtype, first.block_shape, first.codec)
    variants = [
        k for k, a in enumerate(stack.arrays) if (a.dtype, a.block_shape, a.codec) != reference
    ]
    if not variants:
        return
    lines = []
    for k, array in enumerate(stack.arrays):
        if k and k not in variants:
            continue
        lines.append(f"{_describe(array.codec, array.block_shape)}: {_ids(group, stack, k)}")
    raise VirtualExportError(
        f"{where}: records decode differently ({'; '.join(lines)}); a virtual reference has "
        "no per-chunk codec settings, so one exported array cannot hold them all. Export "
        "each kind separately (collection.where(...) / subset(...)), or read them with "
        "rasteret (engine='rasteret'), which merges them"
    )


def _describe(codec: Mapping[str, Any], block_shape: tuple[int, int]) -> str:
    from rasteret.integrations.virtual_export_codecs import compression_name

    order = "big-endian" if codec.get("byte_order") == ">" else "little-endian"
    return (
        f"{compression_name(codec)}, predictor {codec.get('predictor', 1)}, "
        f"{codec.get('dtype')} {order}, tiles {block_shape[0]}x{block_shape[1]}"
    )


def _records(
    where: str, group: GroupLayout, stack: BandStack, fill: Any, dtype: np.dtype
) -> tuple[RecordChunks, ...]:
    """The tile references of every time step that has the band."""
    from rasteret.store.metadata import fill_value

    first = stack.first
    n = first.tiles_down * first.tiles_across
    out: list[RecordChunks] = []
    for t, member in enumerate(stack.member_of):
        if member < 0:
            continue
        source = stack.arrays[member].sources[t]
        assert source is not None
        lengths = np.asarray(source.byte_counts[:n], dtype=np.int64)
        offsets = np.asarray(source.offsets[:n], dtype=np.int64)
        if len(lengths) < n or len(offsets) < n:
            raise VirtualExportError(
                f"{where}: record {group.ids[t]!r} ({source.href}) lists {len(lengths)} "
                f"tiles, its grid needs {n}"
            )
        own, _ = fill_value(stack.radiometry.nodata[t], dtype)
        if (lengths <= 0).any() and not _same(own, fill):
            raise VirtualExportError(
                f"{where}: record {group.ids[t]!r} ({source.href}) has sparse tiles, which "
                f"read as its nodata {own!r}, but the exported array's fill value is {fill!r} "
                "(nodata differs per record). Export records of each nodata separately"
            )
        out.append(
            RecordChunks(
                t,
                group.ids[t],
                source.href,
                offsets,
                lengths,
                source.etag,
                source.last_modified,
            )
        )
    return tuple(out)


def _same(a: Any, b: Any) -> bool:
    return bool(a == b or (a != a and b != b))


def _ids(group: GroupLayout, stack: BandStack, member: int) -> str:
    ids = [group.ids[t] for t, m in enumerate(stack.member_of) if m == member]
    shown = ", ".join(repr(i) for i in ids[:_SHOWN])
    return shown + (f" and {len(ids) - _SHOWN} more" if len(ids) > _SHOWN else "")


# ----------------------------------------------------------------------------- locations


def local_file(href: str) -> str | None:
    """The absolute path of a local ``href`` (a path or ``file://`` URL), else ``None``."""
    from rasteret.index.local_access import is_local_href, local_path

    return local_path(href) if is_local_href(href) else None


def file_url(path: str, *, quote: bool) -> str:
    """``file://`` URL of an absolute local path (percent-encoded with ``quote``)."""
    posix = path.replace(os.sep, "/") if os.sep != "/" else path
    if not posix.startswith("/"):
        posix = "/" + posix  # a Windows drive path
    return "file://" + (urllib.parse.quote(posix, safe="/:") if quote else posix)
