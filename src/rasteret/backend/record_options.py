"""The engine's record options: ``groupby=`` / ``fuse=`` (composites) and
``with_properties=`` (record columns as coordinates), checked before any read.

An open that asks for neither returns its dataset untouched and never imports the
composite machinery (:mod:`rasteret.backend.composite`, which documents the options).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import xarray as xr

    from rasteret.index.properties import WithProperties
    from rasteret.store.tiles import TileStore


@dataclass(frozen=True)
class RecordOptions:
    """``groupby`` / ``fuse`` / ``with_properties`` of one open. ``fuse`` needs ``groupby``
    (default ``first``)."""

    groupby: Any = None
    fuse: str | None = None
    with_properties: WithProperties = None

    def __post_init__(self) -> None:
        if self.fuse is not None and self.groupby is None:
            raise ValueError("fuse= needs groupby= (e.g. groupby='solar_day' or 'P1M')")
        if self.fuse is not None:
            from rasteret.geo.composite import check_fuse

            check_fuse(self.fuse)

    @property
    def fuser(self) -> str:
        return self.fuse or "first"

    def apply(
        self, ds: xr.Dataset, store: TileStore, group: str | None, *, mask_and_scale: bool
    ) -> xr.Dataset:
        """``ds`` (a native ``group``, or the target-grid cube when ``group`` is ``None``)
        with its records composited and / or their properties as coordinates."""
        if self.groupby is None and not self.with_properties:
            return ds
        from rasteret.backend.composite import apply_records

        return apply_records(self, ds, store, group, mask_and_scale=mask_and_scale)
