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
    """The object changed (size / ETag) since it was indexed, or the collection's files
    since it was loaded or pickled. The message ends with how to fix it: ``fix`` (by
    default :data:`REFRESH`)."""

    #: The fix when indexed objects changed: re-index them, or rebuild.
    REFRESH = (
        "re-index the changed objects with collection.refresh() (then export it again), "
        "or rebuild the collection (build_*(..., force=True)) and load it again "
        "(rasteret.load)"
    )
    #: The fix when a pickled store / dataset no longer matches its collection's files.
    RESEND = (
        "load the collection again in the parent process (rasteret.load), build the store "
        "or dataset from it again and send that to the workers"
    )

    def __init__(
        self,
        url: str,
        message: str,
        byte_range: tuple[int, int] | None = None,
        *,
        fix: str | None = None,
    ) -> None:
        self.fix = fix or self.REFRESH
        super().__init__(url, f"{message}. To fix: {self.fix}", byte_range)


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


class LocalHrefRefusedError(RasteretError, PermissionError):
    """A loaded collection points at a local file outside the directories it may read
    (:mod:`rasteret.index.local_access`)."""

    def __init__(self, source: str, message: str) -> None:
        self.source = source
        self.reason = message
        super().__init__(f"{source}: {message}")
