"""Block decoders: a :class:`~rasteret.tiff.decode.BlockDecoding` compiled into a
per-block decode function.

Everything that does not change from block to block (codec, sizes, byte swap,
predictor, unpacker, colour conversion) is resolved once here, so decoding a block
is a handful of C calls: allocate the output, decompress straight into it, swap and
un-predict in place. A block decoder is ``decoder(data, rows, tables_spliced) -> ndarray`` where
``rows`` is the number of rows the payload must supply (0: any whole number of rows).
A prefix decoder (:func:`build_prefix_decoder`, only for byte codecs that can stop
early, see :data:`~rasteret.tiff.decompress.PREFIX_CODECS`) is ``decoder(data, rows,
stop)`` and decodes only the block's first ``stop`` rows (the rows a window needs from
the top): it returns ``(stop, width, samples)``, for about ``stop / height`` of the work.
Decoders raise :class:`PayloadError` (or the codec's exception) on a bad payload and
:class:`Unsupported` at build time for a configuration they cannot decode.

Memory is bounded by the declared block, not by what a payload says: byte codecs decode
into the block (:mod:`.decompress`); JPEG, WebP, LERC, JPEG-XL and JPEG 2000 streams must
declare an image that fits the block (:mod:`.streams`, :mod:`.jpeg2k`, read before
decoding) and are decoded into an output array of exactly that size, so a stream the
codec library reads differently (more bands, channels or rows) fails before the library
allocates for it; an animated WebP is refused outright.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

import imagecodecs
import numpy as np

from rasteret.errors import CorruptTiffError, UnsupportedTiffError
from rasteret.tiff.decompress import (
    BYTE_CODECS,
    PREFIX_CODECS,
    Decompressor,
    lerc_inner,
    surplus_limit,
)
from rasteret.tiff.jpeg2k import JPEG2000_COMPRESSIONS, MAX_CODESTREAM_TILES, J2kHeader, j2k_header
from rasteret.tiff.photometric import (
    YCBCR_SUBSAMPLINGS,
    cmyk_to_rgba,
    ycbcr_stored_geometry,
    ycbcr_to_rgb,
)
from rasteret.tiff.predictor import FLOATING_BITS, HORIZONTAL_BITS, undo_floating, undo_horizontal
from rasteret.tiff.streams import (
    JpegFrame,
    jpeg_frame,
    jpegxl_size,
    lerc_blob,
    webp_animated,
    webp_canvas,
)
from rasteret.tiff.unpack import is_direct, make_unpacker, sample_dtype, stored_row_bytes

if TYPE_CHECKING:
    from rasteret.tiff.decode import BlockDecoding

Buffer = bytes | bytearray | memoryview
BlockDecoder = Callable[[Buffer, int, bool], np.ndarray]
PrefixDecoder = Callable[[Buffer, int, int], np.ndarray]

NATIVE_ORDER = "<" if sys.byteorder == "little" else ">"

#: Largest decoded (or stored) block accepted, in bytes. Checked when a decoding is
#: compiled, before anything is allocated: a hostile header or index cannot make the
#: decoder allocate more. 1 GiB holds a 16384 x 16384 float32 strip.
MAX_DECODED_BLOCK_BYTES = 1 << 30
#: Most samples per pixel (as the header parser).
MAX_SAMPLES = 65535
#: Most bytes a codec can expand one payload byte into, plus a constant: a payload that
#: cannot hold the rows a block needs is refused before the output is allocated.
#: deflate: 1032:1 (RFC 1951 maximum); LZW: 4096-byte strings per >= 9-bit code;
#: PackBits: 128 bytes per 2; none: 1:1. ZSTD and LZMA have no useful ratio (their
#: decoders stop at the block instead, see :mod:`.decompress`).
MAX_EXPANSION: dict[int, tuple[int, int]] = {
    1: (1, 0),
    5: (3641, 4096),
    8: (1032, 4096),
    32946: (1032, 4096),
    32773: (64, 128),
}

#: Names of codecs rasteret recognises but does not decode.
UNSUPPORTED_CODECS = {
    6: "old-style JPEG (OJPEG, compression 6)",
    32809: "ThunderScan compression (32809)",
    34676: "SGILog compression (34676)",
    34677: "SGILog24 compression (34677)",
    32908: "PixarFilm compression (32908)",
    32909: "PixarLog compression (32909)",
    32947: "DCS compression (32947)",
    34661: "JBIG compression (34661)",
}


class PayloadError(ValueError):
    """A block's payload does not decode to the block's size."""


def unsupported(feature: str, detail: str = "") -> UnsupportedTiffError:
    """An UnsupportedTiffError without a source (decode_block adds it)."""
    error = UnsupportedTiffError("", feature, detail)
    error.detail = detail
    return error


def invalid(message: str) -> CorruptTiffError:
    """A CorruptTiffError without a source (decode_block adds it)."""
    return CorruptTiffError("", message)


def check_bounds(d: BlockDecoding) -> np.dtype:
    """Validate the fields of ``d`` a hostile index could set; return its numpy dtype.

    Raises CorruptTiffError for sizes no valid file has (non-positive sizes, more than
    :data:`MAX_SAMPLES` samples, a block beyond :data:`MAX_DECODED_BLOCK_BYTES`) and
    UnsupportedTiffError for a dtype string numpy does not know.
    """
    try:
        declared = np.dtype(d.dtype)
    except (TypeError, ValueError):
        raise unsupported("sample type", f"dtype {d.dtype!r} is not a numpy dtype") from None
    for name in ("block_width", "block_height", "samples", "bits_per_sample"):
        value = getattr(d, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise invalid(f"{name} {value!r} (must be a positive integer)")
    if d.samples > MAX_SAMPLES or d.bits_per_sample > 128:
        raise invalid(f"{d.samples} samples of {d.bits_per_sample} bits per pixel")
    if d.byte_order not in ("<", ">"):
        raise invalid(f"byte order {d.byte_order!r} (must be '<' or '>')")
    pixels = d.block_width * d.block_height
    decoded = pixels * d.samples * max(declared.itemsize, 1)
    stored = stored_row_bytes(d.block_width, d.samples, d.bits_per_sample) * d.block_height
    if max(decoded, stored) > MAX_DECODED_BLOCK_BYTES:
        raise invalid(
            f"a {d.block_height} x {d.block_width} x {d.samples} {d.dtype} block "
            f"({max(decoded, stored)} bytes) exceeds the {MAX_DECODED_BLOCK_BYTES}-byte "
            "block limit (rasteret.tiff.block_decoders.MAX_DECODED_BLOCK_BYTES)"
        )
    return declared


def build_decoder(d: BlockDecoding) -> BlockDecoder:
    """Compile the decode function of ``d`` (raises UnsupportedTiffError, CorruptTiffError)."""
    check_bounds(d)
    dtype = sample_dtype(d.bits_per_sample, d.sample_format)
    if dtype is None:
        raise unsupported("sample type", f"{d.bits_per_sample}-bit SampleFormat {d.sample_format}")
    if np.dtype(d.dtype) != dtype:
        raise unsupported("sample type", f"dtype {d.dtype} for {d.bits_per_sample}-bit samples")
    if d.photometric in (8, 9, 10):
        raise unsupported("CIELab photometric interpretation", f"Photometric {d.photometric}")
    compression = d.compression
    if compression in BYTE_CODECS:
        return _byte_decoder(d, dtype)
    if compression in (2, 3, 4):
        return _ccitt_decoder(d)
    if compression == 7:
        return _jpeg_decoder(d, dtype)
    if compression == 50001:
        return _webp_decoder(d, dtype)
    if compression == 34887:
        return _lerc_decoder(d, dtype)
    if compression in JPEG2000_COMPRESSIONS:
        return _jpeg2k_decoder(d, dtype)
    if compression in (50002, 52546):
        if not imagecodecs.JPEGXL.available:
            raise unsupported("JPEG-XL compression", "imagecodecs built without libjxl")
        return _jpegxl_decoder(d, dtype)
    raise unsupported(UNSUPPORTED_CODECS.get(compression, f"compression {compression}"))


def _check_size(n: int, full: int, row_bytes: int, rows_needed: int, name: str) -> int:
    """Stored rows present in ``n`` decoded bytes; raises when too few."""
    if n >= full:
        return full // row_bytes
    have = n // row_bytes
    if have < max(rows_needed, 1) or (rows_needed == 0 and n % row_bytes):
        raise PayloadError(f"{name} payload decodes to {n} bytes, expected {full}")
    return have


def _payload_check(compression: int, row_bytes: int, name: str) -> Callable[[Buffer, int], None]:
    """A check that a payload can expand to the rows required (before allocating)."""
    ratio, slack = MAX_EXPANSION.get(compression, (0, 0))

    def check(data: Buffer, rows: int) -> None:
        if ratio:
            size = memoryview(data).nbytes
            needed = max(rows, 1) * row_bytes
            if size * ratio + slack < needed:
                raise PayloadError(
                    f"{name} payload of {size} bytes cannot hold the {needed} bytes of "
                    f"{max(rows, 1)} row(s) of the block"
                )

    return check


def _byte_decoder(d: BlockDecoding, dtype: np.dtype) -> BlockDecoder:
    name, decompress = BYTE_CODECS[d.compression]
    _check_predictor(d, dtype)
    if d.photometric == 6:  # YCbCr stored without JPEG
        return _ycbcr_decoder(d, name, decompress)
    height = d.block_height
    decode_rows = _direct_rows(d, dtype, decompress)
    if decode_rows is not None:

        def decode_direct(data: Buffer, rows: int, _spliced: bool) -> np.ndarray:
            return decode_rows(data, rows, height)

        return decode_direct

    row_bytes = stored_row_bytes(d.block_width, d.samples, d.bits_per_sample)
    full = row_bytes * height
    shape = (height, d.block_width, d.samples)
    bits, width, samples = d.bits_per_sample, d.block_width, d.samples
    unpack = make_unpacker(bits, d.sample_format, d.byte_order, width, samples)
    check_payload = _payload_check(d.compression, row_bytes, name)

    def decode_unpack(data: Buffer, rows: int, _spliced: bool) -> np.ndarray:
        check_payload(data, rows)
        stored = np.empty(full, np.uint8)
        n = decompress(data, memoryview(stored))
        have = _check_size(n, full, row_bytes, rows, name)
        values = unpack(stored[: have * row_bytes], have)
        if have == height:
            return np.ascontiguousarray(values)
        out = np.zeros(shape, dtype)
        out[:have] = values
        return out

    return decode_unpack


def build_prefix_decoder(d: BlockDecoding) -> PrefixDecoder | None:
    """The prefix decoder of ``d`` (see the module docs), or ``None`` when its blocks can
    only be decoded whole (other codecs, unpacked or YCbCr samples). Call after
    :func:`build_decoder` has accepted ``d``."""
    decompress = PREFIX_CODECS.get(d.compression)
    if decompress is None or d.photometric == 6:
        return None
    dtype = sample_dtype(d.bits_per_sample, d.sample_format)
    return None if dtype is None else _direct_rows(d, dtype, decompress)


def _check_predictor(d: BlockDecoding, dtype: np.dtype) -> None:
    bits, predictor = d.bits_per_sample, d.predictor
    if predictor not in (1, 2, 3):
        raise unsupported(f"predictor {predictor}")
    direct = is_direct(bits, d.sample_format)
    if predictor == 2 and not (direct and bits in HORIZONTAL_BITS and dtype.kind != "c"):
        raise unsupported("predictor 2", f"with {bits}-bit SampleFormat {d.sample_format} samples")
    if predictor == 3 and not (d.sample_format == 3 and bits in FLOATING_BITS):
        raise unsupported("predictor 3", f"with {bits}-bit SampleFormat {d.sample_format} samples")


def _direct_rows(
    d: BlockDecoding, dtype: np.dtype, decompress: Decompressor
) -> PrefixDecoder | None:
    """``decode(data, rows, stop)``: the first ``stop`` rows of a block whose samples are
    whole native values (``None`` for samples that need unpacking)."""
    bits, predictor = d.bits_per_sample, d.predictor
    if not is_direct(bits, d.sample_format):
        return None
    name = BYTE_CODECS[d.compression][0]
    width, samples = d.block_width, d.samples
    convert: Callable[[np.ndarray], np.ndarray] | None = None
    if d.photometric == 5 and bits == 8:
        if not (samples == 4 and d.planar_configuration == 1):
            layout = f"{samples} samples, planar {d.planar_configuration}"
            raise unsupported("8-bit CMYK layout", layout)
        convert = cmyk_to_rgba
    row_bytes = stored_row_bytes(width, samples, bits)
    # predictor 3 output is native whatever the file's byte order (libtiff skips the swab)
    swap = dtype.itemsize > 1 and predictor != 3 and d.byte_order != NATIVE_ORDER
    check_payload = _payload_check(d.compression, row_bytes, name)

    def decode_rows(data: Buffer, rows: int, stop: int) -> np.ndarray:
        check_payload(data, min(rows, stop))
        shape = (stop, width, samples)
        out = np.empty(shape, dtype)
        flat = out.reshape(-1).view(np.uint8)
        n = decompress(data, memoryview(flat))
        have = _check_size(n, stop * row_bytes, row_bytes, min(rows, stop), name)
        if have < stop:
            # a short block (a strip, a short edge tile): the rows it lacks read as 0, a
            # partial row past the last whole one included; only decoded rows are processed
            flat[have * row_bytes :] = 0
        part = out[:have]
        if swap:
            part.byteswap(inplace=True)
        if predictor == 2:
            undo_horizontal(part)
        elif predictor == 3:
            part = undo_floating(part)
        if convert is not None:
            part = convert(part)
        if have == stop:
            return part
        out[:have] = part
        return out

    return decode_rows


def _ycbcr_decoder(d: BlockDecoding, name: str, decompress: Decompressor) -> BlockDecoder:
    sub = d.ycbcr_subsampling or (2, 2)  # the TIFF default
    if d.bits_per_sample != 8 or d.samples != 3 or d.planar_configuration != 1:
        raise unsupported("YCbCr without JPEG", f"{d.bits_per_sample}-bit, {d.samples} samples")
    if tuple(sub) not in YCBCR_SUBSAMPLINGS:
        raise unsupported("YCbCr subsampling", f"{sub[0]}x{sub[1]}")
    if d.predictor != 1:
        raise unsupported(f"predictor {d.predictor}", "with subsampled YCbCr")
    sub_h, sub_v = sub
    height, width = d.block_height, d.block_width
    row_bytes, cell_rows = ycbcr_stored_geometry(width, height, sub_h, sub_v)
    full = row_bytes * cell_rows
    check_payload = _payload_check(d.compression, row_bytes, name)

    def decode_ycbcr(data: Buffer, rows: int, _spliced: bool) -> np.ndarray:
        check_payload(data, -(-rows // sub_v))
        stored = np.empty(full, np.uint8)
        n = decompress(data, memoryview(stored))
        have = _check_size(n, full, row_bytes, -(-rows // sub_v), name)
        return ycbcr_to_rgb(stored[: have * row_bytes], width, height, sub_h, sub_v)

    return decode_ycbcr


def _fit(image: np.ndarray, d: BlockDecoding, dtype: np.dtype, rows: int, name: str) -> np.ndarray:
    """Check a codec's decoded image against the block and pad a short last strip."""
    if image.ndim == 2:
        image = image[..., None]
    height, width, samples = d.block_height, d.block_width, d.samples
    h, w, s = image.shape
    if w != width or s != samples or h > height or h < max(rows, 1):
        raise PayloadError(f"{name} image is {h}x{w}x{s}, block is {height}x{width}x{samples}")
    if image.dtype != dtype:
        raise PayloadError(f"{name} image has dtype {image.dtype}, expected {dtype}")
    if h == height:
        return np.ascontiguousarray(image)
    out = np.zeros((height, width, samples), dtype)
    out[:h] = image
    return out


def _check_declared(size: tuple[int, ...] | None, d: BlockDecoding, name: str) -> None:
    """Refuse a stream whose declared image does not fit the block (before decoding it)."""
    if size is not None and (size[1] != d.block_width or size[0] > d.block_height):
        raise PayloadError(
            f"{name} stream declares a {size[0]} x {size[1]} image, "
            f"block is {d.block_height} x {d.block_width}"
        )


def _output(
    size: tuple[int, ...] | None, d: BlockDecoding, dtype: np.dtype, channels: int, name: str
) -> np.ndarray:
    """The array a codec library must decode into: the declared rows (the block's when the
    stream's header was not found) x the block's width x ``channels``."""
    _check_declared(size, d, name)
    height = size[0] if size is not None else d.block_height
    return np.empty((height, d.block_width, channels)[: 3 if channels > 1 else 2], dtype)


def _jpegxl_decoder(d: BlockDecoding, dtype: np.dtype) -> BlockDecoder:
    def decode_jpegxl(data: Buffer, rows: int, _spliced: bool) -> np.ndarray:
        out = _output(jpegxl_size(data), d, dtype, d.samples, "JPEG-XL")
        # the first frame (index 0) into ``out``: another size or channel count fails first
        return _fit(imagecodecs.jpegxl_decode(data, 0, out=out), d, dtype, rows, "JPEG-XL")

    return decode_jpegxl


def _jpeg_decoder(d: BlockDecoding, dtype: np.dtype) -> BlockDecoder:
    if d.bits_per_sample not in (8, 12):
        raise unsupported("JPEG sample width", f"{d.bits_per_sample}-bit")
    if d.photometric == 5:
        raise unsupported("JPEG-compressed CMYK")
    # libtiff JPEGCOLORMODE_RGB: YCbCr (chunky) is converted to RGB by libjpeg; other
    # photometrics are passed through (three-component RGB must not be "converted").
    colorspace: str | None = None
    out_colorspace: str | None = None
    if d.photometric == 6 and d.planar_configuration == 1:
        colorspace, out_colorspace = "YCbCr", "RGB"
    elif d.samples == 3:
        colorspace, out_colorspace = "RGB", "RGB"
    tables = d.jpeg_tables

    def decode_jpeg(data: Buffer, rows: int, spliced: bool) -> np.ndarray:
        out = _jpeg_output(jpeg_frame(data), d, dtype)
        image = imagecodecs.jpeg8_decode(
            data,
            tables=None if spliced else tables,
            colorspace=colorspace,
            outcolorspace=out_colorspace,
            out=out,
        )
        return _fit(image, d, dtype, rows, "JPEG")

    return decode_jpeg


def _jpeg_output(frame: JpegFrame | None, d: BlockDecoding, dtype: np.dtype) -> np.ndarray:
    """The output array of a JPEG stream, checked against the block before libjpeg runs.

    libjpeg sizes its own buffers (for a progressive stream, the whole image) from the
    frame header before the output array is checked, so a stream whose frame header
    :func:`~rasteret.tiff.streams.jpeg_frame` cannot read is refused; as in libtiff, the
    components and the precision must match the block.
    """
    if frame is None:
        raise PayloadError("JPEG stream has no frame header (SOF) before its scan")
    if frame.components != d.samples:
        raise PayloadError(
            f"JPEG stream declares {frame.components} components, block has {d.samples} samples"
        )
    if (frame.precision > 8) != (dtype.itemsize > 1):
        raise PayloadError(
            f"JPEG stream declares {frame.precision}-bit samples, block has {dtype} samples"
        )
    return _output((frame.height, frame.width), d, dtype, d.samples, "JPEG")


def _webp_decoder(d: BlockDecoding, dtype: np.dtype) -> BlockDecoder:
    alpha = d.samples == 4
    channels = 4 if alpha else 3

    def decode_webp(data: Buffer, rows: int, _spliced: bool) -> np.ndarray:
        if webp_animated(data):  # imagecodecs would decode every frame before checking ``out``
            raise PayloadError("WebP stream is an animation, a block holds one image")
        out = _output(webp_canvas(data), d, np.dtype("uint8"), channels, "WebP")
        image = imagecodecs.webp_decode(data, hasalpha=alpha, out=out)
        return _fit(image, d, dtype, rows, "WebP")

    return decode_webp


def _jpeg2k_decoder(d: BlockDecoding, dtype: np.dtype) -> BlockDecoder:
    """JPEG 2000 (34712, 33003, 33005; see :mod:`rasteret.tiff.jpeg2k`)."""
    if dtype.kind not in "iu" or dtype.itemsize > 4:
        raise unsupported("JPEG 2000 sample type", f"{dtype} (integers of up to 32 bits)")
    if d.predictor != 1:
        raise unsupported(f"predictor {d.predictor}", "with JPEG 2000")
    ycbcr = d.compression == 33003 and d.samples == 3 and dtype == np.uint8

    def decode_jpeg2k(data: Buffer, rows: int, _spliced: bool) -> np.ndarray:
        header = j2k_header(data)
        out = _jpeg2k_output(header, d, dtype, rows)
        image = imagecodecs.jpeg2k_decode(data, out=out)
        if ycbcr and not header.transform:  # Aperio YCbCr: convert as OpenSlide does
            image = ycbcr_to_rgb(image.reshape(-1), d.block_width, header.height, 1, 1)
        return _fit(image.astype(dtype, copy=False), d, dtype, rows, "JPEG 2000")

    return decode_jpeg2k


def _jpeg2k_output(
    header: J2kHeader | None, d: BlockDecoding, dtype: np.dtype, rows: int
) -> np.ndarray:
    """The array OpenJPEG decodes into, after the declared image is checked against the
    block: its declared rows x the block's width x samples, in the narrowest dtype of
    the declared precision (what OpenJPEG returns)."""
    if header is None:
        raise PayloadError("JPEG 2000 stream has no SOC + SIZ main header")
    _check_declared((header.height, header.width), d, "JPEG 2000")
    if header.height < max(rows, 1):
        raise PayloadError(f"JPEG 2000 stream declares {header.height} rows, {rows} needed")
    if header.subsampled:  # e.g. Aperio 33003 with 4:2:2 chroma: not decoded (yet)
        raise unsupported("JPEG 2000 with subsampled components")
    if header.components != d.samples:
        raise PayloadError(
            f"JPEG 2000 stream declares {header.components} components, "
            f"block has {d.samples} samples"
        )
    if header.precision > dtype.itemsize * 8 or header.signed != (dtype.kind == "i"):
        sign = "signed" if header.signed else "unsigned"
        raise PayloadError(
            f"JPEG 2000 stream declares {sign} {header.precision}-bit samples, "
            f"block has {dtype} samples"
        )
    if header.tiles > MAX_CODESTREAM_TILES:
        raise PayloadError(
            f"JPEG 2000 stream declares {header.tiles} codestream tiles "
            f"(at most {MAX_CODESTREAM_TILES} per block)"
        )
    itemsize = 1 if header.precision <= 8 else 2 if header.precision <= 16 else 4
    native = np.dtype(f"{dtype.kind}{itemsize}")
    return _output((header.height, header.width), d, native, d.samples, "JPEG 2000")


def _lerc_decoder(d: BlockDecoding, dtype: np.dtype) -> BlockDecoder:
    try:
        inner = lerc_inner(d.lerc_parameters)
    except ValueError as exc:
        raise unsupported("LERC parameters", str(exc)) from None
    name = inner[0] if inner else "LERC"
    floating = dtype.kind == "f"

    # a LERC blob is at most the raw block plus its mask and headers
    limit = surplus_limit(d.block_width * d.block_height * d.samples * max(dtype.itemsize, 1))

    def decode_lerc(data: Buffer, rows: int, _spliced: bool) -> np.ndarray:
        blob = inner[1](data, limit) if inner else data
        out = _lerc_output(blob, d, limit, name)
        # into ``out``: more bands than one fail before they are decoded
        image, mask = imagecodecs.lerc_decode(blob, masks=True, out=out)
        if image.dtype != dtype and image.dtype.kind == dtype.kind:
            image = image.astype(dtype)
        out = _fit(image, d, dtype, rows, name)
        if floating and mask is not None:
            valid = np.asarray(mask, bool)
            if not valid.all():  # libtiff's LERC decoder sets invalid float pixels to NaN
                if valid.ndim == 2:
                    valid = valid[..., None]
                np.copyto(out[: valid.shape[0]], np.nan, where=~valid)
        return out

    return decode_lerc


def _lerc_output(blob: Buffer, d: BlockDecoding, limit: int, name: str) -> np.ndarray:
    """The output array of a LERC blob, checked against the block before decoding.

    Only a LERC blob is handed to the library (it would inflate a zstd or zlib stream
    without a bound); its values may be wider than the block's up to ``limit`` bytes.
    """
    header = lerc_blob(blob)
    if header is None:
        raise PayloadError(f"{name} payload is not a LERC blob")
    if header.cols != d.block_width or not 0 < header.rows <= d.block_height:
        raise PayloadError(
            f"LERC blob declares {header.rows} x {header.cols}, block is "
            f"{d.block_height} x {d.block_width}"
        )
    if not 0 < header.depth <= d.samples:
        raise PayloadError(f"LERC blob declares {header.depth} samples, block has {d.samples}")
    shape = (header.rows, header.cols, header.depth)[: 3 if header.depth > 1 else 2]
    if math.prod(shape) * np.dtype(header.dtype).itemsize > limit:
        raise PayloadError(f"LERC blob of {header.dtype} values exceeds the block ({limit} bytes)")
    return np.empty(shape, header.dtype)


def _ccitt_decoder(d: BlockDecoding) -> BlockDecoder:
    if d.bits_per_sample != 1 or d.samples != 1:
        raise unsupported("CCITT compression", f"{d.bits_per_sample}-bit, {d.samples} samples")
    decoders = {
        2: imagecodecs.ccittrle_decode,
        3: imagecodecs.ccittfax3_decode,
        4: imagecodecs.ccittfax4_decode,
    }
    decoder = decoders[d.compression]
    name = {2: "CCITT RLE", 3: "CCITT Group 3", 4: "CCITT Group 4"}[d.compression]
    dtype = np.dtype("uint8")
    height, width = d.block_height, d.block_width

    def decode_ccitt(data: Buffer, rows: int, _spliced: bool) -> np.ndarray:
        image = decoder(data, rows or height, width)
        return _fit(np.asarray(image, dtype), d, dtype, rows, name)

    return decode_ccitt
