"""Write small Cloud-Optimized GeoTIFFs without GDAL (imagecodecs does the encoding).

``compression="jpeg2000"`` writes lossless (reversible) JPEG 2000 codestreams (TIFF
Compression 34712), which GDAL's GTiff driver cannot write.

The files follow GDAL's COG layout: a ``GDAL_STRUCTURAL_METADATA`` ghost area, every IFD
before the first tile, overview data before full-resolution data. They carry GeoKeys
(ModelPixelScale + ModelTiepoint, or ModelTransformation for rotated grids), GDAL_NODATA,
optional GDAL_METADATA scale/offset, and reduced-resolution IFDs (NewSubfileType = 1).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path

import imagecodecs
import numpy as np

from rasteret.samples.tiffio import (
    ASCII,
    DOUBLE,
    LONG,
    SHORT,
    ImageToWrite,
    WrittenTiff,
    write_tiff,
)

Transform = tuple[float, float, float, float, float, float]

COMPRESSION_CODES = {
    "none": 1,
    "lzw": 5,
    "deflate": 8,
    "packbits": 32773,
    "lzma": 34925,
    "zstd": 50000,
    "jpeg2000": 34712,
}
_SAMPLE_FORMATS = {"u": 1, "i": 2, "f": 3}


def _encoder(compression: str, level: int | None) -> Callable[[np.ndarray], bytes]:
    """Encoder of a ``(rows, cols, samples)`` block (byte codecs encode its bytes)."""
    if compression == "jpeg2000":
        return _jpeg2k_encode
    byte_codec = _byte_encoder(compression, level)
    return lambda block: byte_codec(block.tobytes())


def _byte_encoder(compression: str, level: int | None) -> Callable[[bytes], bytes]:
    match compression:
        case "none":
            return bytes
        case "deflate":
            return lambda data: imagecodecs.deflate_encode(data, level=level or 6)
        case "lzw":
            return imagecodecs.lzw_encode
        case "zstd":
            return lambda data: imagecodecs.zstd_encode(data, level=level or 9)
        case "lzma":
            return lambda data: imagecodecs.lzma_encode(data, level=level)
        case "packbits":
            return imagecodecs.packbits_encode
    raise ValueError(
        f"unsupported compression {compression!r}; use one of {sorted(COMPRESSION_CODES)}"
    )


def _jpeg2k_encode(block: np.ndarray) -> bytes:
    """A lossless (reversible 5/3 wavelet) JPEG 2000 codestream of one block."""
    image = block[..., 0] if block.shape[-1] == 1 else block
    return bytes(imagecodecs.jpeg2k_encode(image, level=0, codecformat="J2K"))


def _apply_predictor(block: np.ndarray, predictor: int) -> np.ndarray:
    """Apply the TIFF predictor to a ``(rows, cols, samples)`` block."""
    if predictor == 2:
        as_int = block.view(f"u{block.dtype.itemsize}") if block.dtype.kind == "f" else block
        return imagecodecs.delta_encode(as_int, axis=-2)
    if predictor == 3:
        return imagecodecs.floatpred_encode(block, axis=-2)
    return block


def _valid_mask(array: np.ndarray, nodata: float | None) -> np.ndarray | None:
    if nodata is None:
        return None
    if isinstance(nodata, float) and math.isnan(nodata):
        return ~np.isnan(array)
    return array != np.asarray(nodata).astype(array.dtype)


def reduce_level(
    array: np.ndarray, factor: int, *, nodata: float | None = None, resampling: str = "average"
) -> np.ndarray:
    """One overview of ``array`` ``(bands, rows, cols)``, ``ceil(size / factor)`` pixels each way.

    ``average`` averages the valid (non-nodata) pixels of each ``factor``×``factor`` block
    (all-nodata blocks stay nodata; integers are rounded half up; edge blocks of sizes
    that ``factor`` does not divide average what they hold, where GDAL would use
    fractional windows); ``nearest`` takes source pixel
    ``round(i * size / out_size)`` (GDAL 3.12's overview rule: the top-left pixel of each
    block when ``factor`` divides the size).
    """
    bands, rows, cols = array.shape
    out_rows, out_cols = -(-rows // factor), -(-cols // factor)
    if resampling == "nearest":
        r = np.minimum((np.arange(out_rows) * (rows / out_rows) + 0.5).astype(np.intp), rows - 1)
        c = np.minimum((np.arange(out_cols) * (cols / out_cols) + 0.5).astype(np.intp), cols - 1)
        return np.ascontiguousarray(array[:, r][:, :, c])
    if resampling != "average":
        raise ValueError(f"unsupported resampling {resampling!r}; use 'average' or 'nearest'")
    padded = np.zeros((bands, out_rows * factor, out_cols * factor), np.float64)
    weight = np.zeros(padded.shape, np.float64)
    valid = _valid_mask(array, nodata)
    padded[:, :rows, :cols] = np.where(valid, array, 0) if valid is not None else array
    weight[:, :rows, :cols] = valid if valid is not None else 1.0
    shape = (bands, out_rows, factor, out_cols, factor)
    sums = padded.reshape(shape).sum(axis=(2, 4))
    counts = weight.reshape(shape).sum(axis=(2, 4))
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = sums / counts
    if array.dtype.kind in "ui":
        mean = np.floor(mean + 0.5)
    fill = nodata if nodata is not None else 0
    return np.where(counts > 0, mean, fill).astype(array.dtype)


def _tile_blocks(
    level: np.ndarray,
    tile: int,
    *,
    planar: bool,
    predictor: int,
    encode: Callable[[bytes], bytes],
    fill: float,
    sparse_valid: np.ndarray | None,
) -> list[bytes | None]:
    bands, rows, cols = level.shape
    across, down = -(-cols // tile), -(-rows // tile)
    padded = np.full((bands, down * tile, across * tile), fill, dtype=level.dtype)
    padded[:, :rows, :cols] = level
    planes = [padded[b : b + 1] for b in range(bands)] if planar else [padded]
    if sparse_valid is None:
        plane_valid: list[np.ndarray | None] = [None] * len(planes)
    else:
        plane_valid = [sparse_valid[b : b + 1] for b in range(bands)] if planar else [sparse_valid]
    blocks: list[bytes | None] = []
    for plane, valid in zip(planes, plane_valid, strict=True):
        for i in range(down):
            for j in range(across):
                window = (
                    slice(None),
                    slice(i * tile, (i + 1) * tile),
                    slice(j * tile, (j + 1) * tile),
                )
                if valid is not None and not valid[window].any():
                    blocks.append(None)
                    continue
                chunk = np.ascontiguousarray(np.moveaxis(plane[window], 0, -1))
                chunk = chunk.astype(chunk.dtype.newbyteorder("<"), copy=False)
                blocks.append(encode(_apply_predictor(chunk, predictor)))
    return blocks


def _geo_tags(transform: Transform, epsg: int | None) -> dict:
    a, b, c, d, e, f = (float(v) for v in transform)
    tags: dict = {}
    if b == 0 and d == 0 and e < 0:
        tags[33550] = (DOUBLE, [a, -e, 0.0])
        tags[33922] = (DOUBLE, [0.0, 0.0, 0.0, c, f, 0.0])
    else:
        tags[34264] = (DOUBLE, [a, b, 0, c, d, e, 0, f, 0, 0, 0, 0, 0, 0, 0, 1])
    if epsg is not None:
        if not 0 < epsg < 65535:
            raise ValueError(f"EPSG code {epsg} does not fit a GeoKey SHORT")
        from pyproj import CRS

        geographic = CRS.from_epsg(epsg).is_geographic
        model, crs_key = (2, 2048) if geographic else (1, 3072)
        keys = [1, 1, 0, 3, 1024, 0, 1, model, 1025, 0, 1, 1, crs_key, 0, 1, epsg]
        tags[34735] = (SHORT, keys)
    return tags


def _format_nodata(nodata: float) -> str:
    value = float(nodata)
    if math.isnan(value):
        return "nan"
    return str(int(value)) if value.is_integer() else repr(value)


def _gdal_metadata(bands: int, scale: float | None, offset: float | None) -> str:
    items = []
    for sample in range(bands):
        if scale is not None:
            items.append(f'<Item name="SCALE" sample="{sample}" role="scale">{scale!r}</Item>')
        if offset is not None:
            items.append(f'<Item name="OFFSET" sample="{sample}" role="offset">{offset!r}</Item>')
    return "<GDALMetadata>" + "".join(items) + "</GDALMetadata>"


def write_cog(
    path: str | Path,
    array: np.ndarray,
    *,
    transform: Transform,
    epsg: int | None,
    nodata: float | None = None,
    tile: int = 256,
    compression: str = "deflate",
    predictor: int = 2,
    overviews: Sequence[int] = (2, 4),
    resampling: str = "average",
    interleave: str = "pixel",
    sparse: bool = False,
    scale: float | None = None,
    offset: float | None = None,
    level: int | None = None,
    bigtiff: bool = False,
    ghost_area: bool = True,
    block_leaders: bool = True,
) -> WrittenTiff:
    """Write ``array`` (``(rows, cols)`` or ``(bands, rows, cols)``) as a tiled COG.

    ``transform`` is the affine ``(a, b, c, d, e, f)`` of the pixel corners; ``epsg``
    the CRS (``None`` writes no GeoKeys). ``overviews`` are decimation factors relative
    to the full image (``ceil(size / factor)`` pixels), each computed from the previous
    level when the factors divide (GDAL's cascade). ``interleave="band"`` writes
    planar configuration 2. ``sparse=True`` leaves all-nodata tiles out (offset and
    byte count 0, as GDAL's ``SPARSE_OK``). Predictor 2 (horizontal) works for every
    dtype, 3 (floating point) for floats; both are dropped without compression and with
    ``jpeg2000`` (lossless JPEG 2000, 8- and 16-bit integers only).
    Returns the block offsets and byte counts of every IFD.
    """
    data = np.asarray(array)
    if data.ndim == 2:
        data = data[np.newaxis]
    if data.ndim != 3 or data.shape[1] == 0 or data.shape[2] == 0:
        raise ValueError(f"{path}: expected (bands, rows, cols), got shape {np.shape(array)}")
    if data.dtype.kind not in _SAMPLE_FORMATS or data.dtype.itemsize > 8:
        raise ValueError(f"{path}: unsupported dtype {data.dtype}")
    if tile % 16:
        raise ValueError(f"{path}: tile size {tile} is not a multiple of 16")
    if interleave not in ("pixel", "band"):
        raise ValueError(f"{path}: interleave must be 'pixel' or 'band', not {interleave!r}")
    if compression not in COMPRESSION_CODES:
        raise ValueError(f"{path}: unsupported compression {compression!r}")
    if compression in ("none", "packbits", "jpeg2000"):
        predictor = 1
    if compression == "jpeg2000" and (data.dtype.kind not in "iu" or data.dtype.itemsize > 2):
        raise ValueError(f"{path}: jpeg2000 needs 8- or 16-bit integers, not {data.dtype}")
    if predictor == 3 and data.dtype.kind != "f":
        raise ValueError(f"{path}: predictor 3 needs a floating-point dtype, not {data.dtype}")
    bands = data.shape[0]
    planar = interleave == "band" and bands > 1
    encode = _encoder(compression, level)
    fill = nodata if nodata is not None else 0

    levels = [data]
    previous = 1
    for factor in overviews:  # cascade from the previous level, as GDAL does
        source, step = (
            (levels[-1], factor // previous) if factor % previous == 0 else (data, factor)
        )
        levels.append(reduce_level(source, step, nodata=nodata, resampling=resampling))
        previous = factor
    common: dict = {
        258: (SHORT, [data.dtype.itemsize * 8] * bands),
        259: (SHORT, [COMPRESSION_CODES[compression]]),
        262: (SHORT, [1]),
        277: (SHORT, [bands]),
        284: (SHORT, [2 if planar else 1]),
        322: (SHORT, [tile]),
        323: (SHORT, [tile]),
        339: (SHORT, [_SAMPLE_FORMATS[data.dtype.kind]] * bands),
    }
    if predictor != 1:
        common[317] = (SHORT, [predictor])
    if bands > 1:
        common[338] = (SHORT, [0] * (bands - 1))
    if nodata is not None:
        common[42113] = (ASCII, _format_nodata(nodata))
    images = []
    for index, pixels in enumerate(levels):
        tags = dict(common)
        tags[256] = (LONG, [pixels.shape[2]])
        tags[257] = (LONG, [pixels.shape[1]])
        if index == 0:
            tags.update(_geo_tags(transform, epsg))
            if scale is not None or offset is not None:
                tags[42112] = (ASCII, _gdal_metadata(bands, scale, offset))
        else:
            tags[254] = (LONG, [1])
        valid = None
        if sparse:
            valid = _valid_mask(pixels, nodata)
            valid = valid if valid is not None else pixels != 0
        blocks = _tile_blocks(
            pixels,
            tile,
            planar=planar,
            predictor=predictor,
            encode=encode,
            fill=fill,
            sparse_valid=valid,
        )
        images.append(ImageToWrite(tags, blocks))
    return write_tiff(
        path, images, bigtiff=bigtiff, ghost_area=ghost_area, block_leaders=block_leaders
    )
