"""Which overview level to read for a target resolution (GDAL's rule)."""

from __future__ import annotations

from collections.abc import Sequence

#: GDAL's ``GDAL_OVERVIEW_OVERSAMPLING_THRESHOLD`` defaults: nearest may read an
#: overview up to 1.2x coarser than asked; other resamplings never coarser.
NEAREST_THRESHOLD = 1.2
DEFAULT_THRESHOLD = 1.0
#: GDAL raises a threshold of exactly 1.0 to 1.01 "because of numerical instability"
#: (gdal PR 9040), so an overview exactly at the target resolution qualifies.
_ONE_EPSILON = 1e-2


def choose_overview(
    full_resolution: float,
    overview_resolutions: Sequence[float],
    target_resolution: float,
    *,
    resampling: str = "nearest",
    threshold: float | None = None,
) -> int | None:
    """The overview level (0 = first overview) to read for ``target_resolution``, or ``None``
    for full resolution.

    As GDAL (``GDALBandGetBestOverviewLevel2``): the coarsest level whose decimation factor
    ``overview_res / full_res`` is below ``target_res / full_res * threshold``, where
    ``threshold`` is 1.2 for ``nearest`` and 1.0 otherwise (1.0 counts as 1.01, so an
    overview exactly at the target resolution is chosen). All resolutions are in one unit
    (source CRS units per pixel, or decimation factors with ``full_resolution=1``).
    """
    if full_resolution <= 0 or target_resolution <= 0:
        raise ValueError("resolutions must be positive")
    if threshold is None:
        threshold = NEAREST_THRESHOLD if resampling == "nearest" else DEFAULT_THRESHOLD
    if threshold == 1.0:
        threshold += _ONE_EPSILON
    desired = target_resolution / full_resolution * threshold
    best: int | None = None
    best_factor = 1.0
    for level, resolution in enumerate(overview_resolutions):
        factor = resolution / full_resolution
        if factor < desired and factor > best_factor:
            best, best_factor = level, factor
    return best
