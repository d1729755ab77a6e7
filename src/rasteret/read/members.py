"""Reading record windows (all bands, data + validity) through the store, and frames.

A *frame* is a grid shared by records whose pixel grids line up (same CRS, same pixel
size, origins a whole number of pixels apart): adjacent tiles of one UTM zone, or the
same tile at many dates. Windows of a frame can be mosaicked without resampling.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from rasteret.geo.grid import GridSpec
from rasteret.geo.transform import crs_key
from rasteret.geo.window import Window
from rasteret.read.radiometry import invalid_holds_fill, valid_into
from rasteret.read.stacks import BandSource, StoreIndex, WindowRequest, read_windows

#: Origins closer than this fraction of a pixel to a whole-pixel offset count as aligned.
ALIGN_TOLERANCE = 1e-6


@dataclass(frozen=True)
class MemberRead:
    """Read ``window`` (source pixel coordinates) of every band of one record."""

    sources: tuple[BandSource | None, ...]
    window: Window


def read_members(
    index: StoreIndex,
    reads: Sequence[MemberRead],
    fills: Sequence[float | int],
    finish: Callable[[int, np.ndarray, np.ndarray | None], None] | None = None,
    *,
    contiguous: bool = False,
    validity: bool = True,
) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """``(data [C, h, w], valid [C, h, w])`` of each read, invalid pixels set to ``fills``.
    ``contiguous``: when every read has one shape and dtype, they are consecutive views
    of one ``(reads, C, h, w)`` array (and validity), so a caller that stacks them takes
    that array instead of copying (:func:`rasteret.read.result.stack_windows`).
    ``validity=False``: no validity arrays (``None``), for a caller whose fills are the
    bands' nodata and whose sources have no internal mask — the pixels then say which are
    valid (:class:`~rasteret.read.result.ImpliedMask`).

    A band missing from a record reads as fill, invalid. All windows of all reads go to
    the store in one concurrent batch; each band is masked and filled on the decode pool
    as soon as its window is complete, and ``finish(k, data, valid)`` (e.g. a geometry
    mask) runs there once every band of read ``k`` is — so post-processing overlaps the
    fetches still in flight.
    """
    requests: list[WindowRequest] = []
    targets: list[np.ndarray | None] = []
    owners: list[tuple[int, int]] = []  # request -> (read, band)
    stacks: list[tuple[np.ndarray, np.ndarray | None]] = []
    parts: dict[tuple[int, int], list[int]] = {}  # (read, band) -> [data req, mask req?]
    blocks = _blocks(reads, validity) if contiguous else None
    for k, read in enumerate(reads):
        w = read.window
        dtype = common_dtype(read.sources)
        if blocks is not None:
            stacks.append((blocks[0][k], None if blocks[1] is None else blocks[1][k]))
        else:
            data = np.empty((len(read.sources), w.height, w.width), dtype=dtype)
            stacks.append((data, np.zeros(data.shape, dtype=bool) if validity else None))
        data = stacks[-1][0]
        for c, src in enumerate(read.sources):
            if src is None:
                data[c] = fills[c]
                continue
            requests.append(WindowRequest(src.path, src.t, w))
            # decoded straight into the stack when the band has its dtype (no copy)
            targets.append(data[c] if src.dtype == dtype else None)
            owners.append((k, c))
            parts[(k, c)] = [len(requests) - 1]
            if src.mask_array is not None:
                if not validity:
                    raise ValueError(f"{src.path}: a band with an internal mask needs validity")
                requests.append(WindowRequest(f"{src.group}/{src.mask_array}", src.t, w))
                targets.append(None)
                owners.append((k, c))
                parts[(k, c)].append(len(requests) - 1)
    bands_left = [sum(src is not None for src in read.sources) for read in reads]
    waiting = {key: len(found) for key, found in parts.items()}
    arrays: dict[int, np.ndarray] = {}
    lock = threading.Lock()

    def done(request: int, output: np.ndarray) -> None:
        k, c = owners[request]
        with lock:
            arrays[request] = output
            waiting[(k, c)] -= 1
            if waiting[(k, c)]:
                return
        src = reads[k].sources[c]
        assert src is not None
        data, valid = stacks[k]
        found = parts[(k, c)]
        internal = arrays[found[1]] if len(found) > 1 else None
        band_valid = None if valid is None else valid[c]
        fill_band(data[c], band_valid, arrays[found[0]], src.nodata, internal, fills[c])
        with lock:
            bands_left[k] -= 1
            last = bands_left[k] == 0
        if last and finish is not None:
            finish(k, data, valid)

    read_windows(index, requests, targets, on_done=done)
    if finish is not None:
        for k, read in enumerate(reads):
            if not any(src is not None for src in read.sources):
                finish(k, *stacks[k])  # no band to read: all fill
    return stacks


def _blocks(
    reads: Sequence[MemberRead], validity: bool
) -> tuple[np.ndarray, np.ndarray | None] | None:
    """One ``(reads, C, h, w)`` data array and validity (if wanted) for ``reads`` when
    they share a shape and a dtype (``None`` otherwise)."""
    if not reads:
        return None
    shapes = {(len(r.sources), r.window.height, r.window.width) for r in reads}
    dtypes = {common_dtype(r.sources) for r in reads}
    if len(shapes) != 1 or len(dtypes) != 1:
        return None
    shape = (len(reads), *shapes.pop())
    valid = np.zeros(shape, dtype=bool) if validity else None
    return np.empty(shape, dtype=dtypes.pop()), valid


def clip_to_inside(
    data: np.ndarray, valid: np.ndarray | None, inside: np.ndarray, fills: Sequence[float | int]
) -> None:
    """In place: the pixels outside a geometry (``inside`` ``[h, w]`` false) invalid and
    ``fills`` in ``data`` / ``valid`` ``[C, h, w]`` (a read's invalid pixels already are;
    ``valid`` ``None``: validity implied by the fills)."""
    if valid is not None:
        valid &= inside
    if not inside.all():
        outside = ~inside
        for c in range(data.shape[0]):
            data[c][outside] = fills[c]


def member_requests(reads: Sequence[MemberRead]) -> list[WindowRequest]:
    """The store windows :func:`read_members` reads for ``reads``: each band's data and
    internal mask (e.g. to declare a read's progress before it runs in rounds)."""
    requests: list[WindowRequest] = []
    for read in reads:
        for src in read.sources:
            if src is None:
                continue
            requests.append(WindowRequest(src.path, src.t, read.window))
            if src.mask_array is not None:
                requests.append(WindowRequest(f"{src.group}/{src.mask_array}", src.t, read.window))
    return requests


def fill_band(
    out: np.ndarray,
    out_valid: np.ndarray | None,
    values: np.ndarray,
    nodata: float | None,
    internal: np.ndarray | None,
    fill: float | int,
) -> None:
    """Write ``values`` into ``out`` (``fill`` where invalid) and their validity (as
    :func:`~rasteret.read.radiometry.valid_mask`) into ``out_valid`` (``None``: not
    kept), in place and without full-size temporaries when the invalid pixels already
    hold ``fill``."""
    in_place = np.may_share_memory(out, values)  # decoded straight into ``out``
    if internal is None and invalid_holds_fill(values.dtype, nodata, fill, out.dtype):
        if out_valid is not None:
            valid_into(out_valid, values, nodata)
        if not in_place:
            np.copyto(out, values, casting="unsafe")
        return
    if out_valid is None:
        out_valid = np.empty(values.shape, dtype=bool)  # not kept: the fill needs it
    valid_into(out_valid, values, nodata)
    if internal is not None:
        out_valid &= internal > 0
    if in_place:
        np.copyto(out, np.asarray(fill).astype(out.dtype), where=~out_valid)
        return
    out[...] = fill
    np.copyto(out, values, where=out_valid, casting="unsafe")


def common_dtype(sources: Sequence[BandSource | None]) -> np.dtype:
    dtypes = [s.dtype for s in sources if s is not None]
    return np.result_type(*dtypes) if dtypes else np.dtype(np.float64)


# ----------------------------------------------------------------------------- frames


def source_grid(source: BandSource) -> GridSpec:
    return GridSpec(source.crs_key, source.transform, (source.height, source.width))


def frame_offset(frame: GridSpec, source: BandSource) -> tuple[int, int] | None:
    """``(row, col)`` of ``source``'s origin in ``frame`` when the grids line up, else ``None``."""
    fa, fb, fc, fd, fe, ff = frame.transform
    a, b, c, d, e, f = source.transform
    if source.crs_key != crs_key(frame.crs):
        return None
    # numpy.isclose(rtol=1e-9) on scalars (called per record and band of every read)
    same_scale = abs(a - fa) <= 1e-8 + 1e-9 * abs(fa) and abs(e - fe) <= 1e-8 + 1e-9 * abs(fe)
    if not (same_scale and b == fb == 0):
        return None
    if d != 0 or fd != 0:
        return None
    col = (c - fc) / fa
    row = (f - ff) / fe
    if abs(col - round(col)) > ALIGN_TOLERANCE or abs(row - round(row)) > ALIGN_TOLERANCE:
        return None
    return round(row), round(col)


def build_frames(sources: Sequence[BandSource]) -> list[tuple[GridSpec, list[int]]]:
    """Group ``sources`` into frames: ``(frame grid covering its members, member indices)``.

    The frame's origin is the top-left of its members' union; members keep their
    input order.
    """
    frames: list[tuple[GridSpec, list[int], list[tuple[int, int]]]] = []
    for i, src in enumerate(sources):
        for frame, members, offsets in frames:
            offset = frame_offset(frame, src)
            if offset is not None:
                members.append(i)
                offsets.append(offset)
                break
        else:
            frames.append((source_grid(src), [i], [(0, 0)]))
    out: list[tuple[GridSpec, list[int]]] = []
    for frame, members, offsets in frames:
        r0 = min(r for r, _ in offsets)
        c0 = min(c for _, c in offsets)
        r1 = max(r + sources[m].height for m, (r, _) in zip(members, offsets, strict=True))
        c1 = max(c + sources[m].width for m, (_, c) in zip(members, offsets, strict=True))
        a, b, c, d, e, f = frame.transform
        grid = GridSpec(frame.crs, (a, b, c + a * c0, d, e, f + e * r0), (r1 - r0, c1 - c0))
        out.append((grid, members))
    return out


def member_window(
    frame: GridSpec, out: Window, source: BandSource
) -> tuple[Window, tuple[int, int]] | None:
    """The part of frame window ``out`` that ``source`` covers: ``(window in source pixels,
    (row, col) offset inside out)``, or ``None`` when it covers nothing."""
    offset = frame_offset(frame, source)
    if offset is None:
        return None
    row, col = offset
    extent = Window(row, col, source.height, source.width)
    part = out.intersection(extent)
    if part.is_empty:
        return None
    return part.shifted(-row, -col), (part.row_off - out.row_off, part.col_off - out.col_off)
