"""Image sizes declared inside JPEG, WebP, LERC and JPEG-XL streams, read before decoding them.

A codec library allocates its output (and its working memory) from the size a stream
declares, so a tile of a few bytes could claim a 65535 x 65535 image.
:mod:`rasteret.tiff.block_decoders` reads the declared size with these functions, refuses a
stream that does not fit its block before any decoder runs, and hands the decoder an
output array of exactly the size read here: a stream the library reads differently fails
instead of allocating. Each reader follows its library's own parsing (libjpeg's marker
reader, libwebp's RIFF and raw-bitstream headers, the LERC blob header, the JPEG-XL
SizeHeader). All functions are tolerant: ``None`` means "not found".
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

Buffer = bytes | bytearray | memoryview

#: JPEG start-of-frame markers (baseline, extended, progressive, lossless, arithmetic).
_SOF_MARKERS = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD})
_SOF_MARKERS |= {0xCE, 0xCF}
#: Markers without a length field (RSTn, TEM).
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})
#: Markers that end the search for a frame header: SOI again, EOI, SOS.
_NO_FRAME = frozenset({0xD8, 0xD9, 0xDA})
#: Most markers, fill bytes and stuffed FF 00 pairs scanned before giving up (a hostile
#: stream); a valid stream has a few dozen before its frame header.
_MAX_STEPS = 65536


@dataclass(frozen=True)
class JpegFrame:
    """A JPEG frame header (SOF): image size, component count, sample precision (bits)."""

    height: int
    width: int
    components: int
    precision: int


def jpeg_frame(data: Buffer) -> JpegFrame | None:
    """The frame header libjpeg would read from ``data``, or ``None``.

    Reads markers as libjpeg does: SOI first, then segments skipped by their length, with
    bytes that are not a marker (garbage, 0xFF fill bytes, stuffed FF 00 pairs) skipped.
    ``None`` when SOI is missing, when a scan, the end of the image or a second SOI comes
    before any frame header (libjpeg fails such a stream), or after :data:`_MAX_STEPS`
    steps. A JPEGTables stream has no frame header.
    """
    buf = data if isinstance(data, bytes) else memoryview(data).cast("B").tobytes()
    if buf[:2] != b"\xff\xd8":
        return None
    i = 2
    for _ in range(_MAX_STEPS):
        i = buf.find(b"\xff", i)
        if i < 0 or i + 1 >= len(buf):
            return None
        marker = buf[i + 1]
        if marker in (0x00, 0xFF):  # a stuffed pair or a fill byte: not a marker
            i += 1 if marker == 0xFF else 2
            continue
        i += 2
        if marker in _NO_FRAME:
            return None
        if marker in _STANDALONE:
            continue
        if i + 8 > len(buf):
            return None
        if marker in _SOF_MARKERS:
            height, width = struct.unpack_from(">HH", buf, i + 3)
            return JpegFrame(height, width, buf[i + 7], buf[i + 2])
        (length,) = struct.unpack_from(">H", buf, i)
        i += max(length, 2)  # libjpeg skips length - 2 bytes after the length field
    return None


def webp_canvas(data: Buffer) -> tuple[int, int] | None:
    """``(height, width)`` a WebP stream declares, or ``None``.

    As libwebp: an optional RIFF/WEBP header, then a VP8X canvas, a ``VP8 `` / ``VP8L``
    chunk, or a raw VP8 / VP8L bitstream (libwebp decodes those without a container).
    """
    head = bytes(memoryview(data).cast("B")[:64])
    pos = 0
    if head[:4] == b"RIFF":
        if head[8:12] != b"WEBP":
            return None
        pos = 12
    chunk = head[pos : pos + 4]
    if chunk == b"VP8X":
        if len(head) < pos + 18:
            return None
        width = 1 + int.from_bytes(head[pos + 12 : pos + 15], "little")
        height = 1 + int.from_bytes(head[pos + 15 : pos + 18], "little")
        return height, width
    lossless = head[pos : pos + 1] == b"\x2f"  # a raw VP8L bitstream's signature
    if chunk in (b"VP8 ", b"VP8L"):
        lossless = chunk == b"VP8L"
        pos += 8
    if lossless:
        if len(head) < pos + 5 or head[pos] != 0x2F:
            return None
        bits = int.from_bytes(head[pos + 1 : pos + 5], "little")
        return 1 + ((bits >> 14) & 0x3FFF), 1 + (bits & 0x3FFF)
    if len(head) < pos + 10 or head[pos + 3 : pos + 6] != b"\x9d\x01\x2a":
        return None
    width, height = struct.unpack_from("<HH", head, pos + 6)
    return height & 0x3FFF, width & 0x3FFF


def webp_animated(data: Buffer) -> bool:
    """Whether a WebP stream is an animation (its VP8X chunk has the animation flag)."""
    head = bytes(memoryview(data).cast("B")[:24])
    pos = 12 if head[:4] == b"RIFF" else 0
    return head[pos : pos + 4] == b"VP8X" and len(head) > pos + 8 and bool(head[pos + 8] & 0x02)


@dataclass(frozen=True)
class LercBlob:
    """The header of a LERC blob: rows, columns, values per pixel, numpy dtype name."""

    rows: int
    cols: int
    depth: int
    dtype: str


#: LERC data type codes (Lerc2 ``DataType``) as numpy dtype names.
_LERC_TYPES = ("int8", "uint8", "int16", "uint16", "int32", "uint32", "float32", "float64")


def lerc_blob(data: Buffer) -> LercBlob | None:
    """The header of the first LERC blob in ``data`` (Lerc2 or Lerc1), or ``None``."""
    head = bytes(memoryview(data).cast("B")[:64])
    if head[:6] == b"Lerc2 " and len(head) >= 10:
        (version,) = struct.unpack_from("<i", head, 6)
        position = 10 if version < 3 else 14  # version 3 added a checksum
        count = 7 if version >= 4 else 6  # version 4 added the depth
        if len(head) < position + 4 * count:
            return None
        ints = struct.unpack_from(f"<{count}i", head, position)
        # rows, cols, [depth], valid pixels, micro block size, blob size, data type
        depth = ints[2] if version >= 4 else 1
        if not 0 <= ints[count - 1] < len(_LERC_TYPES):
            return None
        return LercBlob(ints[0], ints[1], depth, _LERC_TYPES[ints[count - 1]])
    if head[:10] == b"CntZImage " and len(head) >= 26:
        _, _, height, width = struct.unpack_from("<4i", head, 10)  # version, type, h, w
        return LercBlob(height, width, 1, "float32")
    return None


_JXL_CONTAINER = b"\x00\x00\x00\x0cJXL \r\n\x87\n"
#: JPEG-XL SizeHeader aspect ratios (index 1-7) as (numerator, denominator).
_JXL_RATIOS = ((1, 1), (12, 10), (4, 3), (3, 2), (16, 9), (5, 4), (2, 1))
_MAX_BOXES = 64


def _jxl_codestream(view: memoryview) -> memoryview | None:
    """The codestream of a JPEG-XL stream: bare, or in the first jxlc / jxlp box."""
    if view[:2] == b"\xff\x0a":
        return view
    if view[:12] != _JXL_CONTAINER:
        return None
    pos = 12
    for _ in range(_MAX_BOXES):
        if pos + 8 > len(view):
            return None
        size, kind, header = int.from_bytes(view[pos : pos + 4], "big"), view[pos + 4 : pos + 8], 8
        if size == 1:
            size, header = int.from_bytes(view[pos + 8 : pos + 16], "big"), 16
        elif size == 0:
            size = len(view) - pos
        if kind == b"jxlc":
            return view[pos + header : pos + size]
        if kind == b"jxlp":  # a 4-byte sequence number precedes the partial codestream
            return view[pos + header + 4 : pos + size]
        if size < header:
            return None
        pos += size
    return None


def jpegxl_size(data: Buffer) -> tuple[int, int] | None:
    """``(height, width)`` from a JPEG-XL SizeHeader (before orientation), or ``None``."""
    stream = _jxl_codestream(memoryview(data).cast("B"))
    if stream is None or bytes(stream[:2]) != b"\xff\x0a" or len(stream) < 12:
        return None
    value = int.from_bytes(stream[2:12], "little")
    position = 0

    def bits(n: int) -> int:
        nonlocal position
        out = (value >> position) & ((1 << n) - 1)
        position += n
        return out

    def dimension(small: bool) -> int:
        if small:
            return (bits(5) + 1) * 8
        return 1 + bits((9, 13, 18, 30)[bits(2)])

    small = bool(bits(1))
    height = dimension(small)
    ratio = bits(3)
    if ratio:
        numerator, denominator = _JXL_RATIOS[ratio - 1]
        return height, height * numerator // denominator
    return height, dimension(small)
