"""TIFF header parser against the conformance corpus (tifffile/GDAL manifest), COGs written
by GDAL, and hand-made hostile files."""

from __future__ import annotations

import asyncio
import math
import struct
from pathlib import Path

import numpy as np
import pytest

from rasteret.errors import CorruptTiffError, TiffError, UnsupportedTiffError
from rasteret.tiff.header import parse_header, read_header
from rasteret.tiff.layout import sample_dtype
from rasteret.tiff.model import TiffHeader

SAMPLE_FORMATS = {"uint": 1, "int": 2, "float": 3, "complex_int": 5, "complex_float": 6}
PLANAR = {"contig": 1, "separate": 2}


class CountingFetch:
    """An async ``fetch(offset, length)`` over bytes in memory that counts its calls."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.calls = 0
        self.bytes = 0

    async def __call__(self, offset: int, length: int) -> bytes:
        self.calls += 1
        chunk = self.data[offset : offset + length]
        self.bytes += len(chunk)
        return chunk


def read_async(data: bytes, source: str = "mem.tif", **kwargs: int) -> tuple[TiffHeader, int]:
    fetch = CountingFetch(data)
    header = asyncio.run(read_header(fetch, source, **kwargs))
    assert header.header_requests == fetch.calls
    return header, fetch.calls


def main_chain(header: TiffHeader, manifest_entry: dict) -> list:
    """Images of the main IFD chain (the manifest, from tifffile, does not list SubIFDs)."""
    if not manifest_entry["has_subifds"]:
        return list(header.images)
    # SubIFDs follow their parent; here every SubIFD is a reduced-resolution image
    return [im for im in header.images if not im.new_subfile_type & 1]


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def manifest_nodata(value: object) -> float | None:
    if value is None:
        return None
    return float(value)  # "nan", "inf", "-inf" parse as floats


def compare_structure(header: TiffHeader, entry: dict) -> list[str]:
    """Differences between our parse and the manifest (tifffile structure + GDAL view)."""
    problems: list[str] = []

    def check(name: str, ours: object, theirs: object) -> None:
        if ours != theirs:
            problems.append(f"{name}: ours {ours!r} manifest {theirs!r}")

    im = header.images[0]
    check("width", im.width, entry["width"])
    check("height", im.height, entry["height"])
    check("tiled", im.tiled, entry["tiled"])
    if entry["tiled"]:
        check(
            "tile size",
            (im.block_width, im.block_height),
            (entry["tile_width"], entry["tile_height"]),
        )
    else:
        rows = entry["rows_per_strip"]
        check("rows_per_strip", im.block_height, min(rows or im.height, im.height))
    check("n_blocks", len(im.block_offsets), entry["n_blocks"])
    check("n_byte_counts", len(im.block_byte_counts), entry["n_blocks"])
    check("bigtiff", header.bigtiff, entry["bigtiff"])
    check("byte_order", header.byte_order, "<" if entry["byte_order"] == "little" else ">")
    check("compression", im.compression, entry["compression_code"])
    check("predictor", im.predictor, entry["predictor"] or 1)
    if entry["planar_config"] is not None and im.samples_per_pixel > 1:
        check("planar", im.planar_configuration, PLANAR[entry["planar_config"]])
    check("samples", im.samples_per_pixel, entry["bands"])
    check("bits", im.bits_per_sample, entry["bits_per_sample"])
    check("sample_format", im.sample_format, SAMPLE_FORMATS[entry["sample_format"]])
    chain = main_chain(header, entry)
    check("n_ifds", len(chain), entry["n_ifds"])
    check("overview_ifds", sum(i.new_subfile_type & 5 == 1 for i in chain), entry["overview_ifds"])
    check("mask_ifds", sum(i.kind == "mask" for i in chain), entry["mask_ifds"])
    if not entry["has_subifds"]:
        check("overview kind", sum(i.kind == "overview" for i in chain), entry["overview_ifds"])
    gt = entry["geotransform"]
    if gt is not None:
        t = header.geo.transform
        if t is None:
            problems.append(f"geotransform: ours None manifest {gt}")
        else:
            ours = (t[2], t[0], t[1], t[5], t[3], t[4])
            if not all(close(a, b) for a, b in zip(ours, gt, strict=True)):
                problems.append(f"geotransform: ours {ours} manifest {gt}")
    nodata, theirs = header.geo.nodata, manifest_nodata(entry["nodata"])
    if not (
        nodata == theirs
        or (nodata is not None and theirs is not None and math.isnan(nodata) and math.isnan(theirs))
    ):
        problems.append(f"nodata: ours {nodata!r} manifest {theirs!r}")
    for field, ours_values in (
        ("scales", header.geo.band_scales),
        ("offsets", header.geo.band_offsets),
    ):
        if entry.get(field):
            check(field, list(ours_values or ()), entry[field])
    return problems


def test_corpus_structure_matches_manifest(corpus_dir: Path, corpus_manifest: dict) -> None:
    failures = []
    for entry in corpus_manifest["files"]:
        if not entry["gdal_readable"] or entry["bad_input"] or not entry["ifds"]:
            continue
        path = corpus_dir / entry["path"]
        header = parse_header(path.read_bytes(), str(path))
        problems = compare_structure(header, entry)
        if problems:
            failures.append(f"{entry['path']}: {problems}")
    assert not failures, "\n".join(failures)


@pytest.mark.timeout(60)
def test_corpus_tally_and_bad_inputs(corpus_dir: Path, corpus_manifest: dict) -> None:
    """Every file parses or raises a typed TiffError; GDAL-readable files all parse."""
    parsed: list[str] = []
    typed: list[str] = []
    failures: list[str] = []
    for entry in corpus_manifest["files"]:
        path = corpus_dir / entry["path"]
        try:
            header = parse_header(path.read_bytes(), str(path))
        except TiffError as exc:
            typed.append(f"{entry['path']}: {type(exc).__name__}: {exc.reason}")
            if entry["gdal_readable"]:
                failures.append(f"GDAL reads {entry['path']} but we raise {exc!r}")
            continue
        except Exception as exc:
            failures.append(f"{entry['path']}: untyped {type(exc).__name__}: {exc}")
            continue
        parsed.append(entry["path"])
        assert header.images and header.full.kind == "full"
    print(f"\ncorpus: {len(parsed)} parsed, {len(typed)} typed errors, {len(failures)} failures")
    for line in typed:
        print("  typed error:", line)
    assert not failures, "\n".join(failures)
    assert len(parsed) + len(typed) == len(corpus_manifest["files"])


@pytest.mark.parametrize(
    "name, error",
    [
        ("gdal/toomanyblocks.tif", CorruptTiffError),
        ("gdal/huge-number-strips.tif", CorruptTiffError),
        ("gdal/uint33.tif", UnsupportedTiffError),
        ("node-gdal-async/truncated.tiff", CorruptTiffError),
    ],
)
@pytest.mark.timeout(10)
def test_hostile_corpus_files_raise_typed_errors(corpus_dir: Path, name: str, error: type) -> None:
    data = (corpus_dir / "tiff" / name).read_bytes()
    with pytest.raises(error):
        parse_header(data, name)
    with pytest.raises(error):
        read_async(data, name)


@pytest.mark.timeout(60)
def test_async_read_matches_sync_parse(corpus_dir: Path, corpus_manifest: dict) -> None:
    mismatches = []
    for entry in corpus_manifest["files"]:
        data = (corpus_dir / entry["path"]).read_bytes()
        try:
            sync = parse_header(data, entry["path"])
        except TiffError as exc:
            with pytest.raises(type(exc)):
                read_async(data, entry["path"])
            continue
        header, _ = read_async(data, entry["path"])
        for a, b in zip(sync.images, header.images, strict=True):
            same = (a.width, a.height, a.kind, a.dtype) == (b.width, b.height, b.kind, b.dtype)
            if not same or not np.array_equal(a.block_offsets, b.block_offsets):
                mismatches.append(entry["path"])
        nan_nodata = sync.geo.nodata is not None and math.isnan(sync.geo.nodata)
        geo_differs = sync.geo != header.geo and not nan_nodata  # NaN != NaN
        if len(sync.images) != len(header.images) or geo_differs:
            mismatches.append(entry["path"])
    assert not mismatches


def test_ghost_header_cogs_need_at_most_two_fetches(
    corpus_dir: Path, corpus_manifest: dict
) -> None:
    counts = {}
    for entry in corpus_manifest["files"]:
        if entry["has_gdal_ghost_header"]:
            _, calls = read_async((corpus_dir / entry["path"]).read_bytes(), entry["path"])
            counts[entry["path"]] = calls
    assert counts, "the corpus has no GDAL COG"
    assert max(counts.values()) <= 2, counts


@pytest.mark.parametrize(
    "size, tile, dtype",
    [(2048, 256, "uint16"), (2048, 512, "uint16"), (20000, 256, "uint8"), (3000, 512, "float32")],
)
def test_gdal_cogs_need_at_most_two_fetches(
    tmp_path: Path, size: int, tile: int, dtype: str
) -> None:
    rasterio = pytest.importorskip("rasterio")
    from rasterio.transform import from_origin

    path = tmp_path / "cog.tif"
    profile = dict(
        driver="COG",
        width=size,
        height=size,
        count=1,
        dtype=dtype,
        blocksize=tile,
        compress="deflate",
        crs="EPSG:32633",
        transform=from_origin(500000, 4e6, 10, 10),
        nodata=0,
        overview_resampling="nearest",
    )
    data = np.zeros((size, size), dtype=dtype) if size <= 4096 else None
    with rasterio.open(path, "w", **profile) as dst:
        if data is not None:
            data[::7, ::3] = 1
            dst.write(data, 1)
    raw = path.read_bytes()
    header, calls = read_async(raw, str(path))
    assert calls <= 2
    with rasterio.open(path) as src:
        assert [o.width for o in header.overviews] == [
            src.width // f for f in src.overviews(1)
        ] or len(header.overviews) == len(src.overviews(1))
        assert header.full.block_width == tile and header.full.width == size
        assert header.geo.epsg == 32633 and header.geo.nodata == 0
        expected = src.transform
        assert header.geo.transform == pytest.approx(tuple(expected)[:6])
    # with a tiny prefetch the parser still resolves everything (more calls)
    small, _ = read_async(raw, str(path), prefetch=512)
    assert [len(i.block_offsets) for i in small.images] == [
        len(i.block_offsets) for i in header.images
    ]


def test_dtype_mapping() -> None:
    cases = {
        (1, 1): "uint8",
        (1, 4): "uint8",
        (1, 12): "uint16",
        (2, 24): "uint32",
        (1, 24): "uint32",
        (3, 16): "float16",
        (3, 24): "float32",
        (5, 32): "complex64",
        (6, 64): "complex64",
        (6, 128): "complex128",
        (2, 8): "int8",
        (2, 64): "int64",
        (1, 64): "uint64",
    }
    for (fmt, bits), dtype in cases.items():
        assert sample_dtype("x", fmt, bits) == dtype
    with pytest.raises(UnsupportedTiffError):
        sample_dtype("x", 1, 33)
    with pytest.raises(UnsupportedTiffError):
        sample_dtype("x", 3, 8)


# --- hand-made files ------------------------------------------------------------------


def make_tiff(
    entries: list[tuple[int, int, int, bytes]],
    *,
    order: str = "<",
    bigtiff: bool = False,
    next_ifd: int = 0,
    extra: bytes = b"",
) -> bytes:
    """A one-IFD TIFF; entries are (tag, type, count, value bytes); values go after the IFD."""
    mark = b"II" if order == "<" else b"MM"
    if bigtiff:
        head = mark + struct.pack(order + "HHHQ", 43, 8, 0, 16)
        ifd_at, count_fmt, entry_fmt, off_fmt, inline = 16, "Q", "HHQ", "Q", 8
    else:
        head = mark + struct.pack(order + "HI", 42, 8)
        ifd_at, count_fmt, entry_fmt, off_fmt, inline = 8, "H", "HHI", "I", 4
    entry_size = struct.calcsize(order + entry_fmt) + inline
    values_at = ifd_at + struct.calcsize(order + count_fmt) + len(entries) * entry_size + inline
    table = struct.pack(order + count_fmt, len(entries))
    blob = b""
    for tag, ftype, count, value in sorted(entries):
        table += struct.pack(order + entry_fmt, tag, ftype, count)
        if len(value) <= inline:
            table += value.ljust(inline, b"\0")
        else:
            table += struct.pack(order + off_fmt, values_at + len(blob))
            blob += value + (b"\0" if len(value) % 2 else b"")
    table += struct.pack(order + off_fmt, next_ifd)
    return head + table + blob + extra


def basic_entries(order: str = "<", width: int = 16, offset_type: int = 4) -> list:
    def short(v: int) -> bytes:
        return struct.pack(order + "H", v)

    def long(v: int) -> bytes:
        return struct.pack(order + "I", v)

    offset_value = {1: bytes([200]), 3: short(200), 4: long(200), 16: struct.pack(order + "Q", 200)}
    return [
        (256, 3, 1, short(width)),
        (257, 3, 1, short(16)),
        (258, 3, 1, short(8)),
        (259, 3, 1, short(1)),
        (262, 3, 1, short(1)),
        (273, offset_type, 1, offset_value[offset_type]),
        (277, 3, 1, short(1)),
        (278, 3, 1, short(16)),
        (279, 4, 1, long(256)),
    ]


@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("bigtiff", [False, True])
@pytest.mark.parametrize("offset_type", [1, 3, 4, 16])
def test_minimal_files_every_flavour(order: str, bigtiff: bool, offset_type: int) -> None:
    if offset_type == 16 and not bigtiff:
        offset_type = 4
    data = make_tiff(basic_entries(order, offset_type=offset_type), order=order, bigtiff=bigtiff)
    data = data.ljust(200 + 256, b"\0")
    header = parse_header(data, "mem.tif")
    assert header.byte_order == order and header.bigtiff == bigtiff
    image = header.full
    assert (image.width, image.height, image.block_height, image.dtype) == (16, 16, 16, "uint8")
    assert image.block_offsets.tolist() == [200] and image.block_byte_counts.tolist() == [256]
    assert image.block_offsets.dtype == np.uint64


def test_every_field_type_value_decodes() -> None:
    order = "<"
    entries = basic_entries(order)
    entries += [
        (33550, 12, 3, struct.pack("<3d", 2.0, 2.0, 0.0)),  # DOUBLE
        (33922, 12, 6, struct.pack("<6d", 0, 0, 0, 100.0, 200.0, 0)),
        (42113, 2, 5, b"-inf\0"),  # ASCII
        (347, 7, 4, b"\xff\xd8\xff\xd9"),  # UNDEFINED
        (50674, 4, 2, struct.pack("<2I", 4, 1)),
        (339, 3, 1, struct.pack("<H", 1)),
        (530, 3, 2, struct.pack("<2H", 2, 2)),
        (34000, 10, 1, struct.pack("<2i", -1, 2)),  # SRATIONAL (unknown tag, skipped)
        (34001, 5, 1, struct.pack("<2I", 1, 2)),  # RATIONAL
        (34002, 13, 1, struct.pack("<I", 0)),  # IFD
        (34003, 11, 1, struct.pack("<f", 1.5)),  # FLOAT
        (34004, 6, 1, b"\xff"),  # SBYTE
        (34005, 8, 1, struct.pack("<h", -2)),  # SSHORT
        (34006, 9, 1, struct.pack("<i", -3)),  # SLONG
        (34007, 99, 1, b"\0"),  # unknown type: skipped like libtiff
    ]
    data = make_tiff(entries).ljust(200 + 256, b"\0")
    header = parse_header(data, "mem.tif")
    assert header.geo.transform == (2.0, 0.0, 100.0, 0.0, -2.0, 200.0)
    assert header.geo.nodata == -math.inf
    assert header.full.jpeg_tables == b"\xff\xd8\xff\xd9"
    assert header.full.lerc_parameters == (4, 1)
    assert header.full.ycbcr_subsampling == (2, 2)


def test_truncated_and_garbage_inputs_raise_corrupt() -> None:
    good = make_tiff(basic_entries()).ljust(456, b"\0")
    for data in (b"", b"II", b"XX*\0\x08\0\0\0", b"II\x2a\0", good[:20], good[:100]):
        with pytest.raises(CorruptTiffError):
            parse_header(data, "mem.tif")
        with pytest.raises(CorruptTiffError):
            read_async(data)


@pytest.mark.timeout(5)
def test_ifd_loop_is_detected() -> None:
    data = make_tiff(basic_entries(), next_ifd=8).ljust(456, b"\0")
    with pytest.raises(CorruptTiffError, match="loop"):
        parse_header(data, "loop.tif")
    with pytest.raises(CorruptTiffError, match="loop"):
        read_async(data)


@pytest.mark.timeout(5)
def test_huge_counts_do_not_allocate() -> None:
    entries = [e for e in basic_entries() if e[0] not in (273, 279)]
    entries += [(273, 4, 2**31, struct.pack("<I", 300)), (279, 4, 2**31, struct.pack("<I", 300))]
    data = make_tiff(entries).ljust(456, b"\0")
    with pytest.raises(CorruptTiffError):
        parse_header(data, "huge.tif")
    with pytest.raises(CorruptTiffError):
        read_async(data)
    # a 10^12-tile header whose arrays hold one value
    entries = [e for e in basic_entries() if e[0] not in (256, 257, 273, 278, 279)]
    entries += [
        (256, 4, 1, struct.pack("<I", 2**31 - 1)),
        (257, 4, 1, struct.pack("<I", 2**31 - 1)),
        (322, 3, 1, struct.pack("<H", 16)),
        (323, 3, 1, struct.pack("<H", 16)),
        (324, 4, 1, struct.pack("<I", 200)),
        (325, 4, 1, struct.pack("<I", 10)),
    ]
    with pytest.raises(CorruptTiffError, match="blocks"):
        parse_header(make_tiff(entries).ljust(456, b"\0"), "tiles.tif")


def test_type_mismatch_and_offsets_past_eof() -> None:
    entries = [e for e in basic_entries() if e[0] != 256] + [(256, 2, 4, b"abc\0")]
    with pytest.raises(CorruptTiffError, match="ImageWidth"):
        parse_header(make_tiff(entries).ljust(456, b"\0"), "type.tif")
    entries = [*basic_entries(), (33550, 12, 3, b"")]
    data = make_tiff(entries)
    patched = bytearray(data)
    # point the ModelPixelScale value far past the end of the file
    pos = data.index(struct.pack("<HHI", 33550, 12, 3)) + 8
    patched[pos : pos + 4] = struct.pack("<I", 10**6)
    with pytest.raises(CorruptTiffError, match="beyond the end"):
        parse_header(bytes(patched), "eof.tif")
    with pytest.raises(CorruptTiffError):
        read_async(bytes(patched))


def test_mixed_bits_per_sample_is_unsupported() -> None:
    entries = [e for e in basic_entries() if e[0] not in (258, 277)]
    entries += [(258, 3, 3, struct.pack("<3H", 8, 8, 16)), (277, 3, 1, struct.pack("<H", 3))]
    with pytest.raises(UnsupportedTiffError, match="BitsPerSample"):
        parse_header(make_tiff(entries).ljust(456, b"\0"), "mixed.tif")


def test_masks_overviews_and_pages_are_classified(corpus_dir: Path) -> None:
    kinds = {
        "rasterio/cogeo.tif": ["full", "mask"] + ["overview"] * 6 + ["mask"] * 6,
        "gdal/twoimages.tif": ["full", "other"],
        "gdal/tiff_with_subifds.tif": ["full", "overview", "overview", "other", "other", "other"],
        "gdal/test_with_mask_1bit_and_ovr.tif": ["full", "overview", "mask", "mask"],
    }
    for name, expected in kinds.items():
        header = parse_header((corpus_dir / "tiff" / name).read_bytes(), name)
        assert [i.kind for i in header.images] == expected, name
    header = parse_header((corpus_dir / "tiff/rasterio/cogeo.tif").read_bytes(), "cogeo")
    assert [m.width for m in header.masks] == [1024, 512, 256, 128, 64, 32, 16]
    assert [o.width for o in header.overviews] == [512, 256, 128, 64, 32, 16]
    assert header.full.jpeg_tables is not None and header.full.ycbcr_subsampling == (2, 2)
