"""Georeferencing of IFD0: affine transform, nodata, GDAL scale/offset, CRS → GeoReference."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass

import numpy as np

from rasteret.tiff.geokeys import (
    GT_RASTER_TYPE,
    RASTER_PIXEL_IS_POINT,
    crs_from_geokeys,
    parse_geokey_directory,
)
from rasteret.tiff.model import GeoReference

Affine = tuple[float, float, float, float, float, float]


@dataclass(frozen=True, slots=True)
class GeoTags:
    """Raw georeferencing tag values of IFD0 (None when the tag is absent)."""

    pixel_scale: np.ndarray | None = None
    tiepoints: np.ndarray | None = None
    model_transformation: np.ndarray | None = None
    geokey_directory: np.ndarray | None = None
    geo_doubles: np.ndarray | None = None
    geo_ascii: str | None = None
    gdal_nodata: str | None = None
    gdal_metadata: str | None = None


def affine_transform(
    pixel_scale: np.ndarray | None,
    tiepoints: np.ndarray | None,
    model_transformation: np.ndarray | None,
    pixel_is_point: bool,
) -> Affine | None:
    """The pixel-corner affine ``(a, b, c, d, e, f)`` GDAL derives from the model tags.

    ModelPixelScale + the first ModelTiepoint win over ModelTransformation (as in GDAL);
    a negative ScaleY is read as north-up (GDAL's default); PixelIsPoint shifts the
    origin by half a pixel (GDAL unless ``GTIFF_POINT_GEO_IGNORE``).
    """
    transform: Affine | None = None
    if (
        pixel_scale is not None
        and pixel_scale.size >= 2
        and pixel_scale[0] != 0
        and pixel_scale[1] != 0
        and tiepoints is not None
        and tiepoints.size >= 6
    ):
        sx = float(pixel_scale[0])
        sy = float(pixel_scale[1])
        e = sy if sy < 0 else -sy
        i, j, x, y = (float(v) for v in tiepoints[[0, 1, 3, 4]])
        transform = (sx, 0.0, x - i * sx, 0.0, e, y - j * e)
    elif model_transformation is not None and model_transformation.size == 16:
        m = [float(v) for v in model_transformation]
        transform = (m[0], m[1], m[3], m[4], m[5], m[7])
    if transform is None:
        return None
    if pixel_is_point:
        a, b, c, d, e, f = transform
        transform = (a, b, c - (a * 0.5 + b * 0.5), d, e, f - (d * 0.5 + e * 0.5))
    return transform


def parse_nodata(text: str | None) -> float | None:
    """GDAL_NODATA text (``"-9999"``, ``"nan"``, ``"-inf"`` ...) as a float."""
    if text is None:
        return None
    value = text.strip().rstrip("\0").strip()
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        lowered = value.lower()
        if lowered in ("1.#inf", "+1.#inf"):
            return math.inf
        if lowered == "-1.#inf":
            return -math.inf
        if "nan" in lowered or "ind" in lowered:
            return math.nan
        return None


def parse_scale_offset(
    xml_text: str | None, samples: int
) -> tuple[tuple[float, ...] | None, tuple[float, ...] | None]:
    """Per-band SCALE and OFFSET items of a GDAL_METADATA document (None when absent)."""
    if not xml_text:
        return None, None
    try:
        root = ET.fromstring(xml_text.strip().rstrip("\0"))
    except ET.ParseError:
        return None, None
    scales: dict[int, float] = {}
    offsets: dict[int, float] = {}
    for item in root.iter("Item"):
        role = (item.get("role") or item.get("name") or "").lower()
        sample = item.get("sample")
        if role not in ("scale", "offset") or sample is None:
            continue
        try:
            band = int(sample)
            value = float((item.text or "").strip())
        except ValueError:
            continue
        (scales if role == "scale" else offsets)[band] = value
    n = max(samples, 1)
    band_scales = tuple(scales.get(b, 1.0) for b in range(n)) if scales else None
    band_offsets = tuple(offsets.get(b, 0.0) for b in range(n)) if offsets else None
    return band_scales, band_offsets


def _tuple(values: np.ndarray | None) -> tuple[float, ...] | None:
    return None if values is None else tuple(float(v) for v in values)


def build_georeference(tags: GeoTags, samples: int) -> GeoReference:
    """Everything georeferencing-related of IFD0; a bad CRS only sets ``crs_error``."""
    crs_wkt = epsg = crs_error = None
    pixel_is_point = False
    if tags.geokey_directory is not None:
        try:
            keys = parse_geokey_directory(tags.geokey_directory, tags.geo_doubles, tags.geo_ascii)
        except ValueError as exc:
            crs_error = f"malformed GeoKeyDirectory: {exc}"
        else:
            pixel_is_point = keys.get(GT_RASTER_TYPE) == RASTER_PIXEL_IS_POINT
            result = crs_from_geokeys(keys)
            crs_wkt, epsg, crs_error = result.wkt, result.epsg, result.error
    band_scales, band_offsets = parse_scale_offset(tags.gdal_metadata, samples)
    return GeoReference(
        crs_wkt=crs_wkt,
        epsg=epsg,
        crs_error=crs_error,
        transform=affine_transform(
            tags.pixel_scale, tags.tiepoints, tags.model_transformation, pixel_is_point
        ),
        pixel_is_point=pixel_is_point,
        pixel_scale=_tuple(tags.pixel_scale),
        tiepoints=_tuple(tags.tiepoints),
        model_transformation=_tuple(tags.model_transformation),
        nodata=parse_nodata(tags.gdal_nodata),
        scale=band_scales[0] if band_scales else None,
        offset=band_offsets[0] if band_offsets else None,
        band_scales=band_scales,
        band_offsets=band_offsets,
        gdal_metadata=tags.gdal_metadata,
    )
