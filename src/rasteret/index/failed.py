"""Records whose asset could not be indexed: raise, or skip them on request.

A build records a per-asset failure as ``{band}_error`` with a null ``{band}_metadata``
(the file was missing, timed out, was corrupt...). Such a record *has* data for the band
— it just is not in the index — so reading it as nodata would be a silent wrong answer.
Every read surface calls :func:`check_indexed` first: ``errors="raise"`` (the default)
raises :class:`~rasteret.errors.UnindexedAssetError` naming each failed asset and its
cause; ``errors="skip"`` drops those records from the read (like odc-stac's
``fail_on_error=False``, but never as a fill). A record that has no asset for a band at
all (no href) has no data for it and is not a failure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rasteret.errors import UnindexedAssetError
from rasteret.index import columns
from rasteret.index.schema import error_column, metadata_column

#: What a read does with records whose asset failed to index.
OnFailedAsset = Literal["raise", "skip"]

if TYPE_CHECKING:
    from rasteret.index.table import CollectionTable


@dataclass(frozen=True, slots=True)
class FailedAsset:
    """One asset the index has an href for but no header: why, in ``error``."""

    record_id: str
    band: str
    href: str
    error: str


def failed_rows(table: pa.Table, band: str) -> np.ndarray:
    """Boolean mask of the rows whose ``band`` asset has an href but no metadata."""
    n = table.num_rows
    if metadata_column(band) not in table.column_names:
        return np.zeros(n, dtype=bool)
    no_metadata = pc.is_null(table[metadata_column(band)]).to_numpy(zero_copy_only=False)
    if not no_metadata.any():
        return no_metadata
    hrefs = columns.asset_hrefs(table, band)
    has_href = np.fromiter((bool(h) for h in hrefs), dtype=bool, count=n)
    return no_metadata & has_href


def failed_assets(table: pa.Table, bands: Sequence[str]) -> list[FailedAsset]:
    """Every asset of ``bands`` that has an href but could not be indexed."""
    found: list[FailedAsset] = []
    ids: list[str] | None = None
    for band in bands:
        rows = np.flatnonzero(failed_rows(table, band))
        if not len(rows):
            continue
        ids = ids if ids is not None else columns.record_ids(table)
        hrefs = columns.asset_hrefs(table, band)
        errors = (
            table[error_column(band)].to_pylist()
            if error_column(band) in table.column_names
            else [None] * table.num_rows
        )
        for row in rows.tolist():
            reason = errors[row] or "no header in the index (and no recorded error)"
            found.append(FailedAsset(ids[row], band, str(hrefs[row]), reason))
    return found


def check_indexed[C: CollectionTable](
    collection: C, bands: Sequence[str] | None, errors: OnFailedAsset = "raise"
) -> C:
    """``collection`` (narrowed to ``bands``' columns when its records are not read yet:
    :meth:`~rasteret.index.table.CollectionTable.for_reading`) if every asset of
    ``bands`` (default: all) that the selected records have was indexed; else raise
    (``errors="raise"``) or return it without those records (``errors="skip"``). See the
    module docs."""
    if errors not in ("raise", "skip"):
        raise ValueError(f"errors= must be 'raise' or 'skip', got {errors!r}")
    collection = collection.for_reading(bands)
    table = collection.table
    selected = list(collection.bands if bands is None else bands)
    mask = np.zeros(table.num_rows, dtype=bool)
    for band in selected:
        mask |= failed_rows(table, band)
    if not mask.any():
        return collection
    if errors == "skip":
        return collection._view(table.filter(pa.array(~mask)))
    failed = failed_assets(table, selected)
    shown = "; ".join(f"record {f.record_id!r}, band {f.band!r}: {f.error}" for f in failed[:5])
    more = f" (and {len(failed) - 5} more)" if len(failed) > 5 else ""
    raise UnindexedAssetError(
        f"{len(failed)} asset(s) of the selected records could not be indexed, so their "
        f"pixels are unknown: {shown}{more}. Re-index them with collection.refresh() (or "
        "rebuild with force=True), or pass errors='skip' to read without these records."
    )
