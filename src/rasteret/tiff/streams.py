"""Image sizes declared inside JPEG and WebP streams, read before decoding them.

A codec library allocates its output from the size a stream declares, so a tile of a
few bytes could claim a 65535 x 65535 image. :mod:`rasteret.tiff.block_decoders` reads the
declared size with these functions and refuses a stream that does not fit its block
before any decoder runs. Both functions are tolerant: ``None`` means "not found" (the
decoder then reports the stream's own error).
"""

from __future__ import annotations

import struct

Buffer = bytes | bytearray | memoryview

#: JPEG start-of-frame markers (baseline, extended, progressive, lossless, arithmetic).
_SOF_MARKERS = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD})
_SOF_MARKERS |= {0xCE, 0xCF}
#: Markers without a length field.
_STANDALONE = frozenset({0x01, 0xD8, *range(0xD0, 0xD8)})
#: Most segments scanned before giving up (a hostile stream of tiny segments).
_MAX_SEGMENTS = 4096


def jpeg_frame(data: Buffer) -> tuple[int, int, int] | None:
    """``(height, width, components)`` of the first JPEG frame header, or ``None``."""
    view = memoryview(data).cast("B") if isinstance(data, memoryview) else memoryview(data)
    size = len(view)
    i = 2 if size >= 2 and view[0] == 0xFF and view[1] == 0xD8 else 0
    for _ in range(_MAX_SEGMENTS):
        if i + 4 > size or view[i] != 0xFF:
            return None
        marker = view[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in _STANDALONE:
            i += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image / start of scan before any frame
            return None
        (length,) = struct.unpack_from(">H", view, i + 2)
        if marker in _SOF_MARKERS:
            if i + 10 > size:
                return None
            height, width = struct.unpack_from(">HH", view, i + 5)
            return height, width, view[i + 9]
        i += 2 + length
    return None


def webp_canvas(data: Buffer) -> tuple[int, int] | None:
    """``(height, width)`` a WebP stream declares (VP8X canvas, VP8L or VP8), or ``None``."""
    head = bytes(memoryview(data)[:30])
    if len(head) < 30 or head[:4] != b"RIFF" or head[8:12] != b"WEBP":
        return None
    chunk = head[12:16]
    if chunk == b"VP8X":
        width = 1 + int.from_bytes(head[24:27], "little")
        height = 1 + int.from_bytes(head[27:30], "little")
        return height, width
    if chunk == b"VP8L" and head[20] == 0x2F:
        bits = int.from_bytes(head[21:25], "little")
        return 1 + ((bits >> 14) & 0x3FFF), 1 + (bits & 0x3FFF)
    if chunk == b"VP8 " and head[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack_from("<HH", head, 26)
        return height & 0x3FFF, width & 0x3FFF
    return None


def lerc_size(data: Buffer) -> tuple[int, int, int] | None:
    """``(rows, cols, depth)`` of the first LERC2 blob header, or ``None``."""
    head = bytes(memoryview(data)[:32])
    if len(head) < 22 or head[:6] != b"Lerc2 ":
        return None
    (version,) = struct.unpack_from("<i", head, 6)
    position = 10 if version < 3 else 14  # version 3 added a checksum
    rows, cols = struct.unpack_from("<ii", head, position)
    depth = 1
    if version >= 4 and len(head) >= position + 12:
        (depth,) = struct.unpack_from("<i", head, position + 8)
    return rows, cols, depth
