"""Immutable value types describing a parsed TIFF / GeoTIFF header.

Produced by :func:`rasteret.tiff.read_header`, consumed by the tile decoder
(:mod:`rasteret.tiff.decode`) and by the index layer, which stores them as Arrow.
No I/O happens here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

ImageKind = Literal["full", "overview", "mask", "other"]
ByteOrder = Literal["<", ">"]


@dataclass(frozen=True, slots=True, eq=False)
class ImageLayout:
    """One IFD: geometry and encoding of one image (full resolution, overview or mask).

    Stripped images are described as blocks of ``block_width = width`` by
    ``block_height = rows_per_strip``; tiled images by their tile size. Block arrays are
    row-major (``index = row * blocks_across + col``); for planar configuration 2 the
    blocks of sample plane ``p`` follow those of plane ``p - 1``.
    """

    ifd_index: int
    kind: ImageKind
    new_subfile_type: int
    width: int
    height: int
    tiled: bool
    block_width: int
    block_height: int
    samples_per_pixel: int
    bits_per_sample: int
    sample_format: int  # TIFF SampleFormat: 1 uint, 2 int, 3 float, 5 complex int, 6 complex float
    dtype: str  # numpy dtype name of one decoded sample, e.g. "uint16", "float32", "complex64"
    compression: int  # TIFF Compression tag value
    predictor: int  # 1 none, 2 horizontal, 3 floating point
    planar_configuration: int  # 1 chunky, 2 planar
    photometric: int | None
    extra_samples: tuple[int, ...] = ()
    ycbcr_subsampling: tuple[int, int] | None = None
    jpeg_tables: bytes | None = None
    lerc_parameters: tuple[int, ...] | None = None
    block_offsets: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint64))
    block_byte_counts: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint64))

    @property
    def blocks_across(self) -> int:
        return -(-self.width // self.block_width)

    @property
    def blocks_down(self) -> int:
        return -(-self.height // self.block_height)

    @property
    def blocks_per_plane(self) -> int:
        return self.blocks_across * self.blocks_down

    @property
    def planes(self) -> int:
        return self.samples_per_pixel if self.planar_configuration == 2 else 1


@dataclass(frozen=True, slots=True)
class GeoReference:
    """Georeferencing and radiometric metadata of a GeoTIFF (from IFD0).

    ``transform`` is the affine ``(a, b, c, d, e, f)`` mapping pixel corner
    ``(col, row)`` to ``(x, y) = (a*col + b*row + c, d*col + e*row + f)``, normalised
    to PixelIsArea (a PixelIsPoint file is shifted by half a pixel, as GDAL does).
    """

    crs_wkt: str | None = None  # WKT2_2019 of the full CRS (EPSG or user-defined)
    epsg: int | None = None  # EPSG code when the CRS is exactly an EPSG CRS
    crs_error: str | None = None  # set when GeoKeys exist but PROJ cannot build a CRS
    transform: tuple[float, float, float, float, float, float] | None = None
    pixel_is_point: bool = False
    pixel_scale: tuple[float, ...] | None = None
    tiepoints: tuple[float, ...] | None = None
    model_transformation: tuple[float, ...] | None = None
    nodata: float | None = None  # GDAL_NODATA (NaN allowed)
    scale: float | None = None  # GDAL_METADATA scale (per band list in band_scales)
    offset: float | None = None
    band_scales: tuple[float, ...] | None = None
    band_offsets: tuple[float, ...] | None = None
    gdal_metadata: str | None = None


@dataclass(frozen=True, slots=True, eq=False)
class TiffHeader:
    """Everything rasteret needs from a TIFF header to read any of its pixels."""

    source: str
    byte_order: ByteOrder
    bigtiff: bool
    images: tuple[ImageLayout, ...]  # every IFD, file order
    geo: GeoReference
    file_size: int | None = None
    header_requests: int = 0  # how many fetch calls parsing took

    @property
    def full(self) -> ImageLayout:
        """The full-resolution image (IFD0 in a standard file)."""
        for image in self.images:
            if image.kind == "full":
                return image
        return self.images[0]

    @property
    def overviews(self) -> tuple[ImageLayout, ...]:
        """Reduced-resolution images of the full image, largest first."""
        levels = [i for i in self.images if i.kind == "overview"]
        return tuple(sorted(levels, key=lambda i: -i.width))

    @property
    def masks(self) -> tuple[ImageLayout, ...]:
        """Internal mask images, largest (full resolution) first."""
        levels = [i for i in self.images if i.kind == "mask"]
        return tuple(sorted(levels, key=lambda i: -i.width))
