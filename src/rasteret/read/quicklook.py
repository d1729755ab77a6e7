"""Quick-look images of reads: colour-mapped RGB arrays, PNG files and matplotlib plots.

Works on anything array-like of two dimensions (a numpy array, a masked array, an
``xarray.DataArray``, one record of an :class:`~rasteret.read.AOIStack`) or three
bands ``[3, H, W]`` shown as RGB. NaN, masked and ``nodata`` pixels are grey. The
colour ramp and PNG writer need only numpy and imagecodecs; ``plot_quicklook`` imports
matplotlib when called.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

# brown → sand → teal → dark green (BrBG-like), good for NDVI and reflectance alike
_RAMP = np.array([[140, 81, 10], [246, 232, 195], [90, 180, 172], [1, 102, 94]], np.float64)
_GREY = (128, 128, 128)


def _as_float(data: Any, nodata: float | None) -> np.ndarray:
    values = getattr(data, "values", data)  # DataArray → ndarray (computes dask)
    if isinstance(values, np.ma.MaskedArray):
        values = values.astype(np.float64).filled(np.nan)
    array = np.asarray(values, dtype=np.float64)
    if nodata is not None:
        array = np.where(array == nodata, np.nan, array)
    return array


def _stretch(array: np.ndarray, vmin: float | None, vmax: float | None) -> np.ndarray:
    finite = array[np.isfinite(array)]
    if finite.size == 0:
        return np.zeros_like(array)
    low = float(np.percentile(finite, 2)) if vmin is None else vmin
    high = float(np.percentile(finite, 98)) if vmax is None else vmax
    return np.clip((array - low) / max(high - low, 1e-12), 0, 1)


def quicklook_rgb(
    data: Any,
    *,
    vmin: float | None = None,
    vmax: float | None = None,
    nodata: float | None = None,
    max_size: int | None = 1024,
) -> np.ndarray:
    """An ``[H, W, 3]`` uint8 image of ``data`` (``[H, W]`` or ``[3, H, W]``).

    One band goes through a brown → green ramp between ``vmin`` and ``vmax`` (2nd / 98th
    percentiles when not given: for NDVI pass ``vmin=-0.2, vmax=0.9``); three bands are
    stretched together to RGB. Pixels that are NaN, masked or equal to ``nodata`` are
    grey. Images larger than ``max_size`` are decimated by an integer stride.
    """
    array = _as_float(data, nodata)
    if array.ndim == 3 and array.shape[0] == 1:
        array = array[0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[0] != 3):
        raise ValueError(
            f"quick-look needs [H, W] or [3, H, W] data, got shape {array.shape}: "
            "select one record and one band (e.g. ds.B04.isel(time=0)) or three bands"
        )
    if max_size:
        stride = max(1, -(-max(array.shape[-2:]) // max_size))
        array = array[..., ::stride, ::stride]
    if array.ndim == 3:
        invalid = ~np.isfinite(array).all(axis=0)
        rgb = np.moveaxis(_stretch(array, vmin, vmax), 0, -1) * 255
    else:
        invalid = ~np.isfinite(array)
        scaled = np.nan_to_num(_stretch(array, vmin, vmax)) * (len(_RAMP) - 1)
        low = np.floor(scaled).astype(int).clip(0, len(_RAMP) - 2)
        frac = (scaled - low)[..., None]
        rgb = _RAMP[low] * (1 - frac) + _RAMP[low + 1] * frac
    rgb = np.nan_to_num(rgb).round().astype(np.uint8)
    rgb[invalid] = _GREY
    return rgb


def write_quicklook(path: str | Path, data: Any, **options: Any) -> Path:
    """Write :func:`quicklook_rgb` of ``data`` as a PNG (imagecodecs); returns the path."""
    import imagecodecs

    path = Path(path)
    path.write_bytes(imagecodecs.png_encode(quicklook_rgb(data, **options)))
    return path


def plot_quicklook(data: Any, ax: Any = None, *, title: str | None = None, **options: Any) -> Any:
    """Show :func:`quicklook_rgb` of ``data`` on a matplotlib ``Axes`` (made if not given).

    For labelled axes and colour bars use xarray instead: ``ds.B04.isel(time=0).plot()``.
    """
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - matplotlib is in the torchgeo extra
        raise ImportError(
            "plot_quicklook needs matplotlib: install it with `pip install matplotlib`, "
            "or write a PNG without it with rasteret.read.quicklook.write_quicklook"
        ) from exc
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 5))
    ax.imshow(quicklook_rgb(data, **options), interpolation="nearest")
    ax.set_axis_off()
    if title is None:
        title = getattr(data, "name", None)
    if title:
        ax.set_title(str(title))
    return ax
