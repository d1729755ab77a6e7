"""Content validation of collection tables: what a ``{band}_metadata`` value may hold.

A collection can come from anyone (a shared Parquet file, a colleague's export), and
its band structs decide which bytes are fetched and how they are decoded. Besides the
schema (:mod:`rasteret.index.validate`), every band struct, overview and mask level is
checked here, vectorised over the whole table (Arrow compute + numpy, no per-row
Python):

* sizes: image and tile sizes positive; a decoded block within the decoder's limit
  (``rasteret.tiff.block_decoders.MAX_DECODED_BLOCK_BYTES``);
* block arrays: exactly one offset and one byte count per tile of the grid; offsets and
  byte counts non-negative; no block larger than ``MAX_BLOCK_PAYLOAD``; no block past the
  end of the object when its size (``file_size``) was recorded;
* encoding: a known TIFF compression, predictor 1-3, planar configuration 1-2, byte order
  ``<``/``>``, 1-65535 samples, ``band_index`` inside them, a ``dtype`` that is a numeric
  numpy dtype and agrees with ``bits_per_sample`` / ``sample_format``;
* georeferencing: a transform of 6 (or legacy 4) finite values with a non-zero
  determinant;
* overviews and masks: the same, and no larger than the full-resolution image.

:func:`content_problems` returns one line per problem naming the record id, band and
level; :func:`rasteret.index.validate.validate_table` raises them as a
:class:`~rasteret.errors.CollectionSchemaError`. A build applies the same checks per
asset with :func:`band_problems` before it assembles the table, so a file the checks
refuse becomes that asset's ``{band}_error`` instead of failing the whole build.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rasteret.index.level_columns import fill_nulls
from rasteret.index.schema import bands_of, metadata_column
from rasteret.tiff.block_decoders import MAX_DECODED_BLOCK_BYTES
from rasteret.tiff.image import MAX_BLOCK_BYTES as MAX_BLOCK_PAYLOAD

#: TIFF compressions rasteret knows (decodable, or named as unsupported on read).
KNOWN_COMPRESSIONS = frozenset(
    {1, 2, 3, 4, 5, 6, 7, 8, 32773, 32946, 34887, 34925, 50000, 50001, 50002, 52546}
    | {33003, 33005, 34712}  # JPEG 2000
    | {32809, 34676, 34677, 32908, 32909, 32947, 34661, 34892}
)
NUMERIC_DTYPES = frozenset(
    f"{kind}{bits}"
    for kind, sizes in (("uint", (8, 16, 32, 64)), ("int", (8, 16, 32, 64)))
    for bits in sizes
) | {"float16", "float32", "float64", "complex64", "complex128"}
#: Problems reported per table (the rest are counted).
MAX_REPORTED = 20
#: Problems collected per check (to count them without formatting a million messages).
MAX_COLLECTED = 1000


@dataclass
class _Level:
    """Rows of one kind of level (full / overview i / mask ...) as flat arrays."""

    label: np.ndarray  # level label of each element, e.g. "full", "overview 0"
    owner: np.ndarray  # table row of each element
    values: pa.StructArray  # the level structs
    valid: np.ndarray  # bool: element present


def content_problems(table: pa.Table, limit: int = MAX_REPORTED) -> list[str]:
    """Every content problem of ``table``'s band structs (empty when none), capped at ``limit``."""
    found: list[tuple[int, str, str, str]] = []
    for band in bands_of(table.schema):
        column = table[metadata_column(band)]
        structs = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
        if len(structs) == 0:
            continue
        for row, label, message in _band_problems(structs):
            found.append((row, band, label, message))
    lines = []
    has_ids = "id" in table.column_names
    for row, band, label, message in sorted(found, key=lambda f: (f[0], f[1]))[:limit]:
        record = table["id"][row].as_py() if has_ids else row
        where = f"record {record!r} band {band!r}" + (f" {label}" if label != "full" else "")
        lines.append(f"{where}: {message}")
    if len(found) > limit:
        lines.append(f"... and {len(found) - limit} more content problem(s)")
    return lines


def band_problems(structs: pa.StructArray) -> dict[int, str]:
    """The first content problem of every row of one ``{band}_metadata`` array, uncapped:
    ``{row: message}`` (a level other than the full image is named first, e.g.
    ``"overview 0: ..."``); empty when every struct passes :func:`content_problems`."""
    found: dict[int, str] = {}
    rows = np.arange(len(structs))
    while len(rows):
        hits = 0
        for row, label, message in _band_problems(structs):
            hits += 1
            where = "" if label == "full" else f"{label}: "
            found.setdefault(int(rows[row]), where + message)
        if hits < MAX_COLLECTED:  # no check reached its cap: every flagged row was seen
            break
        keep = ~np.isin(rows, np.fromiter(found, np.int64, len(found)))
        rows, structs = rows[keep], structs.filter(pa.array(keep))  # look past the cap
    return found


def _band_problems(structs: pa.StructArray) -> Iterator[tuple[int, str, str]]:
    n = len(structs)
    names = {structs.type.field(i).name for i in range(structs.type.num_fields)}
    valid = _np_bool(structs.is_valid())
    rows = np.arange(n)
    full = _Level(np.full(n, "full", dtype=object), rows, structs, valid)
    file_size = _ints(structs, "file_size", -1) if "file_size" in names else np.full(n, -1)
    full_w, full_h = _ints(structs, "image_width"), _ints(structs, "image_height")
    samples = _ints(structs, "samples_per_pixel", 1) if "samples_per_pixel" in names else None
    planar = _ints(structs, "planar_configuration", 1) if "planar_configuration" in names else None
    per_block = np.ones(n, np.int64) if samples is None else samples.copy()
    if planar is not None:
        per_block[planar == 2] = 1
    itemsize = _itemsizes(structs)
    yield from _encoding_problems(structs, names, valid, samples, planar)
    yield from _transform_problems(structs, valid)
    # uncompressed blocks of whole bytes have an exact size: an edited count shows
    raw = _ints(structs, "compression", 1) == 1 if "compression" in names else np.zeros(n, bool)
    if "bits_per_sample" in names:
        raw &= _ints(structs, "bits_per_sample", 8) == itemsize * 8
    yield from _level_problems(full, file_size, per_block * itemsize, raw)
    if "overviews" in names:
        level = _nested(structs.field("overviews"), valid, "overview")
        if level is not None:
            yield from _level_problems(level, file_size, (per_block * itemsize), raw)
            yield from _not_larger(level, full_w, full_h)
    if "mask" in names:
        mask = structs.field("mask")
        mask_valid = valid & _np_bool(mask.is_valid())
        if mask_valid.any():
            level = _Level(np.full(n, "mask", dtype=object), rows, mask, mask_valid)
            yield from _level_problems(level, file_size, np.ones(n, np.int64))
            yield from _not_larger(level, full_w, full_h)
            mask_names = {mask.type.field(i).name for i in range(mask.type.num_fields)}
            if "overviews" in mask_names:
                nested = _nested(mask.field("overviews"), mask_valid, "mask overview")
                if nested is not None:
                    yield from _level_problems(nested, file_size, np.ones(n, np.int64))
                    yield from _not_larger(nested, full_w, full_h)


# ----------------------------------------------------------------------------- levels


def _level_problems(
    level: _Level,
    file_size: np.ndarray,
    block_item_bytes: np.ndarray,
    uncompressed: np.ndarray | None = None,
) -> Iterator[tuple[int, str, str]]:
    values, valid, owner = level.values, level.valid, level.owner
    width, height = _ints(values, "image_width"), _ints(values, "image_height")
    tile_w, tile_h = _ints(values, "tile_width"), _ints(values, "tile_height")
    sizes_ok = (width > 0) & (height > 0) & (tile_w > 0) & (tile_h > 0)
    for i in _first(valid & ~sizes_ok):
        yield (
            int(owner[i]),
            level.label[i],
            f"image {width[i]} x {height[i]} in tiles of {tile_w[i]} x {tile_h[i]}: "
            "sizes must be positive",
        )
    valid = valid & sizes_ok
    block_bytes = tile_w.astype(np.float64) * tile_h * block_item_bytes[owner]
    oversize = valid & (block_bytes > MAX_DECODED_BLOCK_BYTES)
    safe_w, safe_h = np.where(valid, tile_w, 1), np.where(valid, tile_h, 1)
    tiles = -(-np.where(valid, width, 1) // safe_w) * -(-np.where(valid, height, 1) // safe_h)
    offsets, counts = values.field("tile_offsets"), values.field("tile_byte_counts")
    n_off = _np_int(pc.fill_null(pc.list_value_length(offsets), -1))
    n_cnt = _np_int(pc.fill_null(pc.list_value_length(counts), -1))
    mismatch = valid & ((n_off != tiles) | (n_cnt != tiles))
    for i in _first(mismatch):
        yield (
            int(owner[i]),
            level.label[i],
            f"{n_off[i]} tile offsets / {n_cnt[i]} byte counts for a grid of "
            f"{tiles[i]} tiles ({width[i]} x {height[i]} in {tile_w[i]} x {tile_h[i]} tiles)",
        )
    keep = valid & ~mismatch
    if not keep.any():
        yield from _oversize(level, oversize, tile_w, tile_h, block_bytes)
        return
    selection = pa.array(keep)
    kept_rows = np.flatnonzero(keep)
    flat_off = _np_int(pc.list_flatten(offsets.filter(selection)), fill=0)
    flat_cnt = _np_int(pc.list_flatten(counts.filter(selection)), fill=0)
    parent = np.repeat(kept_rows, n_off[kept_rows])
    size = file_size[owner[parent]]
    negative = (flat_off < 0) | (flat_cnt < 0)
    huge = flat_cnt > MAX_BLOCK_PAYLOAD
    known = (size >= 0) & (flat_cnt > 0) & ~negative
    past = known & ((flat_off > size) | (flat_cnt > size - np.minimum(flat_off, size)))
    # an oversize block only matters when it holds data (an all-sparse level never decodes)
    with_data = ~keep  # rows not flattened (block arrays already refused): report too
    with_data[parent[flat_cnt > 0]] = True
    yield from _oversize(level, oversize & with_data, tile_w, tile_h, block_bytes)
    tile_index = np.arange(len(parent)) - np.repeat(
        np.concatenate([[0], np.cumsum(n_off[kept_rows])[:-1]]), n_off[kept_rows]
    )
    yield from _overlaps(level, parent, tile_index, flat_off, flat_cnt)
    if uncompressed is not None:
        sizes = (width, height, tile_w, tile_h)
        yield from _raw_sizes(level, parent, tile_index, flat_cnt, uncompressed, block_bytes, sizes)
    for mask, what in ((negative, "negative"), (huge, "huge"), (past, "past")):
        for j in _first_per_parent(mask, parent):
            i = parent[j]
            tile, off, cnt = int(tile_index[j]), int(flat_off[j]), int(flat_cnt[j])
            if what == "negative":
                message = f"tile {tile} has a negative offset or byte count ({off}, {cnt})"
            elif what == "huge":
                message = f"tile {tile} claims {cnt} bytes, beyond the {MAX_BLOCK_PAYLOAD} limit"
            else:
                message = (
                    f"tile {tile} (bytes {off}-{off + cnt - 1}) lies past the end of the object "
                    f"({int(size[j])} bytes)"
                )
            yield int(owner[i]), level.label[i], message


def _overlaps(
    level: _Level,
    parent: np.ndarray,
    tile_index: np.ndarray,
    offsets: np.ndarray,
    counts: np.ndarray,
) -> Iterator[tuple[int, str, str]]:
    """Blocks of one level whose byte ranges overlap (an edited offset that now points
    into another block). Identical ranges are allowed: a writer may store equal blocks
    once."""
    positive = counts > 0
    has: np.ndarray | None = None  # the blocks checked (None: all of them, in place)
    if positive.all():  # the usual case: no sparse block, views instead of copies
        held, where, size = parent, offsets, counts
    else:
        has = np.flatnonzero(positive)
        held, where, size = parent[has], offsets[has], counts[has]
    if len(held) < 2:
        return
    # ``parent`` never decreases; a level whose blocks are stored in tile order (every
    # COG writer's) is already sorted by offset within each parent: no sort needed
    in_order = (held[1:] != held[:-1]) | (where[1:] >= where[:-1])
    if not in_order.all():
        order = np.lexsort((where, held))
        has = order if has is None else has[order]
        held, where, size = held[order], where[order], size[order]
    same = held[1:] == held[:-1]
    clash = same & (where[1:] < where[:-1] + size[:-1])
    clash &= ~((where[1:] == where[:-1]) & (size[1:] == size[:-1]))
    if not clash.any():
        return
    for k in _first_per_parent(clash, held[:-1]):
        a, b = (k, k + 1) if has is None else (has[k], has[k + 1])
        yield (
            int(level.owner[parent[a]]),
            level.label[parent[a]],
            f"tiles {int(tile_index[a])} (bytes {int(offsets[a])}-"
            f"{int(offsets[a] + counts[a] - 1)}) and {int(tile_index[b])} (bytes "
            f"{int(offsets[b])}-{int(offsets[b] + counts[b] - 1)}) overlap",
        )


def _raw_sizes(
    level: _Level,
    parent: np.ndarray,
    tile_index: np.ndarray,
    counts: np.ndarray,
    uncompressed: np.ndarray,
    block_bytes: np.ndarray,
    sizes: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
) -> Iterator[tuple[int, str, str]]:
    """Uncompressed blocks hold exactly their decoded size (a short last strip: its rows;
    some writers pad it to the full block). ``sizes``: the level's image and tile width
    and height, per element."""
    raw = uncompressed[level.owner[parent]] & (counts > 0)
    if not raw.any():
        return
    width, height, tile_w, tile_h = (a[parent] for a in sizes)
    full = block_bytes[parent].astype(np.int64)
    block_row = tile_index // np.maximum(-(-width // np.maximum(tile_w, 1)), 1)
    last_row = block_row == -(-height // np.maximum(tile_h, 1)) - 1
    short = full // np.maximum(tile_h, 1) * (height - block_row * tile_h)
    ok = (counts == full) | (last_row & (tile_w == width) & (counts == short))
    for j in _first_per_parent(raw & ~ok, parent):
        yield (
            int(level.owner[parent[j]]),
            level.label[parent[j]],
            f"uncompressed tile {int(tile_index[j])} holds {int(counts[j])} bytes where "
            f"its {int(tile_w[j])} x {int(tile_h[j])} block needs {int(full[j])}",
        )


def _oversize(
    level: _Level, flagged: np.ndarray, tile_w: np.ndarray, tile_h: np.ndarray, size: np.ndarray
) -> Iterator[tuple[int, str, str]]:
    for i in _first(flagged):
        yield (
            int(level.owner[i]),
            level.label[i],
            f"tiles of {tile_w[i]} x {tile_h[i]} decode to {int(size[i])} bytes, beyond "
            f"the {MAX_DECODED_BLOCK_BYTES}-byte block limit",
        )


def _not_larger(
    level: _Level, full_w: np.ndarray, full_h: np.ndarray
) -> Iterator[tuple[int, str, str]]:
    width, height = _ints(level.values, "image_width"), _ints(level.values, "image_height")
    owner = level.owner
    larger = level.valid & ((width > full_w[owner]) | (height > full_h[owner]))
    for i in _first(larger):
        yield (
            int(owner[i]),
            level.label[i],
            f"is {width[i]} x {height[i]}, larger than the full image "
            f"({full_w[owner[i]]} x {full_h[owner[i]]})",
        )


def _nested(levels: pa.ListArray, valid: np.ndarray, name: str) -> _Level | None:
    """The flattened elements of a list<level> field, each labelled ``"{name} {i}"``."""
    flat = pc.list_flatten(levels)
    if len(flat) == 0:
        return None
    lengths = _np_int(pc.fill_null(pc.list_value_length(levels), 0))
    owner = np.repeat(np.arange(len(levels)), lengths)
    starts = np.repeat(np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
    position = np.arange(len(owner)) - starts
    labels = np.array([f"{name} {p}" for p in range(int(position.max()) + 1)], dtype=object)
    element_valid = valid[owner] & _np_bool(flat.is_valid())
    return _Level(labels[position], owner, flat, element_valid)


# ----------------------------------------------------------------------------- encoding


def _encoding_problems(
    structs: pa.StructArray,
    names: set[str],
    valid: np.ndarray,
    samples: np.ndarray | None,
    planar: np.ndarray | None,
) -> Iterator[tuple[int, str, str]]:
    dtype = structs.field("dtype")
    dtype_ok = _np_bool(pc.is_in(dtype, value_set=pa.array(sorted(NUMERIC_DTYPES))))
    for i in _first(valid & ~dtype_ok):
        yield int(i), "full", f"dtype {dtype[i].as_py()!r} is not a numeric sample type"
    checks = [
        ("compression", lambda v: np.isin(v, list(KNOWN_COMPRESSIONS)), "an unknown compression"),
        ("predictor", lambda v: (v >= 1) & (v <= 3), "an unknown predictor"),
    ]
    if planar is not None:
        yield from _bad(valid, (planar == 1) | (planar == 2), planar, "planar configuration")
    if samples is not None:
        yield from _bad(valid, (samples >= 1) & (samples <= 65535), samples, "samples per pixel")
        if "band_index" in names:
            index = _ints(structs, "band_index", 0)
            for i in _first(valid & ~((index >= 0) & (index < samples))):
                yield int(i), "full", f"band_index {index[i]} of a {samples[i]}-sample file"
    for field, check, what in checks:
        if field in names:
            values = _ints(structs, field, 1)
            for i in _first(valid & ~check(values)):
                yield int(i), "full", f"{what} ({field} {values[i]})"
    if "byte_order" in names:
        order = pc.fill_null(structs.field("byte_order"), "<")
        ok = _np_bool(pc.is_in(order, value_set=pa.array(["<", ">"])))
        for i in _first(valid & ~ok):
            yield int(i), "full", f"byte order {order[i].as_py()!r} (must be '<' or '>')"
    yield from _dtype_agreement(structs, names, valid & dtype_ok)


def _bad(
    valid: np.ndarray, ok: np.ndarray, values: np.ndarray, what: str
) -> Iterator[tuple[int, str, str]]:
    for i in _first(valid & ~ok):
        yield int(i), "full", f"invalid {what}: {values[i]}"


def _dtype_agreement(
    structs: pa.StructArray, names: set[str], valid: np.ndarray
) -> Iterator[tuple[int, str, str]]:
    """``dtype`` must be what ``bits_per_sample`` / ``sample_format`` decode to."""
    if not {"bits_per_sample", "sample_format"} <= names or not valid.any():
        return
    from rasteret.tiff.unpack import sample_dtype

    # one key per (dtype, bits, format) combination, in numpy (no acero for a group-by)
    dtypes = pc.dictionary_encode(structs.field("dtype").cast(pa.string()))
    null = np.iinfo(np.int64).min
    codes = _np_int(dtypes.indices, null)
    bits = _np_int(structs.field("bits_per_sample"), null)
    formats = _np_int(structs.field("sample_format"), null)
    rows = np.flatnonzero(valid)
    columns = [codes[rows], bits[rows], formats[rows]]
    inverse = np.zeros(len(rows), np.int64)  # each row's combination (1-D uniques: fast)
    for column in columns:
        values, index = np.unique(column, return_inverse=True)
        key = inverse * len(values) + index.reshape(-1)  # < rows², renumbered below
        _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
        inverse = inverse.reshape(-1)
    combos = np.stack([column[first] for column in columns], axis=1)
    names_of = dtypes.dictionary.to_pylist()
    flagged: list[tuple[int, str]] = []  # every row of every disagreeing combination
    for i, (code, bit, fmt) in enumerate(combos.tolist()):
        if bit == null or fmt == null:
            continue
        dtype = names_of[code] if code != null else None
        expected = sample_dtype(int(bit), int(fmt)) if 0 < bit <= 128 else None
        if expected is None or expected.name != dtype:
            wanted = expected.name if expected is not None else "no numpy dtype"
            message = f"dtype {dtype!r} disagrees with {bit}-bit SampleFormat {fmt} ({wanted})"
            chosen = rows[inverse == i][:MAX_COLLECTED]
            flagged += [(int(row), message) for row in chosen]
    for row, message in sorted(flagged)[:MAX_COLLECTED]:
        yield row, "full", message


def _transform_problems(
    structs: pa.StructArray, valid: np.ndarray
) -> Iterator[tuple[int, str, str]]:
    transform = structs.field("transform")
    lengths = _np_int(pc.fill_null(pc.list_value_length(transform), 0))
    present = valid & _np_bool(transform.is_valid())
    for i in _first(present & (lengths != 6) & (lengths != 4)):
        yield int(i), "full", f"transform has {lengths[i]} values (expected 6, or legacy 4)"
    six = present & (lengths == 6)
    if not six.any():
        return
    values = pc.list_flatten(transform.filter(pa.array(six)))
    matrix = values.to_numpy(zero_copy_only=False).astype(np.float64).reshape(-1, 6)
    rows = np.flatnonzero(six)
    finite = np.isfinite(matrix).all(axis=1)
    det = matrix[:, 0] * matrix[:, 4] - matrix[:, 1] * matrix[:, 3]
    for j in _first(~finite):
        yield int(rows[j]), "full", f"transform has non-finite values {matrix[j].tolist()}"
    for j in _first(finite & (det == 0)):
        yield (
            int(rows[j]),
            "full",
            f"transform {matrix[j].tolist()} is degenerate (zero pixel size)",
        )


# ----------------------------------------------------------------------------- helpers


def _ints(structs: pa.StructArray, field: str, fill: int = 0) -> np.ndarray:
    return _np_int(structs.field(field), fill)


def _np_int(values: pa.Array, fill: int = 0) -> np.ndarray:
    if values.type != pa.int64():
        values = values.cast(pa.int64())
    return fill_nulls(values, fill).to_numpy(zero_copy_only=False)


def _np_bool(values: pa.Array) -> np.ndarray:
    return fill_nulls(values, False).to_numpy(zero_copy_only=False).astype(bool)


def _itemsizes(structs: pa.StructArray) -> np.ndarray:
    """Bytes per sample of every row's dtype (8 when the dtype is not numeric)."""
    dtypes = structs.field("dtype")
    sizes = np.full(len(structs), 8, np.int64)
    for name in pc.unique(dtypes).to_pylist():
        if name in NUMERIC_DTYPES:
            rows = _np_bool(pc.equal(dtypes, name))
            sizes[rows] = np.dtype(name).itemsize
    return sizes


def _first(mask: np.ndarray, limit: int = MAX_COLLECTED) -> np.ndarray:
    """Indices of the first ``limit`` true values."""
    return np.flatnonzero(mask)[:limit]


def _first_per_parent(mask: np.ndarray, parent: np.ndarray, limit: int = MAX_COLLECTED) -> list:
    """The first flagged element of each parent (at most ``limit`` parents)."""
    hits = np.flatnonzero(mask)
    if not hits.size:
        return []
    _, first = np.unique(parent[hits], return_index=True)
    return hits[np.sort(first)][:limit].tolist()
