"""The fill value of each band of a read: written where pixels are invalid or outside.

``fill_value`` when given, else the band's nodata (of the first record, in read order,
that has the band), else 0 (:func:`rasteret.read.radiometry.fill_value_for`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rasteret.read.radiometry import fill_value_for
from rasteret.read.stacks import StoreIndex


def band_fills(
    index: StoreIndex, bands: Sequence[str], rows: np.ndarray, fill_value: float | None = None
) -> list[float | int]:
    """One fill per band of ``bands`` for a read of table ``rows`` (see module docs)."""
    fills: list[float | int] = []
    for band in bands:
        src = next((index.source(band, int(r)) for r in rows if index.source(band, int(r))), None)
        if src is None:
            fills.append(0 if fill_value is None else fill_value)
        else:
            fills.append(fill_value_for(src.dtype, src.nodata, fill_value))
    return fills
