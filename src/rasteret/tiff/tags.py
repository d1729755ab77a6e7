"""TIFF tag ids, field types and names (TIFF 6.0, BigTIFF, GeoTIFF, GDAL private tags)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class Tag(IntEnum):
    """Tags the header parser reads (every other tag is skipped without being fetched)."""

    NEW_SUBFILE_TYPE = 254
    SUBFILE_TYPE = 255
    IMAGE_WIDTH = 256
    IMAGE_LENGTH = 257
    BITS_PER_SAMPLE = 258
    COMPRESSION = 259
    PHOTOMETRIC = 262
    STRIP_OFFSETS = 273
    SAMPLES_PER_PIXEL = 277
    ROWS_PER_STRIP = 278
    STRIP_BYTE_COUNTS = 279
    PLANAR_CONFIGURATION = 284
    PREDICTOR = 317
    TILE_WIDTH = 322
    TILE_LENGTH = 323
    TILE_OFFSETS = 324
    TILE_BYTE_COUNTS = 325
    SUB_IFDS = 330
    EXTRA_SAMPLES = 338
    SAMPLE_FORMAT = 339
    JPEG_TABLES = 347
    YCBCR_SUBSAMPLING = 530
    MODEL_PIXEL_SCALE = 33550
    MODEL_TIEPOINT = 33922
    MODEL_TRANSFORMATION = 34264
    GEO_KEY_DIRECTORY = 34735
    GEO_DOUBLE_PARAMS = 34736
    GEO_ASCII_PARAMS = 34737
    GDAL_METADATA = 42112
    GDAL_NODATA = 42113
    LERC_PARAMETERS = 50674


#: Tags whose values only matter for IFD0 (georeferencing); other IFDs skip them.
GEO_TAGS = frozenset(
    {
        Tag.MODEL_PIXEL_SCALE,
        Tag.MODEL_TIEPOINT,
        Tag.MODEL_TRANSFORMATION,
        Tag.GEO_KEY_DIRECTORY,
        Tag.GEO_DOUBLE_PARAMS,
        Tag.GEO_ASCII_PARAMS,
        Tag.GDAL_METADATA,
        Tag.GDAL_NODATA,
    }
)

#: Every tag whose value the parser needs.
WANTED_TAGS = frozenset(int(t) for t in Tag)


class FieldType(IntEnum):
    """TIFF field (data) types, TIFF 6.0 + BigTIFF."""

    BYTE = 1
    ASCII = 2
    SHORT = 3
    LONG = 4
    RATIONAL = 5
    SBYTE = 6
    UNDEFINED = 7
    SSHORT = 8
    SLONG = 9
    SRATIONAL = 10
    FLOAT = 11
    DOUBLE = 12
    IFD = 13
    LONG8 = 16
    SLONG8 = 17
    IFD8 = 18


@dataclass(frozen=True, slots=True)
class FieldInfo:
    """Size of one value and the numpy dtype char (without byte order) of a field type."""

    size: int
    dtype: str  # numpy kind+size, e.g. "u2"; rationals are pairs of "u4"/"i4"


FIELD_INFO: dict[int, FieldInfo] = {
    FieldType.BYTE: FieldInfo(1, "u1"),
    FieldType.ASCII: FieldInfo(1, "u1"),
    FieldType.SHORT: FieldInfo(2, "u2"),
    FieldType.LONG: FieldInfo(4, "u4"),
    FieldType.RATIONAL: FieldInfo(8, "u4"),
    FieldType.SBYTE: FieldInfo(1, "i1"),
    FieldType.UNDEFINED: FieldInfo(1, "u1"),
    FieldType.SSHORT: FieldInfo(2, "i2"),
    FieldType.SLONG: FieldInfo(4, "i4"),
    FieldType.SRATIONAL: FieldInfo(8, "i4"),
    FieldType.FLOAT: FieldInfo(4, "f4"),
    FieldType.DOUBLE: FieldInfo(8, "f8"),
    FieldType.IFD: FieldInfo(4, "u4"),
    FieldType.LONG8: FieldInfo(8, "u8"),
    FieldType.SLONG8: FieldInfo(8, "i8"),
    FieldType.IFD8: FieldInfo(8, "u8"),
}

INTEGER_TYPES = frozenset(
    {
        FieldType.BYTE,
        FieldType.SHORT,
        FieldType.LONG,
        FieldType.SBYTE,
        FieldType.SSHORT,
        FieldType.SLONG,
        FieldType.IFD,
        FieldType.LONG8,
        FieldType.SLONG8,
        FieldType.IFD8,
    }
)
RATIONAL_TYPES = frozenset({FieldType.RATIONAL, FieldType.SRATIONAL})
FLOAT_TYPES = frozenset({FieldType.FLOAT, FieldType.DOUBLE})
NUMERIC_TYPES = INTEGER_TYPES | RATIONAL_TYPES | FLOAT_TYPES
BYTES_TYPES = frozenset({FieldType.BYTE, FieldType.UNDEFINED, FieldType.ASCII, FieldType.SBYTE})


def tag_name(tag: int) -> str:
    """Readable name of a tag id (``"Tag 12345"`` for tags the parser does not know)."""
    try:
        return "".join(part.capitalize() for part in Tag(tag).name.split("_"))
    except ValueError:
        return f"Tag {tag}"


def type_name(field_type: int) -> str:
    """Readable name of a field type id."""
    try:
        return FieldType(field_type).name
    except ValueError:
        return f"type {field_type}"
