"""Decompression bombs of every codec: memory is bounded by the declared block (#14).

Each bomb of ``_fuzz_harness.bombs()`` decodes, or claims to decode, to 256 MiB or more
(a zstd / LZMA / deflate / LZW stream of zeros, PackBits runs, a JPEG or WebP header
declaring 16384 x 16384, an animated WebP of 1024 frames, 64 concatenated LERC bands, a
LERC payload that is a zstd frame, a JPEG-XL image of 16384 x 16384) and is declared as
a small block. It is decoded in a fresh subprocess, whose peak RSS (``ru_maxrss``: the
codec libraries allocate outside tracemalloc's view) must stay within a few blocks of
its baseline; the decode either succeeds (a stream longer than its block is cut, as
libtiff does) or raises a CorruptTiffError naming the source.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from _fuzz_harness import Bomb, bombs, declared_block_bytes, jpeg_hidden_frame, measure
from rasteret.errors import CorruptTiffError
from rasteret.tiff import BlockDecoding, decode_block

MiB = 1024 * 1024
#: Most a bomb's subprocess may grow by: the block (at most 4 MiB here) a few times over,
#: plus the codec libraries' working memory; the bombs are 256 MiB.
GROWTH_BOUND_MIB = 64

DRIVER = textwrap.dedent(
    """
    import json, resource, sys
    from pathlib import Path
    from rasteret.errors import CorruptTiffError
    from rasteret.tiff.decode import BlockDecoding, decode_block
    data = Path(sys.argv[1]).read_bytes()
    decoding = BlockDecoding.from_dict(json.loads(sys.argv[2]))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    outcomes = []
    for _ in range(4):  # four tiles of a bomb file
        try:
            block = decode_block(memoryview(data), decoding, source="bomb.tif", block_index=3)
            outcomes.append(f"ok {block.shape}")
        except CorruptTiffError as exc:
            outcomes.append(str(exc))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"outcomes": outcomes, "grew_mib": (peak - before) / 1024}))
    """
)


@pytest.mark.parametrize("bomb", bombs(), ids=lambda bomb: bomb.name)
def test_bomb_memory_is_bounded_by_the_block(tmp_path: Path, bomb: Bomb) -> None:
    assert declared_block_bytes(bomb.decoding) <= 4 * MiB
    (tmp_path / "tile.bin").write_bytes(bomb.payload)
    result = subprocess.run(
        [sys.executable, "-c", DRIVER, str(tmp_path / "tile.bin"),
         json.dumps(bomb.decoding.to_dict())],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    report = json.loads(result.stdout)
    assert report["grew_mib"] < GROWTH_BOUND_MIB, report  # was 220-560 MiB for JPEG, ...
    outcome = report["outcomes"][0]
    assert len(set(report["outcomes"])) == 1, report
    if bomb.refused:
        assert outcome.startswith("bomb.tif: ") and "block 3" in outcome, report
        assert bomb.refused in outcome, report
    else:
        assert outcome == f"ok {bomb.decoding.shape}", report


def test_jpeg_whose_frame_header_cannot_be_read_is_refused() -> None:
    """libjpeg skips stuffed FF 00 pairs before a marker; past the reader's step limit the
    stream is refused rather than left to libjpeg (which would allocate 256 MiB here)."""
    jpeg = jpeg_hidden_frame(16384, 16384)
    hidden = jpeg[:2] + b"\xff\x00" * 70000 + jpeg[2:]
    decoding = BlockDecoding(7, "uint8", 256, 256)
    with measure() as peak, pytest.raises(CorruptTiffError, match="no frame header"):
        decode_block(hidden, decoding, source="hidden.tif")
    assert peak[0] < 4 * MiB
