"""Byte-stream decompressors of the TIFF codecs that produce raw sample bytes.

Every decompressor has the signature ``fn(data, out) -> int``: ``out`` is a writable
byte memoryview sized for the full block (usually the output array's own memory, so
the fast path copies nothing); the decoded bytes are written to its start and their
count is returned. A stream holding more than ``out`` can take is cut to ``len(out)``
(libtiff ignores surplus decoded bytes too).

Memory: whatever a stream declares or expands to, a decompressor writes at most
:func:`surplus_limit` bytes (twice the block): LZW, LZMA, deflate and the first ZSTD /
PackBits attempt decode straight into ``out`` and stop when it is full; the ZSTD /
PackBits retry and the LERC inner codecs decode into a bounded buffer. (liblzma reserves
the dictionary an LZMA stream declares as address space, but writes only what it
decodes.)

**Deflate.** A whole stream inflates through ISA-L where imagecodecs has it (faster
than libdeflate on these streams) and is then checked against its Adler-32 trailer,
which ISA-L does not check; a stream ISA-L cannot vouch for (overflow, corrupt, a
trailer that does not match, bytes after the stream) goes to libdeflate, then zlib, as
without ISA-L — so a corrupt stream still raises.

**Prefixes.** :data:`PREFIX_CODECS` holds, per codec that can stop early, a
decompressor that decodes only the first ``len(out)`` bytes of a stream — the rows a
window needs from the top of a block — for about that fraction of a full decode:
deflate through ISA-L (``isal_decode``: it fills ``out`` before it reports the
overflow; without ISA-L, zlib's ``max_length``), LZW and uncompressed blocks as
above. A prefix is not checksummed (the Adler-32 of a zlib stream covers the whole
stream); a stream that ends early or is corrupt is left to zlib's verdict, as for a
full decode.

Codec failures propagate as the codec's own exception; :mod:`rasteret.tiff.decode`
wraps them into :class:`~rasteret.errors.CorruptTiffError`.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

import imagecodecs

Buffer = bytes | bytearray | memoryview
Decompressor = Callable[[Buffer, memoryview], int]


_ISAL = bool(imagecodecs.ISAL.available)


def _store(decoded: Buffer, out: memoryview) -> int:
    n = min(len(decoded), len(out))
    out[:n] = memoryview(decoded)[:n]
    return n


def _copy_raw(data: Buffer, out: memoryview) -> int:
    return _store(data, out)


def _zlib_prefix(data: Buffer, out: memoryview) -> int:
    """Inflate as far as the stream goes, at most ``len(out)`` bytes (zlib)."""
    return _store(zlib.decompressobj().decompress(data, len(out)), out)


def _isal_whole(data: Buffer, out: memoryview) -> int | None:
    """Inflate a whole zlib stream through ISA-L (faster than libdeflate here) and check
    its Adler-32 trailer (ISA-L does not); ``None`` when ISA-L cannot vouch for the
    result — overflow, corrupt, a trailer that does not match (or bytes after the
    stream) — and the checked decoders must decide."""
    try:
        n = len(imagecodecs.isal_decode(data, out=out))
    except imagecodecs.IsalError:
        return None
    trailer = int.from_bytes(memoryview(data)[-4:], "big") if len(data) >= 6 else None
    if trailer is None or imagecodecs.deflate_adler32(out[:n]) != trailer:
        return None
    return n


def _deflate(data: Buffer, out: memoryview) -> int:
    if _ISAL:
        n = _isal_whole(data, out)
        if n is not None:
            return n
    try:
        return len(imagecodecs.deflate_decode(data, out=out))
    except imagecodecs.DeflateError:
        # Larger than the block, or a stream without a clean end (libtiff accepts a
        # truncated stream if it yields enough bytes): inflate as far as it goes.
        return _zlib_prefix(data, out)


def _isal_prefix(data: Buffer, out: memoryview) -> int:
    try:
        return len(imagecodecs.isal_decode(data, out=out))  # the whole stream fitted
    except imagecodecs.IsalError as exc:
        if "OUT_OVERFLOW" in str(exc):  # stopped with ``out`` full: the prefix is there
            return len(out)
    return _zlib_prefix(data, out)  # no clean end, or corrupt: zlib decides


_deflate_prefix: Decompressor = _isal_prefix if _ISAL else _zlib_prefix


#: A stream may decode to more than its block (the surplus is ignored, as libtiff does),
#: but never to more than this many times the block: a bomb stops here, not at the RAM.
SURPLUS_FACTOR = 2


def surplus_limit(size: int) -> int:
    """Most bytes a decoder may produce (or hold) for a ``size``-byte block."""
    return max(SURPLUS_FACTOR * size, size + 65536)


def _zstd(data: Buffer, out: memoryview) -> int:
    try:
        return len(imagecodecs.zstd_decode(data, out=out))
    except imagecodecs.ZstdError as exc:
        if "too small" not in str(exc):
            raise
        limit = surplus_limit(len(out))
        try:  # a bounded second try: the frame may declare no size, or a wrong one
            return _store(imagecodecs.zstd_decode(data, out=limit), out)
        except imagecodecs.ZstdError:
            raise ValueError(
                f"zstd stream decodes to more than {limit} bytes for a {len(out)}-byte block"
            ) from None


def _packbits(data: Buffer, out: memoryview) -> int:
    try:
        return len(imagecodecs.packbits_decode(data, out=out))
    except imagecodecs.PackbitsError as exc:
        if "TOO_SMALL" not in str(exc):
            raise
        limit = surplus_limit(len(out))
        try:
            return _store(imagecodecs.packbits_decode(data, out=limit), out)
        except imagecodecs.PackbitsError:
            raise ValueError(
                f"PackBits stream decodes to more than {limit} bytes for a {len(out)}-byte block"
            ) from None


def _lzw(data: Buffer, out: memoryview) -> int:
    return len(imagecodecs.lzw_decode(data, out=out))  # stops at len(out) by itself


def _lzma(data: Buffer, out: memoryview) -> int:
    # liblzma stops when ``out`` is full; its dictionary is filled no further than that
    return len(imagecodecs.lzma_decode(data, out=out))


#: TIFF Compression tag value -> (name, decompressor) for byte-stream codecs.
BYTE_CODECS: dict[int, tuple[str, Decompressor]] = {
    1: ("none", _copy_raw),
    5: ("LZW", _lzw),
    8: ("deflate", _deflate),
    32946: ("deflate", _deflate),
    32773: ("PackBits", _packbits),
    34925: ("LZMA", _lzma),
    50000: ("ZSTD", _zstd),
}


#: TIFF Compression tag value -> decompressor of a stream's first ``len(out)`` bytes, for
#: the codecs that decode a prefix in proportion to its length (the others decode whole).
PREFIX_CODECS: dict[int, Decompressor] = {
    1: _copy_raw,
    5: _lzw,
    8: _deflate_prefix,
    32946: _deflate_prefix,
}


def _inflate_bounded(data: Buffer, limit: int) -> bytes:
    inflater = zlib.decompressobj()
    out = inflater.decompress(data, limit)
    if inflater.unconsumed_tail:
        raise ValueError(f"deflate stream inflates beyond {limit} bytes")
    return out


def _zstd_bounded(data: Buffer, limit: int) -> Buffer:
    try:
        return imagecodecs.zstd_decode(data, out=limit)
    except imagecodecs.ZstdError as exc:
        raise ValueError(f"zstd stream: {exc} (limit {limit} bytes)") from None


def lerc_inner(
    parameters: tuple[int, ...] | None,
) -> tuple[str, Callable[[Buffer, int], Buffer]] | None:
    """The extra compression wrapped around a LERC blob (LercParameters tag, 50674).

    ``parameters = (lerc_version, additional_compression)`` with 0 none, 1 deflate,
    2 zstd. The decompressor takes ``(data, limit)`` and raises ``ValueError`` when the
    blob would exceed ``limit`` bytes. Returns ``None`` when there is none; raises
    ``ValueError`` on unknown values.
    """
    if not parameters or len(parameters) < 2 or parameters[1] == 0:
        return None
    if parameters[1] == 1:
        return "LERC_DEFLATE", _inflate_bounded
    if parameters[1] == 2:
        return "LERC_ZSTD", _zstd_bounded
    raise ValueError(f"LERC additional compression {parameters[1]}")
