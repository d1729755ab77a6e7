"""The control plane: the collection index (Arrow / GeoParquet) and its schema.

Public API: :class:`CollectionTable`, :func:`load`, :func:`as_collection`,
:func:`band_metadata_from_header` (TIFF header → ``{band}_metadata`` struct) and the
typed header views :class:`BandLevels` / :class:`BandLevel`.
"""

from rasteret.index.convert import band_metadata_from_header, crs_string, record_crs
from rasteret.index.describe import DescribeResult
from rasteret.index.levels import BandLevel, BandLevels, band_levels
from rasteret.index.loading import as_collection, load
from rasteret.index.schema import (
    ASSET_TYPE,
    BAND_METADATA_TYPE,
    BBOX_TYPE,
    IMAGE_LEVEL_TYPE,
    MASK_TYPE,
    REQUIRED_COLUMNS,
    bands_of,
    error_column,
    metadata_column,
)
from rasteret.index.table import COLLECTION_VERSION, CollectionTable
from rasteret.index.validate import REQUIRED_BAND_FIELDS, schema_problems, validate_table

__all__ = [
    "ASSET_TYPE",
    "BAND_METADATA_TYPE",
    "BBOX_TYPE",
    "COLLECTION_VERSION",
    "IMAGE_LEVEL_TYPE",
    "MASK_TYPE",
    "REQUIRED_BAND_FIELDS",
    "REQUIRED_COLUMNS",
    "BandLevel",
    "BandLevels",
    "CollectionTable",
    "DescribeResult",
    "as_collection",
    "band_levels",
    "band_metadata_from_header",
    "bands_of",
    "crs_string",
    "error_column",
    "load",
    "metadata_column",
    "record_crs",
    "schema_problems",
    "validate_table",
]
