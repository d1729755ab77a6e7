"""Typed, read-only views over one ``{band}_metadata`` struct value.

Consumers (the Zarr store, readers) use these instead of parsing structs by hand::

    levels = BandLevels.from_struct(table["B04_metadata"][i].as_py())
    levels.full.width, levels.full.tile_width, levels.full.offsets   # full resolution
    levels.overviews[0].transform                                     # first (largest) overview
    levels.mask                                                       # internal mask or None
    levels.layout(levels.overviews[0])   # an ImageLayout for BlockDecoding.from_layout

Every level carries its own grid (size, tile size, affine transform) and its block
arrays (``offsets`` / ``byte_counts``, int64, row-major, ``tiles_down x tiles_across``).
Overview and mask transforms are derived from the full transform by scaling with the
width / height ratios, as GDAL does. Fields missing from older structs (the
original system's 17 fields, 4-value transforms) get documented defaults.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pyarrow as pa

from rasteret._types import Affine6
from rasteret.tiff.model import ImageLayout

LevelKind = Literal["full", "overview", "mask"]

_NEW_SUBFILE_TYPE = {"full": 0, "overview": 1, "mask": 4}


@dataclass(frozen=True, slots=True, eq=False)
class BandLevel:
    """One image level of a band: full resolution, an overview, or a mask level.

    ``level`` is 0 for the full resolution (and the full-resolution mask) and ``i + 1``
    for overview ``i``. ``transform`` is the affine ``(a, b, c, d, e, f)`` of this
    level's pixel corners, or ``None`` for a file without georeferencing.
    """

    kind: LevelKind
    level: int
    width: int
    height: int
    tile_width: int
    tile_height: int
    tiled: bool
    transform: Affine6 | None
    offsets: np.ndarray
    byte_counts: np.ndarray
    compression: int
    predictor: int
    jpeg_tables: bytes | None
    bits_per_sample: int

    @property
    def tiles_across(self) -> int:
        return -(-self.width // self.tile_width)

    @property
    def tiles_down(self) -> int:
        return -(-self.height // self.tile_height)

    @property
    def tile_count(self) -> int:
        return self.tiles_across * self.tiles_down

    @property
    def shape(self) -> tuple[int, int]:
        """``(height, width)`` in pixels."""
        return (self.height, self.width)

    @property
    def tile_shape(self) -> tuple[int, int]:
        """``(tile_height, tile_width)`` in pixels."""
        return (self.tile_height, self.tile_width)

    def block(self, row: int, col: int) -> tuple[int, int]:
        """``(offset, byte_count)`` of the block at tile ``row``, ``col`` (count 0 = sparse)."""
        if not (0 <= row < self.tiles_down and 0 <= col < self.tiles_across):
            raise IndexError(
                f"tile ({row}, {col}) outside the {self.tiles_down}x{self.tiles_across} grid"
            )
        index = row * self.tiles_across + col
        return int(self.offsets[index]), int(self.byte_counts[index])


@dataclass(frozen=True, slots=True, eq=False)
class BandLevels:
    """Everything the index knows about one band of one record, as typed values."""

    full: BandLevel
    overviews: tuple[BandLevel, ...]
    mask: BandLevel | None
    mask_overviews: tuple[BandLevel, ...]
    dtype: str
    nodata: float | None
    crs_wkt: str | None
    epsg: int | None
    band_index: int
    samples_per_pixel: int
    planar_configuration: int
    photometric: int | None
    bits_per_sample: int
    sample_format: int
    byte_order: str
    extra_samples: tuple[int, ...]
    lerc_parameters: tuple[int, ...] | None
    ycbcr_subsampling: tuple[int, int] | None
    scale: float | None
    offset: float | None
    pixel_is_point: bool
    file_size: int | None
    etag: str | None
    last_modified: str | None

    @classmethod
    def from_struct(cls, row: Mapping[str, Any] | pa.StructScalar) -> BandLevels:
        """Build from one ``{band}_metadata`` value (a dict, or an Arrow struct scalar).

        Defaults for fields older structs lack: ``predictor`` 1, ``compression`` 1,
        ``tiled`` True, ``band_index`` 0, ``byte_order`` ``"<"``, ``bits_per_sample``
        from ``dtype``, ``sample_format`` from ``dtype``, no overviews, no mask.
        Raises ``ValueError`` for a null struct or a transform not of 4 or 6 values.
        """
        if isinstance(row, pa.Scalar):
            row = row.as_py()
        if row is None:
            raise ValueError("band metadata is null (band missing or header unreadable)")
        dtype = str(row["dtype"])
        np_dtype = np.dtype(dtype)
        bits = _int(row.get("bits_per_sample"), np_dtype.itemsize * 8)
        full_transform = _affine(row.get("transform"))
        full = _level(row, "full", 0, full_transform, None, bits)
        overviews = tuple(
            _level(o, "overview", i + 1, None, full, bits)
            for i, o in enumerate(row.get("overviews") or ())
        )
        mask = mask_overviews = None
        mask_row = row.get("mask")
        if mask_row is not None:
            mask = _level(mask_row, "mask", 0, None, full, _int(mask_row.get("bits_per_sample"), 1))
            mask_overviews = tuple(
                _level(m, "mask", i + 1, None, full, mask.bits_per_sample)
                for i, m in enumerate(mask_row.get("overviews") or ())
            )
        ycbcr = row.get("ycbcr_subsampling")
        lerc = row.get("lerc_parameters")
        return cls(
            full=full,
            overviews=overviews,
            mask=mask,
            mask_overviews=mask_overviews or (),
            dtype=dtype,
            nodata=row.get("nodata"),
            crs_wkt=row.get("crs_wkt"),
            epsg=row.get("epsg"),
            band_index=_int(row.get("band_index"), 0),
            samples_per_pixel=_int(row.get("samples_per_pixel"), 1),
            planar_configuration=_int(row.get("planar_configuration"), 1),
            photometric=row.get("photometric"),
            bits_per_sample=bits,
            sample_format=_int(row.get("sample_format"), _sample_format(np_dtype)),
            byte_order=row.get("byte_order") or "<",
            extra_samples=tuple(row.get("extra_samples") or ()),
            lerc_parameters=None if lerc is None else tuple(lerc),
            ycbcr_subsampling=None if ycbcr is None else (int(ycbcr[0]), int(ycbcr[1])),
            scale=row.get("scale"),
            offset=row.get("offset"),
            pixel_is_point=bool(row.get("pixel_is_point") or False),
            file_size=row.get("file_size"),
            etag=row.get("etag"),
            last_modified=row.get("last_modified"),
        )

    @property
    def levels(self) -> tuple[BandLevel, ...]:
        """Full resolution followed by the overviews, largest first."""
        return (self.full, *self.overviews)

    @property
    def mask_levels(self) -> tuple[BandLevel, ...]:
        """The mask levels, largest first (empty without an internal mask)."""
        return () if self.mask is None else (self.mask, *self.mask_overviews)

    @property
    def crs(self) -> str | None:
        """``"EPSG:x"`` when the CRS is an EPSG CRS, else its WKT, else ``None``."""
        if self.epsg is not None:
            return f"EPSG:{self.epsg}"
        return self.crs_wkt

    @property
    def samples_per_block(self) -> int:
        """Samples in one decoded block: 1 for a (sliced) planar band, else all samples."""
        return 1 if self.planar_configuration == 2 else self.samples_per_pixel

    def mask_for(self, level: BandLevel) -> BandLevel | None:
        """The mask level with the same size as ``level``, or ``None``."""
        for mask in self.mask_levels:
            if (mask.width, mask.height) == (level.width, level.height):
                return mask
        return None

    def layout(self, level: BandLevel) -> ImageLayout:
        """An :class:`ImageLayout` describing ``level`` (for ``BlockDecoding.from_layout``).

        A planar-separate band is described as a one-sample chunky image, because its
        block arrays hold only this band's plane. ``ifd_index`` is -1 (not stored).
        """
        if level.kind == "mask":
            return ImageLayout(
                ifd_index=-1,
                kind="mask",
                new_subfile_type=_NEW_SUBFILE_TYPE["mask"] | (1 if level.level else 0),
                width=level.width,
                height=level.height,
                tiled=level.tiled,
                block_width=level.tile_width,
                block_height=level.tile_height,
                samples_per_pixel=1,
                bits_per_sample=level.bits_per_sample,
                sample_format=1,
                dtype="uint8",
                compression=level.compression,
                predictor=level.predictor,
                planar_configuration=1,
                photometric=4,
                jpeg_tables=level.jpeg_tables,
                block_offsets=level.offsets,
                block_byte_counts=level.byte_counts,
            )
        planar = self.planar_configuration == 2
        return ImageLayout(
            ifd_index=-1,
            kind=level.kind,
            new_subfile_type=_NEW_SUBFILE_TYPE[level.kind],
            width=level.width,
            height=level.height,
            tiled=level.tiled,
            block_width=level.tile_width,
            block_height=level.tile_height,
            samples_per_pixel=1 if planar else self.samples_per_pixel,
            bits_per_sample=self.bits_per_sample,
            sample_format=self.sample_format,
            dtype=self.dtype,
            compression=level.compression,
            predictor=level.predictor,
            planar_configuration=1,
            photometric=self.photometric,
            extra_samples=() if planar else self.extra_samples,
            ycbcr_subsampling=self.ycbcr_subsampling,
            jpeg_tables=level.jpeg_tables,
            lerc_parameters=self.lerc_parameters,
            block_offsets=level.offsets,
            block_byte_counts=level.byte_counts,
        )


def band_levels(column: pa.ChunkedArray | pa.Array) -> list[BandLevels | None]:
    """:class:`BandLevels` of every row of a ``{band}_metadata`` column (``None`` where null)."""
    return [None if v is None else BandLevels.from_struct(v) for v in column.to_pylist()]


def _level(
    row: Mapping[str, Any],
    kind: LevelKind,
    index: int,
    transform: Affine6 | None,
    full: BandLevel | None,
    bits: int,
) -> BandLevel:
    width = int(row["image_width"])
    height = int(row["image_height"])
    if full is not None:
        transform = _scaled(full.transform, full.width / width, full.height / height)
    offsets = np.asarray(row.get("tile_offsets") or (), dtype=np.int64)
    counts = np.asarray(row.get("tile_byte_counts") or (), dtype=np.int64)
    level = BandLevel(
        kind=kind,
        level=index,
        width=width,
        height=height,
        tile_width=int(row["tile_width"]),
        tile_height=int(row["tile_height"]),
        tiled=True if row.get("tiled") is None else bool(row["tiled"]),
        transform=transform,
        offsets=offsets,
        byte_counts=counts,
        compression=_int(row.get("compression"), 1),
        predictor=_int(row.get("predictor"), 1),
        jpeg_tables=row.get("jpeg_tables"),
        bits_per_sample=bits,
    )
    if offsets.size != level.tile_count or counts.size != level.tile_count:
        raise ValueError(
            f"{kind} level {index}: {offsets.size} offsets / {counts.size} byte counts for a "
            f"grid of {level.tiles_down}x{level.tiles_across} = {level.tile_count} blocks"
        )
    return level


def _affine(values: Any) -> Affine6 | None:
    """6-value affine from a stored transform (6 values, or the original 4: a, c, e, f)."""
    if values is None:
        return None
    values = [float(v) for v in values]
    if len(values) == 6:
        return tuple(values)  # type: ignore[return-value]
    if len(values) == 4:
        a, c, e, f = values
        return (a, 0.0, c, 0.0, e, f)
    raise ValueError(f"transform must have 6 (or legacy 4) values, got {len(values)}")


def _scaled(transform: Affine6 | None, sx: float, sy: float) -> Affine6 | None:
    """``transform`` with pixels ``sx`` times wider and ``sy`` times taller."""
    if transform is None:
        return None
    a, b, c, d, e, f = transform
    return (a * sx, b * sy, c, d * sx, e * sy, f)


def _int(value: Any, default: int) -> int:
    return default if value is None else int(value)


def _sample_format(dtype: np.dtype) -> int:
    return {"u": 1, "b": 1, "i": 2, "f": 3, "c": 6}.get(dtype.kind, 1)
