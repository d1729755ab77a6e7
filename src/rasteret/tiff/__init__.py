"""Pure-Python TIFF / GeoTIFF header parsing and tile decoding (no I/O of its own).

* :func:`read_header` / :func:`parse_header` turn header bytes into a :class:`TiffHeader`
  (every IFD, block arrays, GeoKeys → CRS, nodata, scale/offset).
* :func:`decode_block` decodes one tile or strip described by a :class:`BlockDecoding`.
* :func:`read_image` assembles a window of any level from blocks (reference reader).
"""

from rasteret.tiff.decode import BlockDecoding, decode_block
from rasteret.tiff.header import parse_header, read_header
from rasteret.tiff.image import read_image
from rasteret.tiff.model import GeoReference, ImageLayout, TiffHeader

__all__ = [
    "BlockDecoding",
    "GeoReference",
    "ImageLayout",
    "TiffHeader",
    "decode_block",
    "parse_header",
    "read_header",
    "read_image",
]
