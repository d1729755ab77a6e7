"""One IFD → :class:`ImageLayout`: geometry, sample type, encoding and block arrays."""

from __future__ import annotations

import numpy as np

from rasteret.errors import CorruptTiffError, UnsupportedTiffError
from rasteret.tiff.ifd import Ifd, ValueReader
from rasteret.tiff.model import ImageKind, ImageLayout
from rasteret.tiff.tags import Tag, tag_name

#: Most samples per pixel accepted (GDAL's own limit is 65535 too).
MAX_SAMPLES = 65535
#: Largest accepted image dimension (2^31 - 1, as libtiff on 32-bit fields).
MAX_DIMENSION = 2**31 - 1

SAMPLE_FORMAT_NAMES = {
    1: "uint",
    2: "int",
    3: "float",
    4: "void",
    5: "complex int",
    6: "complex float",
}


def sample_dtype(source: str, sample_format: int, bits: int) -> str:
    """numpy dtype name of one decoded sample (GDAL's choice for odd bit depths)."""
    if bits < 1:
        raise CorruptTiffError(source, f"BitsPerSample {bits}")
    if sample_format in (1, 2, 4):
        if sample_format == 2 and bits in (8, 16, 32, 64):
            return f"int{bits}"
        for size in (8, 16, 32):
            if bits <= size:
                return f"uint{size}"
        if bits == 64:
            return "uint64"
    elif sample_format == 3:
        if bits == 16:
            return "float16"
        if bits in (24, 32):
            return "float32"
        if bits == 64:
            return "float64"
    elif sample_format == 5:
        if bits in (16, 32):
            return "complex64"
        if bits == 64:
            return "complex128"
    elif sample_format == 6:
        if bits in (32, 64):
            return "complex64"
        if bits == 128:
            return "complex128"
    else:
        raise UnsupportedTiffError(source, "SampleFormat", f"value {sample_format}")
    name = SAMPLE_FORMAT_NAMES[sample_format]
    raise UnsupportedTiffError(source, "BitsPerSample", f"{bits}-bit {name} samples")


class LayoutBuilder:
    """Reads the tags of one IFD and validates them into an :class:`ImageLayout`."""

    def __init__(self, reader: ValueReader, ifd: Ifd) -> None:
        self.reader = reader
        self.ifd = ifd
        self.source = reader.source

    def _int(self, tag: Tag, default: int | None = None) -> int:
        entry = self.ifd.entries.get(tag)
        if entry is None:
            if default is None:
                raise CorruptTiffError(
                    self.source, f"IFD at {self.ifd.offset} lacks the required {tag_name(tag)} tag"
                )
            return default
        return self.reader.int_value(entry)

    def _ints(self, tag: Tag) -> np.ndarray | None:
        entry = self.ifd.entries.get(tag)
        return None if entry is None else self.reader.ints(entry)

    def _uniform(self, tag: Tag, samples: int, default: int) -> int:
        values = self._ints(tag)
        if values is None or values.size == 0:
            return default
        distinct = set(int(v) for v in values[:samples])
        if len(distinct) > 1:
            raise UnsupportedTiffError(
                self.source, tag_name(tag), f"different values per sample {sorted(distinct)}"
            )
        return distinct.pop()

    def new_subfile_type(self) -> int:
        value = self._int(Tag.NEW_SUBFILE_TYPE, 0)
        if Tag.NEW_SUBFILE_TYPE not in self.ifd and Tag.SUBFILE_TYPE in self.ifd:
            old = self._int(Tag.SUBFILE_TYPE, 1)  # 2 = reduced resolution, 3 = page
            value = 1 if old == 2 else (2 if old == 3 else 0)
        return value

    def build(self, ifd_index: int, kind: ImageKind) -> ImageLayout:
        source = self.source
        width = self._int(Tag.IMAGE_WIDTH)
        height = self._int(Tag.IMAGE_LENGTH)
        if not (0 < width <= MAX_DIMENSION and 0 < height <= MAX_DIMENSION):
            raise CorruptTiffError(source, f"image size {width} x {height}")
        samples = self._int(Tag.SAMPLES_PER_PIXEL, 1)
        if not 0 < samples <= MAX_SAMPLES:
            raise CorruptTiffError(source, f"SamplesPerPixel {samples}")
        bits = self._uniform(Tag.BITS_PER_SAMPLE, samples, 1)
        sample_format = self._uniform(Tag.SAMPLE_FORMAT, samples, 1)
        dtype = sample_dtype(source, sample_format, bits)
        planar = self._int(Tag.PLANAR_CONFIGURATION, 1)
        if planar not in (1, 2):
            raise CorruptTiffError(source, f"PlanarConfiguration {planar}")
        if samples == 1:
            planar = 1
        tiled = Tag.TILE_WIDTH in self.ifd or Tag.TILE_OFFSETS in self.ifd
        if tiled:
            block_width = self._int(Tag.TILE_WIDTH)
            block_height = self._int(Tag.TILE_LENGTH)
            if block_width <= 0 or block_height <= 0:
                raise CorruptTiffError(source, f"tile size {block_width} x {block_height}")
            offsets_tag, counts_tag = Tag.TILE_OFFSETS, Tag.TILE_BYTE_COUNTS
        else:
            block_width = width
            rows = self._int(Tag.ROWS_PER_STRIP, height)
            block_height = height if rows <= 0 or rows > height else rows
            offsets_tag, counts_tag = Tag.STRIP_OFFSETS, Tag.STRIP_BYTE_COUNTS
        planes = samples if planar == 2 else 1
        expected = planes * (-(-width // block_width)) * (-(-height // block_height))
        offsets = self._ints(offsets_tag)
        if offsets is None:
            raise CorruptTiffError(
                source, f"IFD at {self.ifd.offset} lacks {tag_name(offsets_tag)}"
            )
        if offsets.size < expected:
            raise CorruptTiffError(
                source,
                f"{tag_name(offsets_tag)} holds {offsets.size} values but the image needs "
                f"{expected} blocks",
            )
        offsets = offsets[:expected]
        counts = self._ints(counts_tag)
        if counts is None:
            counts = self._estimate_byte_counts(offsets, width, block_height, samples, bits, planes)
        elif counts.size < expected:
            raise CorruptTiffError(
                source,
                f"{tag_name(counts_tag)} holds {counts.size} values but the image needs "
                f"{expected} blocks",
            )
        counts = counts[:expected]
        return ImageLayout(
            ifd_index=ifd_index,
            kind=kind,
            new_subfile_type=self.new_subfile_type(),
            width=width,
            height=height,
            tiled=tiled,
            block_width=block_width,
            block_height=block_height,
            samples_per_pixel=samples,
            bits_per_sample=bits,
            sample_format=sample_format,
            dtype=dtype,
            compression=self._int(Tag.COMPRESSION, 1),
            predictor=self._int(Tag.PREDICTOR, 1),
            planar_configuration=planar,
            photometric=self._int(Tag.PHOTOMETRIC, -1) if Tag.PHOTOMETRIC in self.ifd else None,
            extra_samples=self._tuple(Tag.EXTRA_SAMPLES) or (),
            ycbcr_subsampling=self._ycbcr_subsampling(),
            jpeg_tables=self._bytes(Tag.JPEG_TABLES),
            lerc_parameters=self._tuple(Tag.LERC_PARAMETERS),
            block_offsets=np.ascontiguousarray(offsets, dtype=np.uint64),
            block_byte_counts=np.ascontiguousarray(counts, dtype=np.uint64),
        )

    def _ycbcr_subsampling(self) -> tuple[int, int] | None:
        values = self._ints(Tag.YCBCR_SUBSAMPLING)
        if values is None:
            return None
        if values.size < 2:
            raise CorruptTiffError(self.source, "YCbCrSubSampling needs 2 values")
        return int(values[0]), int(values[1])

    def _tuple(self, tag: Tag) -> tuple[int, ...] | None:
        values = self._ints(tag)
        return None if values is None else tuple(int(v) for v in values)

    def _bytes(self, tag: Tag) -> bytes | None:
        entry = self.ifd.entries.get(tag)
        return None if entry is None else self.reader.raw_bytes(entry)

    def _estimate_byte_counts(
        self, offsets: np.ndarray, width: int, rows: int, samples: int, bits: int, planes: int
    ) -> np.ndarray:
        """Byte counts of a file without StripByteCounts (libtiff's estimate)."""
        compression = self._int(Tag.COMPRESSION, 1)
        file_size = self.reader.buf.file_size
        if compression == 1:
            per_plane = samples // planes if planes > 1 else samples
            row_bytes = -(-width * per_plane * bits // 8)
            size = row_bytes * rows
            counts = np.full(offsets.shape, size, dtype=np.uint64)
            if file_size is not None:
                limit = np.uint64(file_size) - np.minimum(offsets, np.uint64(file_size))
                counts = np.minimum(counts, limit)
            return counts
        if offsets.size == 1 and file_size is not None and int(offsets[0]) <= file_size:
            return np.array([file_size - int(offsets[0])], dtype=np.uint64)
        raise CorruptTiffError(self.source, "compressed image without StripByteCounts")
