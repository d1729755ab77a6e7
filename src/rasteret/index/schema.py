"""The Arrow schema of a rasteret collection.

A collection is a GeoParquet 1.1 table, one row per record (scene). Required record
columns are listed in :data:`REQUIRED_COLUMNS`; every band ``b`` has a
``{b}_metadata`` struct column of type :data:`BAND_METADATA_TYPE`, null where the
band is missing or its header could not be read (the error is then in
``{b}_error``, a string column).

The band struct is a superset of the original system's 17 fields. Differences:

* ``transform`` holds the 6 affine coefficients ``(a, b, c, d, e, f)`` (PixelIsArea);
  the original stored 4 (``a, c, e, f``). Readers accept both.
* ``tile_offsets`` / ``tile_byte_counts`` are the blocks of *this band's* plane
  (planar files are sliced per band); stripped files store strips as blocks of
  ``tile_width = image_width`` by ``tile_height = rows_per_strip``.
* added: full CRS (``crs_wkt`` WKT2_2019, ``epsg``), ``band_index`` (sample of the
  file this band reads), bit depth, sample format, byte order, tiling, JPEG tables,
  LERC parameters, YCbCr subsampling, scale/offset, PixelIsPoint flag, every
  overview level (``overviews``, largest first) and the internal mask
  (``mask``, with its own overviews), and the object's size / ETag / Last-Modified
  at index time.
"""

from __future__ import annotations

import pyarrow as pa

REQUIRED_COLUMNS: tuple[str, ...] = ("id", "datetime", "geometry", "assets", "bbox")
METADATA_SUFFIX = "_metadata"
ERROR_SUFFIX = "_error"

BBOX_TYPE = pa.struct(
    [
        ("xmin", pa.float64()),
        ("ymin", pa.float64()),
        ("xmax", pa.float64()),
        ("ymax", pa.float64()),
    ]
)

ASSET_TYPE = pa.struct([("href", pa.string()), ("band_index", pa.int64())])

# One image level (an overview, or a mask level): its own grid and block arrays.
IMAGE_LEVEL_TYPE = pa.struct(
    [
        ("image_width", pa.int32()),
        ("image_height", pa.int32()),
        ("tile_width", pa.int32()),
        ("tile_height", pa.int32()),
        ("tiled", pa.bool_()),
        ("compression", pa.int32()),
        ("predictor", pa.int32()),
        ("jpeg_tables", pa.binary()),
        ("tile_offsets", pa.list_(pa.int64())),
        ("tile_byte_counts", pa.list_(pa.int64())),
    ]
)

MASK_TYPE = pa.struct(
    [
        ("image_width", pa.int32()),
        ("image_height", pa.int32()),
        ("tile_width", pa.int32()),
        ("tile_height", pa.int32()),
        ("tiled", pa.bool_()),
        ("compression", pa.int32()),
        ("predictor", pa.int32()),
        ("bits_per_sample", pa.int32()),
        ("tile_offsets", pa.list_(pa.int64())),
        ("tile_byte_counts", pa.list_(pa.int64())),
        ("overviews", pa.list_(IMAGE_LEVEL_TYPE)),
    ]
)

ORIGINAL_BAND_FIELDS: tuple[str, ...] = (
    "image_width",
    "image_height",
    "tile_width",
    "tile_height",
    "dtype",
    "transform",
    "predictor",
    "compression",
    "tile_offsets",
    "tile_byte_counts",
    "pixel_scale",
    "tiepoint",
    "nodata",
    "samples_per_pixel",
    "planar_configuration",
    "photometric",
    "extra_samples",
)

BAND_METADATA_TYPE = pa.struct(
    [
        # --- the original system's 17 fields
        ("image_width", pa.int32()),
        ("image_height", pa.int32()),
        ("tile_width", pa.int32()),
        ("tile_height", pa.int32()),
        ("dtype", pa.string()),
        ("transform", pa.list_(pa.float64())),
        ("predictor", pa.int32()),
        ("compression", pa.int32()),
        ("tile_offsets", pa.list_(pa.int64())),
        ("tile_byte_counts", pa.list_(pa.int64())),
        ("pixel_scale", pa.list_(pa.float64())),
        ("tiepoint", pa.list_(pa.float64())),
        ("nodata", pa.float64()),
        ("samples_per_pixel", pa.int32()),
        ("planar_configuration", pa.int32()),
        ("photometric", pa.int32()),
        ("extra_samples", pa.list_(pa.int32())),
        # --- added by rasteret
        ("band_index", pa.int32()),
        ("bits_per_sample", pa.int32()),
        ("sample_format", pa.int32()),
        ("byte_order", pa.string()),
        ("tiled", pa.bool_()),
        ("crs_wkt", pa.string()),
        ("epsg", pa.int32()),
        ("pixel_is_point", pa.bool_()),
        ("scale", pa.float64()),
        ("offset", pa.float64()),
        ("jpeg_tables", pa.binary()),
        ("lerc_parameters", pa.list_(pa.int32())),
        ("ycbcr_subsampling", pa.list_(pa.int32())),
        ("overviews", pa.list_(IMAGE_LEVEL_TYPE)),
        ("mask", MASK_TYPE),
        ("file_size", pa.int64()),
        ("etag", pa.string()),
        ("last_modified", pa.string()),
    ]
)


def metadata_column(band: str) -> str:
    """Name of the header struct column of ``band``."""
    return f"{band}{METADATA_SUFFIX}"


def error_column(band: str) -> str:
    """Name of the per-asset error column of ``band``."""
    return f"{band}{ERROR_SUFFIX}"


def bands_of(schema: pa.Schema) -> list[str]:
    """Bands of a collection schema, in column order."""
    return [
        name[: -len(METADATA_SUFFIX)]
        for name in schema.names
        if name.endswith(METADATA_SUFFIX) and pa.types.is_struct(schema.field(name).type)
    ]
