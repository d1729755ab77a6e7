"""Add parsed headers to a normalised record table.

For every (record, band) asset: ``{band}_metadata`` (the header struct, completed with the
STAC asset's nodata / scale / offset / georeferencing where the TIFF lacks them:
:func:`~rasteret.ingest.stac_raster.complete_metadata`; null when the file could not be
indexed, or when its struct fails the collection's content checks,
:mod:`rasteret.index.content`, so one bad file never fails the whole table) and
``{band}_error`` (why, naming the file; null when fine). Per record,
``proj:epsg`` / ``crs`` are filled from the header CRS where the table has none, and
``geometry`` (CRS84 footprint, WKB) where it is missing.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rasteret.errors import CorruptTiffError
from rasteret.geo.footprint import Footprint, grid_footprint
from rasteret.index.columns import asset_field, asset_hrefs
from rasteret.index.content import band_problems
from rasteret.index.schema import BAND_METADATA_TYPE, error_column, metadata_column
from rasteret.ingest.headers import HeaderResult, describe_error
from rasteret.ingest.stac_raster import RASTER_BANDS_COLUMN, complete_metadata

log = logging.getLogger("rasteret.ingest")


@dataclass
class EnrichNotes:
    """Record-level problems met while enriching (logged by the caller)."""

    no_footprint: list[str] = field(default_factory=list)  # "id: reason"
    crs_conflicts: list[str] = field(default_factory=list)
    antimeridian: int = 0


def enrich_table(
    table: pa.Table, headers: Mapping[str, HeaderResult], bands: Sequence[str]
) -> tuple[pa.Table, EnrichNotes]:
    """Append ``{band}_metadata`` / ``{band}_error`` and fill record CRS and geometry."""
    n = table.num_rows
    first_ok: list[HeaderResult | None] = [None] * n  # first indexed band of each record
    notes = EnrichNotes()
    crs_seen: list[str | None] = [None] * n
    ids = table["id"].to_pylist()
    columns: dict[str, pa.Array] = {}
    records = record_projection(table)
    for band in bands:
        metadata, errors, used = _index_band(table, band, headers, records)
        for row, result in enumerate(used):
            if result is None:
                continue
            crs = _header_crs(result)
            if first_ok[row] is None:
                first_ok[row] = result
                crs_seen[row] = crs
            elif crs != crs_seen[row]:
                notes.crs_conflicts.append(f"{ids[row]}: band {band} is in {crs}")
        columns[metadata_column(band)] = metadata
        columns[error_column(band)] = pa.array(errors, type=pa.string())

    table = _fill_crs(table, first_ok)
    table = _fill_geometry(table, first_ok, ids, notes)
    for name, values in columns.items():
        if name in table.column_names:
            table = table.drop_columns([name])
        table = table.append_column(name, values)
    return table, notes


def _index_band(
    table: pa.Table, band: str, headers: Mapping[str, HeaderResult], records: list[dict]
) -> tuple[pa.StructArray, list[str | None], list[HeaderResult | None]]:
    """One band's ``{band}_metadata`` structs, ``{band}_error`` messages and, per record,
    the header of its asset when that asset was indexed (``None`` otherwise)."""
    from rasteret.index import band_metadata_from_header

    stac = stac_band(table, band)
    hrefs = asset_hrefs(table, band)
    indices = asset_field(table, band, "band_index")
    errors: list[str | None] = (  # errors the caller recorded for assets it could not locate
        table[error_column(band)].to_pylist()
        if error_column(band) in table.column_names
        else [None] * table.num_rows
    )
    metadata: list[dict | None] = [None] * table.num_rows
    used: list[HeaderResult | None] = [None] * table.num_rows
    for row, (href, band_index) in enumerate(zip(hrefs, indices, strict=True)):
        if href is None:
            continue
        result = headers.get(href)
        if result is None or not result.ok:
            errors[row] = result.error if result else f"{href}: not indexed"
            continue
        try:
            parsed = band_metadata_from_header(result.header, int(band_index or 0), result.info)
            metadata[row] = complete_metadata(parsed, stac[row], records[row])
        except Exception as exc:  # e.g. band_index beyond the file's samples
            errors[row] = describe_error(href, exc)
            continue
        errors[row], used[row] = None, result
    structs, refused = screen_content(pa.array(metadata, type=BAND_METADATA_TYPE), hrefs)
    for row, message in refused.items():
        errors[row], used[row] = message, None
    return structs, errors, used


def screen_content(
    structs: pa.StructArray, hrefs: Sequence[str | None]
) -> tuple[pa.StructArray, dict[int, str]]:
    """``structs`` (one band) with every struct the collection's content checks
    (:mod:`rasteret.index.content`) would refuse nulled, and ``{row: error}`` naming the
    file and the cause: a file whose header parses but cannot be used (a tile past the
    end of the object, an unknown predictor or compression...) fails alone, never the
    whole build."""
    problems = band_problems(structs)
    if not problems:
        return structs, {}
    errors = {
        row: describe_error(str(hrefs[row]), CorruptTiffError(str(hrefs[row]), message))
        for row, message in problems.items()
    }
    keep = np.ones(len(structs), dtype=bool)
    keep[list(problems)] = False
    return pc.if_else(pa.array(keep), structs, pa.nulls(len(structs), structs.type)), errors


def stac_band(table: pa.Table, band: str) -> list[dict | None]:
    """Per record: the ``raster:bands`` entry of ``band`` (``None`` when STAC says nothing)."""
    if RASTER_BANDS_COLUMN not in table.column_names:
        return [None] * table.num_rows
    column = table[RASTER_BANDS_COLUMN].combine_chunks()
    if not pa.types.is_struct(column.type) or column.type.get_field_index(band) < 0:
        return [None] * table.num_rows
    return column.field(band).to_pylist()


def record_projection(table: pa.Table) -> list[dict]:
    """Per record: the item-level ``proj:transform`` / ``proj:shape`` and ``crs``."""
    names = [n for n in ("proj:transform", "proj:shape", "crs") if n in table.column_names]
    columns = {n: table[n].to_pylist() for n in names}
    return [{n: columns[n][row] for n in names} for row in range(table.num_rows)]


def _header_crs(result: HeaderResult) -> str | None:
    from rasteret.index.convert import record_crs

    return record_crs(result.header.geo)


def _fill_crs(table: pa.Table, first_ok: list[HeaderResult | None]) -> pa.Table:
    epsg = [r.header.geo.epsg if r else None for r in first_ok]
    crs = [_header_crs(r) if r else None for r in first_ok]
    epsg_arr = pa.array(epsg, pa.int32())
    crs_arr = pa.array(crs, pa.string())
    if "proj:code" in table.column_names:  # STAC projection extension v2: "EPSG:32633"
        code = table["proj:code"].combine_chunks().cast(pa.string())
        crs_arr = pc.coalesce(code, crs_arr)
        digits = pc.extract_regex(code, r"^EPSG:(?P<n>\d+)$").flatten()[0]
        epsg_arr = pc.coalesce(digits.cast(pa.int32()), epsg_arr)
    if "proj:epsg" in table.column_names:
        epsg_arr = pc.coalesce(table["proj:epsg"].combine_chunks().cast(pa.int32()), epsg_arr)
    if "crs" in table.column_names:
        crs_arr = pc.coalesce(table["crs"].combine_chunks().cast(pa.string()), crs_arr)
    for name, values in (("proj:epsg", epsg_arr), ("crs", crs_arr)):
        if name in table.column_names:
            table = table.set_column(table.column_names.index(name), name, values)
        else:
            table = table.append_column(name, values)
    return table


def footprint_of(result: HeaderResult) -> Footprint:
    """CRS84 footprint of the full-resolution grid of a parsed header."""
    geo = result.header.geo
    full = result.header.full
    if geo.transform is None:
        raise ValueError("the file has no georeferencing (no geotransform)")
    crs = geo.crs_wkt or (f"EPSG:{geo.epsg}" if geo.epsg else None)
    if crs is None:
        raise ValueError(f"the file has no CRS{': ' + geo.crs_error if geo.crs_error else ''}")
    return grid_footprint(geo.transform, full.width, full.height, crs)


def _fill_geometry(
    table: pa.Table, first_ok: list[HeaderResult | None], ids: list, notes: EnrichNotes
) -> pa.Table:
    have = table["geometry"].combine_chunks() if "geometry" in table.column_names else None
    if have is not None and have.null_count == 0:
        return table
    cache: dict[str, Footprint | str] = {}
    wkb: list[bytes | None] = []
    for row, result in enumerate(first_ok):
        if have is not None and have[row].is_valid:
            wkb.append(have[row].as_py())
            continue
        if result is None:
            wkb.append(None)
            continue
        if result.url not in cache:
            try:
                cache[result.url] = footprint_of(result)
            except Exception as exc:
                cache[result.url] = f"{result.url}: {exc}"
        footprint = cache[result.url]
        if isinstance(footprint, str):
            notes.no_footprint.append(f"{ids[row]}: {footprint}")
            wkb.append(None)
            continue
        notes.antimeridian += footprint.crosses_antimeridian
        wkb.append(footprint.wkb)
    values = pa.array(wkb, pa.binary())
    if have is not None:
        return table.set_column(table.column_names.index("geometry"), "geometry", values)
    return table.append_column("geometry", values)


def log_notes(notes: EnrichNotes, label: str) -> None:
    """Warn about records without footprint, mixed-CRS bands and antimeridian footprints."""
    _warn_examples(
        label, "record(s) have no footprint (geometry and bbox are null)", notes.no_footprint
    )
    _warn_examples(
        label,
        "band(s) are in a different CRS from their record's first band "
        "(the record's crs is the first band's)",
        notes.crs_conflicts,
    )
    if notes.antimeridian:
        log.warning(
            "%s: %d footprint(s) cross the antimeridian: geometry is split at ±180° and the "
            "bbox wraps (xmin > xmax)",
            label,
            notes.antimeridian,
        )


def _warn_examples(label: str, what: str, examples: Sequence[str]) -> None:
    """``"<label>: <n> <what>, e.g. <first three examples>"`` when there are any."""
    if examples:
        log.warning("%s: %d %s, e.g. %s", label, len(examples), what, "; ".join(examples[:3]))


def sample_bands(count: int) -> list[str]:
    """Default band names of a file with ``count`` samples: ``b1`` … ``bN``."""
    return [f"b{i + 1}" for i in range(max(count, 1))]


def assets_per_sample(
    hrefs: Sequence[str | None],
    headers: Mapping[str, HeaderResult],
    bands: Sequence[str] | None = None,
) -> pa.StructArray:
    """``assets`` for one-file-per-record tables: one band per sample of each file.

    With ``bands``, sample ``i`` is named ``bands[i]`` (a file with fewer samples reports
    an error for the missing ones); otherwise files get ``b1`` … ``bN`` for their own
    ``N`` samples (a file that could not be indexed gets ``b1``, carrying its error).
    """
    if bands is None:
        most = max(
            (headers[h].header.full.samples_per_pixel for h in hrefs if h and headers[h].ok),
            default=1,
        )
        names = sample_bands(most)
    else:
        names = list(bands)
    rows = []
    for href in hrefs:
        result = headers.get(href) if href else None
        if bands is None and result is not None and result.ok:
            count = result.header.full.samples_per_pixel
        else:
            count = len(names) if bands is not None else 1
        rows.append(
            {
                name: ({"href": href, "band_index": i} if href and i < count else None)
                for i, name in enumerate(names)
            }
        )
    from rasteret.index.schema import ASSET_TYPE

    return pa.array(rows, type=pa.struct([(name, ASSET_TYPE) for name in names]))
