"""Conformance against the real-world corpus (../shared/corpus): parser + decoder vs GDAL.

For every TIFF in the manifest:

* GDAL-readable: IFD0 is decoded with ``parse_header`` + ``read_image`` and compared to
  the GDAL reference (``expected/<path>.npz``: the full array, or three windows of big
  files), as GDAL returns it (float16 compared as float32). Overview levels are compared
  by the manifest's per-level sha256 and the stored smallest level; internal masks by
  ``mask_sha256``. Lossless files must be bit-identical. JPEG / WebP files must be within
  a mean absolute difference of ``LOSSY_MEAN_DN`` (the references were made with GDAL
  3.10 whose libjpeg differs from ours by up to ~120 DN on isolated edge pixels) or be
  bit-identical to the GDAL installed here (3.12: we are, for every lossy file; see
  ``test_lossy_bit_identical_to_local_gdal``). Overview levels are matched by shape (GDAL
  lists SubIFD overviews in file order, rasteret largest first). Otherwise the file must
  raise :class:`UnsupportedTiffError`.
* Not GDAL-readable because it is corrupt or hostile: it must raise a typed
  :class:`TiffError`, without hanging (pytest-timeout) or allocating the declared size.

``test_zz_tally`` prints the tally and requires >= 95 % of GDAL-readable files to decode equal.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections import Counter

import numpy as np
import pytest

from conftest import CORPUS  # ../shared/corpus, or $RASTERET_SHARED/corpus
from rasteret.errors import TiffError, UnsupportedTiffError
from rasteret.tiff.header import parse_header
from rasteret.tiff.image import read_image
from rasteret.tiff.model import TiffHeader

LOSSY = {"jpeg", "webp"}
LOSSY_MEAN_DN = 3.0
MAX_COMPARED_BYTES = 64 * 2**20  # hash-compare overview levels up to this size
REQUIRED_EQUAL = 0.95

RESULTS: dict[str, str] = {}  # path -> equal | unsupported | typed-error | failed: ...


def _manifest_files() -> list[dict]:
    manifest = CORPUS / "manifest.json"
    if not manifest.is_file():
        return []
    return json.loads(manifest.read_text())["files"]


FILES = _manifest_files()
READABLE = [f for f in FILES if f["gdal_readable"]]
UNREADABLE = [f for f in FILES if not f["gdal_readable"]]
pytestmark = pytest.mark.filterwarnings("ignore:Dataset has no geotransform")
needs_corpus = pytest.mark.skipif(not FILES, reason=f"conformance corpus not found at {CORPUS}")


def _fetcher(data: bytes):
    async def fetch(offset: int, length: int) -> bytes:
        return data[offset : offset + length]

    return fetch


def _load(entry: dict) -> tuple[TiffHeader, bytes]:
    path = CORPUS / entry["path"]
    data = path.read_bytes()
    return parse_header(data, str(path)), data


def _read(header: TiffHeader, data: bytes, **kwargs: object) -> np.ndarray:
    return asyncio.run(read_image(header, _fetcher(data), **kwargs))


def _as_gdal(array: np.ndarray) -> np.ndarray:
    """What GDAL 3.10 returned for the same samples (float16 -> float32)."""
    return array.astype(np.float32) if array.dtype == np.float16 else array


def _sha256(array: np.ndarray) -> str:
    little = array.astype(array.dtype.newbyteorder("<"), copy=False)
    return hashlib.sha256(np.ascontiguousarray(little).tobytes()).hexdigest()


def _compare(ours: np.ndarray, ref: np.ndarray, lossy: bool, what: str) -> str | None:
    """None when equal (or within the lossy tolerance), else a description."""
    ours = _as_gdal(ours)
    if ours.shape != ref.shape or ours.dtype != ref.dtype:
        return f"{what}: got {ours.shape} {ours.dtype}, GDAL {ref.shape} {ref.dtype}"
    if lossy:
        diff = np.abs(ours.astype(np.float64) - ref.astype(np.float64))
        return None if diff.mean() <= LOSSY_MEAN_DN else f"{what}: mean diff {diff.mean():.2f} DN"
    if np.array_equal(ours, ref, equal_nan=ours.dtype.kind in "fc"):
        return None
    same = ours == ref
    if ours.dtype.kind in "fc":
        same |= np.isnan(ours) & np.isnan(ref)
    return f"{what}: {int(np.count_nonzero(~same))} values differ"


def _equals_local_gdal(entry: dict, ours: np.ndarray, **options: object) -> bool:
    """Lossy fallback: bit-identical to the GDAL installed here (another libjpeg build)."""
    try:
        import rasterio
    except ImportError:
        return False
    with rasterio.open(CORPUS / entry["path"], **options) as src:
        ref = src.read()
    return ref.shape == ours.shape and np.array_equal(ref, ours)


def _check_full_resolution(entry: dict, header: TiffHeader, data: bytes) -> list[str]:
    expected = np.load(CORPUS / entry["expected"])
    lossy = entry["compression"] in LOSSY
    problems = []
    if entry["expected_stored"] == "full":
        problem = _compare(_read(header, data), expected["data"], lossy, "full image")
        problems += [problem] if problem else []
    else:
        for i in range(3):
            window = tuple(int(v) for v in expected[f"win{i}_window"])
            ours = _read(header, data, window=window)
            problem = _compare(ours, expected[f"win{i}_data"], lossy, f"window {window}")
            problems += [problem] if problem else []
    return problems


def _check_overviews(entry: dict, header: TiffHeader, data: bytes) -> list[str]:
    levels = entry.get("overviews") or []
    if not levels:
        return []
    if len(header.overviews) != len(levels):
        return [f"{len(header.overviews)} overview levels, GDAL has {len(levels)}"]
    # our levels are sorted largest first; GDAL keeps file order (SubIFDs may differ)
    ours_by_shape = {(o.height, o.width): n + 1 for n, o in enumerate(header.overviews)}
    expected = np.load(CORPUS / entry["expected"])
    lossy = entry["compression"] in LOSSY
    problems = []
    for i, level in enumerate(levels):
        stored = f"ovr{i}_data" in expected.files
        nbytes = int(np.prod(level["shape"])) * np.dtype(entry["array_dtype"]).itemsize
        if not stored and (lossy or nbytes > MAX_COMPARED_BYTES):
            continue
        ours_level = ours_by_shape.get(tuple(level["shape"][1:]))
        if ours_level is None:
            problems.append(f"overview {i}: no level of shape {level['shape'][1:]}")
            continue
        ours = _as_gdal(_read(header, data, level=ours_level))
        if stored:
            problem = _compare(ours, expected[f"ovr{i}_data"], lossy, f"overview {i}")
            if problem and lossy and _equals_local_gdal(entry, ours, overview_level=i):
                problem = None
            problems += [problem] if problem else []
        elif list(ours.shape) != level["shape"] or _sha256(ours) != level["sha256"]:
            problems.append(f"overview {i}: sha256 differs from GDAL's")
    return problems


def _check_mask(entry: dict, header: TiffHeader, data: bytes) -> list[str]:
    """Internal mask IFD of IFD0 vs GDAL's dataset mask (only where the mask IFD is its source)."""
    if not entry.get("has_internal_mask") or entry["expected_stored"] != "full":
        return []
    if not any(
        (m.width, m.height) == (header.full.width, header.full.height) for m in header.masks
    ):
        return ["internal mask IFD not found by the parser"]
    ours = _read(header, data, mask=True)[0]
    if _sha256(ours) != entry["mask_sha256"]:
        return ["internal mask differs from GDAL's dataset_mask()"]
    return []


# GDAL-readable files whose compression rasteret does not decode (documented in docs/).
KNOWN_UNSUPPORTED = {
    "tiff/async-tiff/logluv-3c-16b.tiff": "SGILog",
    "tiff/gdal/uint16_sgilog.tif": "SGILog",
    "tiff/gdal/thunder.tif": "ThunderScan",
    "tiff/gdal/zackthecat.tif": "old-style JPEG",
}


@needs_corpus
@pytest.mark.timeout(120)
@pytest.mark.parametrize("entry", READABLE, ids=[f["path"][5:] for f in READABLE])
def test_gdal_readable_file_decodes_equal_or_is_unsupported(entry: dict) -> None:
    try:
        header, data = _load(entry)
        problems = _check_full_resolution(entry, header, data)
        problems += _check_overviews(entry, header, data)
        problems += _check_mask(entry, header, data)
    except UnsupportedTiffError as exc:
        RESULTS[entry["path"]] = "unsupported"
        # GDAL reads these, we raise the typed error; any other file doing so is a regression
        assert entry["path"] in KNOWN_UNSUPPORTED, f"newly unsupported: {exc}"
        return
    except TiffError as exc:
        RESULTS[entry["path"]] = f"failed: {exc}"
        raise
    if problems:
        RESULTS[entry["path"]] = "failed: " + "; ".join(problems)
        pytest.fail("; ".join(problems))
    RESULTS[entry["path"]] = "equal"


@needs_corpus
@pytest.mark.timeout(60)
@pytest.mark.parametrize("entry", UNREADABLE, ids=[f["path"][5:] for f in UNREADABLE])
def test_unreadable_file_raises_typed_error(entry: dict) -> None:
    kind = entry.get("expected_error_kind", "")
    try:
        header, data = _load(entry)
        ours = _read(header, data)
    except TiffError:
        RESULTS[entry["path"]] = "typed-error"
        return
    if kind.startswith("corrupt_or_hostile_input"):
        RESULTS[entry["path"]] = "failed: decoded a corrupt file without error"
        pytest.fail(f"{entry['path']} is {kind} but decoded without error")
    # a valid file this GDAL build cannot read: check against the tifffile oracle if any
    crosscheck = entry.get("tifffile_crosscheck") or {}
    digest = crosscheck.get("tifffile_sha256_syx")
    if digest is not None:
        assert _sha256(ours) == digest
    RESULTS[entry["path"]] = "decoded (GDAL cannot)"


@needs_corpus
def test_lossy_bit_identical_to_local_gdal() -> None:
    rasterio = pytest.importorskip("rasterio")
    lossy = [f for f in READABLE if f["compression"] in LOSSY and f["expected_stored"] == "full"]
    for entry in lossy:
        header, data = _load(entry)
        with rasterio.open(CORPUS / entry["path"]) as src:
            ref = src.read()
        np.testing.assert_array_equal(_read(header, data), ref, err_msg=entry["path"])


@needs_corpus
def test_zz_tally(capsys: pytest.CaptureFixture[str]) -> None:
    """Summary over the tests above (runs last: pytest keeps definition order)."""
    if len(RESULTS) < len(FILES):
        pytest.skip("tally needs the whole corpus run (not a -k selection)")
    readable = {f["path"] for f in READABLE}
    tally = Counter()
    for path, result in RESULTS.items():
        key = result.split(":")[0]
        tally[("readable " if path in readable else "unreadable ") + key] += 1
    failures = {p: r for p, r in RESULTS.items() if r.startswith("failed")}
    equal = tally["readable equal"]
    lines = [f"corpus tally over {len(FILES)} files ({len(readable)} GDAL-readable):"]
    lines += [f"  {key:32s} {count}" for key, count in sorted(tally.items())]
    lines += [f"  FAILED {path}: {result}" for path, result in failures.items()]
    lines.append(f"  decoded equal: {equal}/{len(readable)} = {equal / len(readable):.1%}")
    with capsys.disabled():
        print("\n" + "\n".join(lines))
    assert equal >= REQUIRED_EQUAL * len(readable)
