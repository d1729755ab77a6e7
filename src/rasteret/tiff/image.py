"""Reference image reader: assemble the decoded blocks of one image level.

:func:`read_image` is the simple, obviously-correct path from a parsed header to
pixels. It is the oracle the Zarr store is tested against and the reader behind
small one-off reads; bulk reads go through the store. It fetches only the blocks a
window touches, all at once (``asyncio.gather``), and decodes them in worker threads
(imagecodecs releases the GIL).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import numpy as np

from rasteret.errors import CorruptTiffError
from rasteret.tiff.decode import BlockDecoding, decode_block
from rasteret.tiff.model import ImageLayout, TiffHeader

Fetch = Callable[[int, int], Awaitable[bytes]]
Window = tuple[int, int, int, int]

#: Largest block payload accepted (a hostile byte count must not trigger a huge read).
MAX_BLOCK_BYTES = 1 << 30
#: Blocks smaller than this are decoded on the event loop (a thread hop costs more).
INLINE_DECODE_BYTES = 64 * 1024


def select_image(header: TiffHeader, level: int = 0, mask: bool = False) -> ImageLayout:
    """The image of ``level`` (0 full resolution, ``i`` the i-th overview) or its mask."""
    levels = (header.full, *header.overviews)
    if not 0 <= level < len(levels):
        raise ValueError(f"{header.source}: level {level} does not exist ({len(levels)} levels)")
    image = levels[level]
    if not mask:
        return image
    for candidate in header.masks:
        if (candidate.width, candidate.height) == (image.width, image.height):
            return candidate
    raise ValueError(f"{header.source}: no internal mask for level {level}")


def _fill_value(header: TiffHeader, dtype: np.dtype, mask: bool) -> object:
    """GDAL fills sparse (absent) blocks with the nodata value, else 0."""
    nodata = header.geo.nodata
    if mask or nodata is None:
        return 0
    if np.isnan(nodata):
        return nodata if dtype.kind in "fc" else 0
    with np.errstate(over="ignore", invalid="ignore"):
        cast = np.array(nodata).astype(dtype)
    return cast if float(cast.real if dtype.kind == "c" else cast) == nodata else 0


async def read_image(
    header: TiffHeader,
    fetch: Fetch,
    *,
    level: int = 0,
    window: Window | None = None,
    mask: bool = False,
) -> np.ndarray:
    """Read an image level (or its internal mask) as ``(samples, rows, cols)``.

    ``window = (col_off, row_off, width, height)`` in rasterio's convention selects a
    part of the level; it must lie inside the image. ``mask=True`` reads the internal
    mask IFD of the level instead, returned as ``(1, rows, cols)`` uint8 with 1-bit
    masks scaled to 0/255 as GDAL's mask band does. Sparse blocks (byte count 0) are
    filled with the nodata value, else 0. Raises the typed TIFF errors.
    """
    source = header.source
    image = select_image(header, level, mask)
    decoding = BlockDecoding.from_layout(image, header.byte_order, source)
    try:
        decoding.check(source)
        refused = None
    except CorruptTiffError as exc:  # e.g. a block over the size limit: only fatal if read
        refused = exc
    col_off, row_off, width, height = window or (0, 0, image.width, image.height)
    if width <= 0 or height <= 0 or col_off < 0 or row_off < 0:
        raise ValueError(f"{source}: invalid window {window}")
    if col_off + width > image.width or row_off + height > image.height:
        raise ValueError(f"{source}: window {window} exceeds {image.width} x {image.height}")

    dtype = np.dtype(decoding.dtype)
    out = np.full((image.samples_per_pixel, height, width), _fill_value(header, dtype, mask), dtype)
    bw, bh = decoding.block_width, decoding.block_height
    first_col, last_col = col_off // bw, (col_off + width - 1) // bw
    first_row, last_row = row_off // bh, (row_off + height - 1) // bh
    offsets, counts = image.block_offsets, image.block_byte_counts
    jobs = []
    for plane in range(image.planes):
        for block_row in range(first_row, last_row + 1):
            for block_col in range(first_col, last_col + 1):
                index = plane * image.blocks_per_plane + block_row * image.blocks_across + block_col
                if index >= len(offsets):
                    raise CorruptTiffError(source, f"block {index} missing from the block arrays")
                offset, count = int(offsets[index]), int(counts[index])
                if count == 0 or offset == 0:
                    continue  # sparse block: keeps the fill value
                _check_range(header, index, offset, count)
                jobs.append((index, plane, block_row, block_col, offset, count))
    if refused is not None and jobs:
        raise refused

    async def read_one(
        index: int, plane: int, block_row: int, block_col: int, offset: int, count: int
    ) -> None:
        data = await fetch(offset, count)
        if len(data) < count:
            raise CorruptTiffError(
                source,
                f"block {index} truncated: bytes {offset}-{offset + count - 1} give {len(data)}",
            )
        # only rows inside the image must decode (GDAL reads short edge tiles too)
        rows = min(bh, image.height - block_row * bh)
        # and only rows down to the window's last one are decoded (deflate, LZW)
        stop = min(rows, row_off + height - block_row * bh)
        args = (data, decoding)
        kwargs = {"source": source, "block_index": index, "rows": rows, "stop": stop}
        if count < INLINE_DECODE_BYTES:
            block = decode_block(*args, **kwargs)
        else:
            block = await asyncio.to_thread(decode_block, *args, **kwargs)
        _place(out, block, plane, image.planes, block_row * bh - row_off, block_col * bw - col_off)

    await asyncio.gather(*(read_one(*job) for job in jobs))
    if mask and image.bits_per_sample == 1:
        out *= 255
    return out


def _check_range(header: TiffHeader, index: int, offset: int, count: int) -> None:
    if count > MAX_BLOCK_BYTES:
        raise CorruptTiffError(header.source, f"block {index} byte count {count} is implausible")
    size = header.file_size
    if size is not None and offset + count > size:
        raise CorruptTiffError(
            header.source,
            f"block {index} bytes {offset}-{offset + count - 1} lie past the end ({size} bytes)",
        )


def _place(
    out: np.ndarray, block: np.ndarray, plane: int, planes: int, top: int, left: int
) -> None:
    """Copy the part of a decoded ``(rows, cols, samples)`` block that overlaps ``out``."""
    _, height, width = out.shape
    src_top, src_left = max(0, -top), max(0, -left)
    dst_top, dst_left = max(0, top), max(0, left)
    rows = min(block.shape[0] - src_top, height - dst_top)
    cols = min(block.shape[1] - src_left, width - dst_left)
    if rows <= 0 or cols <= 0:
        return
    part = block[src_top : src_top + rows, src_left : src_left + cols]
    if planes > 1:
        out[plane, dst_top : dst_top + rows, dst_left : dst_left + cols] = part[..., 0]
    else:
        out[:, dst_top : dst_top + rows, dst_left : dst_left + cols] = part.transpose(2, 0, 1)
