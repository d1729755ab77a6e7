"""Typed errors raised by rasteret.

Every error that concerns one file names that file (``source``) and, where it
applies, the feature or byte range at fault, so a user can act on the message.
"""

from __future__ import annotations


class RasteretError(Exception):
    """Base class of every error rasteret raises on purpose."""


class TiffError(RasteretError):
    """A TIFF could not be parsed or decoded."""

    def __init__(self, source: str, message: str) -> None:
        self.source = source
        self.reason = message
        super().__init__(f"{source}: {message}")


class CorruptTiffError(TiffError):
    """The bytes of a TIFF contradict the TIFF specification (truncated, hostile, corrupt)."""


class UnsupportedTiffError(TiffError):
    """A valid TIFF uses a feature rasteret does not read (the feature is named)."""

    def __init__(self, source: str, feature: str, detail: str = "") -> None:
        self.feature = feature
        message = f"unsupported TIFF feature: {feature}"
        if detail:
            message += f" ({detail})"
        super().__init__(source, message)


class FetchError(RasteretError):
    """Bytes could not be fetched from an object (after retries)."""

    def __init__(self, url: str, message: str, byte_range: tuple[int, int] | None = None) -> None:
        self.url = url
        self.byte_range = byte_range
        where = f" bytes {byte_range[0]}-{byte_range[1] - 1}" if byte_range else ""
        super().__init__(f"{url}{where}: {message}")


class ObjectNotFoundError(FetchError, FileNotFoundError):
    """The object does not exist."""


class StaleIndexError(FetchError):
    """The object changed (size / ETag) since it was indexed."""


class UnindexedAssetError(RasteretError):
    """A selected record has an asset that could not be indexed (``{band}_error``): its
    pixels would read as nodata. ``refresh()`` re-indexes it; ``errors="skip"`` reads
    without such records."""


class CollectionSchemaError(RasteretError, ValueError):
    """A table is not a valid rasteret collection (missing or malformed columns)."""


class BandNotFoundError(RasteretError, KeyError):
    """A requested band is not in the collection."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""
