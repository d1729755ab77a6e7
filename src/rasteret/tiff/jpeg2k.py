"""JPEG 2000 blocks (TIFF Compression 34712, Aperio's 33003 / 33005): the main header,
read before decoding.

Each block is a JPEG 2000 codestream (``FF4F FF51 ...``; a JP2 file wrapping one in its
``jp2c`` box is accepted too). :mod:`rasteret.tiff.block_decoders` decodes it with
OpenJPEG through ``imagecodecs.jpeg2k_decode``, as tifffile does for all three tags:

* 34712 and 33005 (Aperio "RGB", Kakadu): the components are the samples (a
  multiple-component transform in the stream is undone by OpenJPEG);
* 33003 (Aperio "YCbCr", Matrox): three 8-bit components stored as YCbCr without a
  multiple-component transform are converted to RGB, as OpenSlide does, with the
  TIFF-default full-range coefficients (:func:`rasteret.tiff.photometric.ycbcr_to_rgb`);
  a stream that says it applied the transform is already RGB.

Memory: as for JPEG / WebP / LERC / JPEG-XL (:mod:`rasteret.tiff.streams`), the image
size, components and precision declared in the SIZ marker segment are read before
OpenJPEG runs, and a stream that does not fit the block (another width, more rows,
other components, samples wider than the block's dtype, or absurdly many codestream
tiles) is refused with a CorruptTiffError, and one with subsampled components (Aperio
33003 may use 4:2:2 chroma) with an UnsupportedTiffError; the decoder writes into an
output array of exactly the declared size.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

Buffer = bytes | bytearray | memoryview

#: TIFF Compression values whose blocks are JPEG 2000 codestreams.
JPEG2000_COMPRESSIONS = frozenset({34712, 33003, 33005})
#: Most codestream tiles a block may declare (OpenJPEG allocates per tile).
MAX_CODESTREAM_TILES = 4096
#: Most JP2 boxes / main-header marker segments walked before giving up (hostile data).
_MAX_MARKERS = 256

_SOC, _SIZ, _COD, _SOT = 0xFF4F, 0xFF51, 0xFF52, 0xFF90
_JP2_SIGNATURE = b"\x00\x00\x00\x0cjP  \r\n\x87\n"


@dataclass(frozen=True)
class J2kHeader:
    """What a JPEG 2000 main header declares (SIZ, and COD's transform flag)."""

    height: int
    width: int
    components: int
    precision: int  # bits of the widest component
    signed: bool
    subsampled: bool  # a component with XRsiz or YRsiz other than 1
    tiles: int
    transform: bool | None  # COD's multiple-component transform (None: no COD found)


def codestream(data: Buffer) -> bytes | None:
    """The codestream of ``data``: itself, or the ``jp2c`` box of a JP2 file (``None``
    when a JP2 file has no readable ``jp2c`` box)."""
    buf = data if isinstance(data, bytes) else memoryview(data).cast("B").tobytes()
    if not buf.startswith(_JP2_SIGNATURE):
        return buf
    i = 0
    for _ in range(_MAX_MARKERS):
        if i + 8 > len(buf):
            return None
        size, kind = struct.unpack_from(">I4s", buf, i)
        header = 8
        if size == 1 and i + 16 <= len(buf):  # a 64-bit XLBox length
            size, header = struct.unpack_from(">Q", buf, i + 8)[0], 16
        if size == 0:  # the last box runs to the end of the data
            size = len(buf) - i
        if size < header:
            return None
        if kind == b"jp2c":
            return buf[i + header : i + size]
        i += size
    return None


def j2k_header(data: Buffer) -> J2kHeader | None:
    """The main-header declarations of a JPEG 2000 block, or ``None`` when the stream
    does not start with SOC and a valid SIZ marker segment."""
    buf = codestream(data)
    if buf is None or len(buf) < 4:
        return None
    marker, siz = struct.unpack_from(">HH", buf, 0)
    if marker != _SOC or siz != _SIZ or len(buf) < 6:
        return None
    (length,) = struct.unpack_from(">H", buf, 4)
    if length < 41 or len(buf) < 4 + length:
        return None
    fields = struct.unpack_from(">H8IH", buf, 6)
    _rsiz, xsiz, ysiz, xo, yo, xt, yt, xto, yto, components = fields
    if components < 1 or length != 38 + 3 * components or xsiz <= xo or ysiz <= yo:
        return None
    if xt == 0 or yt == 0 or xto > xo or yto > yo:
        return None
    sizes = buf[42 : 42 + 3 * components]
    depths = sizes[0::3]
    subsampled = any(v != 1 for v in sizes[1::3]) or any(v != 1 for v in sizes[2::3])
    tiles = -(-(xsiz - xto) // xt) * -(-(ysiz - yto) // yt)
    return J2kHeader(
        height=ysiz - yo,
        width=xsiz - xo,
        components=components,
        precision=max((d & 0x7F) + 1 for d in depths),
        signed=any(d & 0x80 for d in depths),
        subsampled=subsampled,
        tiles=tiles,
        transform=_cod_transform(buf, 4 + length),
    )


def _cod_transform(buf: bytes, i: int) -> bool | None:
    """The multiple-component transform flag of the main header's COD, if found."""
    for _ in range(_MAX_MARKERS):
        if i + 4 > len(buf):
            return None
        marker, length = struct.unpack_from(">HH", buf, i)
        if marker == _SOT or marker >> 8 != 0xFF or length < 2:
            return None
        if marker == _COD:
            return bool(buf[i + 8]) if length >= 10 and i + 9 <= len(buf) else None
        i += 2 + length
    return None
