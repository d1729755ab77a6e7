"""Convert a parsed TIFF header into the ``{band}_metadata`` struct of the index.

:func:`band_metadata_from_header` returns a plain Python dict that matches
:data:`rasteret.index.schema.BAND_METADATA_TYPE`; ``pa.array(dicts,
type=BAND_METADATA_TYPE)`` turns a list of them into a column. Planar-separate
files (PlanarConfiguration 2) are sliced to the plane of ``band_index`` at every
level, so a band struct always describes the blocks of one band.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from rasteret.errors import CorruptTiffError
from rasteret.tiff.model import GeoReference, ImageLayout, TiffHeader


class ObjectInfoLike(Protocol):
    """What the index keeps of an object's metadata (see ``rasteret.fetch.ObjectInfo``)."""

    size: int | None
    etag: str | None
    last_modified: str | None


def band_metadata_from_header(
    header: TiffHeader, band_index: int = 0, info: ObjectInfoLike | None = None
) -> dict[str, Any]:
    """The ``{band}_metadata`` struct (as a dict) of sample ``band_index`` of ``header``.

    Includes every overview level (largest first) and the internal mask with its
    overviews. ``info`` (size / ETag / Last-Modified of the object at index time)
    fills ``file_size``, ``etag`` and ``last_modified``; without it ``file_size``
    falls back to ``header.file_size``.

    Raises ``ValueError`` (naming the file) when ``band_index`` is not a sample of
    the file, and :class:`~rasteret.errors.CorruptTiffError` when a level's block
    arrays are shorter than its grid needs.
    """
    full = header.full
    source = header.source
    if not 0 <= band_index < full.samples_per_pixel:
        raise ValueError(
            f"{source}: band_index {band_index} out of range: the file has "
            f"{full.samples_per_pixel} sample(s) per pixel"
        )
    geo = header.geo
    offsets, counts = _plane_blocks(full, band_index, source)
    masks = header.masks
    file_size = info.size if info is not None and info.size is not None else header.file_size
    return {
        "image_width": full.width,
        "image_height": full.height,
        "tile_width": full.block_width,
        "tile_height": _block_height(full),
        "dtype": full.dtype,
        "transform": _float_list(geo.transform),
        "predictor": full.predictor,
        "compression": full.compression,
        "tile_offsets": offsets,
        "tile_byte_counts": counts,
        "pixel_scale": _float_list(geo.pixel_scale),
        "tiepoint": _float_list(geo.tiepoints),
        "nodata": geo.nodata,
        "samples_per_pixel": full.samples_per_pixel,
        "planar_configuration": full.planar_configuration,
        "photometric": full.photometric,
        "extra_samples": [int(v) for v in full.extra_samples],
        "band_index": band_index,
        "bits_per_sample": full.bits_per_sample,
        "sample_format": full.sample_format,
        "byte_order": header.byte_order,
        "tiled": full.tiled,
        "crs_wkt": geo.crs_wkt,
        "epsg": geo.epsg,
        "pixel_is_point": geo.pixel_is_point,
        "scale": _per_band(geo.band_scales, geo.scale, band_index),
        "offset": _per_band(geo.band_offsets, geo.offset, band_index),
        "jpeg_tables": full.jpeg_tables,
        "lerc_parameters": _int_list(full.lerc_parameters),
        "ycbcr_subsampling": _int_list(full.ycbcr_subsampling),
        "overviews": [_image_level(o, band_index, source) for o in header.overviews],
        "mask": _mask(masks, source) if masks else None,
        "file_size": file_size,
        "etag": info.etag if info is not None else None,
        "last_modified": info.last_modified if info is not None else None,
    }


def _plane_blocks(layout: ImageLayout, band_index: int, source: str) -> tuple[list[int], list[int]]:
    """Block offsets and byte counts of the plane holding ``band_index`` (all blocks if chunky)."""
    per_plane = layout.blocks_per_plane
    plane = band_index if layout.planar_configuration == 2 else 0
    if layout.planar_configuration == 2 and plane >= layout.samples_per_pixel:
        # an overview with fewer planes than the full image: not a valid pyramid
        raise CorruptTiffError(
            source,
            f"IFD {layout.ifd_index} has {layout.samples_per_pixel} plane(s), "
            f"band_index {band_index} is not one of them",
        )
    needed = per_plane * (plane + 1)
    offsets = np.asarray(layout.block_offsets)
    counts = np.asarray(layout.block_byte_counts)
    if offsets.size < needed or counts.size < needed:
        raise CorruptTiffError(
            source,
            f"IFD {layout.ifd_index} lists {offsets.size} block offsets and {counts.size} "
            f"byte counts; its {layout.width}x{layout.height} grid of "
            f"{layout.block_width}x{layout.block_height} blocks needs {needed}",
        )
    start = per_plane * plane
    return (
        offsets[start:needed].astype(np.int64).tolist(),
        counts[start:needed].astype(np.int64).tolist(),
    )


def _image_level(layout: ImageLayout, band_index: int, source: str) -> dict[str, Any]:
    """An ``IMAGE_LEVEL_TYPE`` dict for one overview (or mask overview) IFD."""
    offsets, counts = _plane_blocks(layout, band_index, source)
    return {
        "image_width": layout.width,
        "image_height": layout.height,
        "tile_width": layout.block_width,
        "tile_height": _block_height(layout),
        "tiled": layout.tiled,
        "compression": layout.compression,
        "predictor": layout.predictor,
        "jpeg_tables": layout.jpeg_tables,
        "tile_offsets": offsets,
        "tile_byte_counts": counts,
    }


def _mask(masks: tuple[ImageLayout, ...], source: str) -> dict[str, Any]:
    """A ``MASK_TYPE`` dict: the largest mask IFD plus the others as its overviews."""
    largest, *smaller = masks
    offsets, counts = _plane_blocks(largest, 0, source)
    return {
        "image_width": largest.width,
        "image_height": largest.height,
        "tile_width": largest.block_width,
        "tile_height": _block_height(largest),
        "tiled": largest.tiled,
        "compression": largest.compression,
        "predictor": largest.predictor,
        "bits_per_sample": largest.bits_per_sample,
        "tile_offsets": offsets,
        "tile_byte_counts": counts,
        "overviews": [_image_level(m, 0, source) for m in smaller],
    }


def _block_height(layout: ImageLayout) -> int:
    """Block height; a strip's RowsPerStrip (may be 2**32-1) is capped at the image height."""
    if layout.tiled:
        return layout.block_height
    return max(1, min(layout.block_height, layout.height))


def _per_band(values: tuple[float, ...] | None, common: float | None, band: int) -> float | None:
    if values is not None and band < len(values) and values[band] is not None:
        return float(values[band])
    return None if common is None else float(common)


def _float_list(values: tuple[float, ...] | None) -> list[float] | None:
    return None if values is None else [float(v) for v in values]


def _int_list(values: tuple[int, ...] | None) -> list[int] | None:
    return None if values is None else [int(v) for v in values]


def crs_string(epsg: int | None, crs_wkt: str | None) -> str | None:
    """The ``crs`` column value of a record: ``"EPSG:x"``, else the WKT, else ``None``."""
    if epsg is not None:
        return f"EPSG:{int(epsg)}"
    return crs_wkt or None


def record_crs(geo: GeoReference) -> str | None:
    """The ``crs`` column value for a file's georeference (see :func:`crs_string`)."""
    return crs_string(geo.epsg, geo.crs_wkt)
