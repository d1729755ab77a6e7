"""``Window``: the one pixel-window type of rasteret (immutable).

A window is ``(row_off, col_off, height, width)`` pixels of a grid: rows
``[row_off, row_stop)`` and columns ``[col_off, col_stop)``. Offsets may be negative and
a window may reach beyond its grid (an AOI window before it is cut to the raster);
:attr:`Window.is_empty` is true when it has no pixels. Used by the grids and warps of
:mod:`rasteret.geo`, every read of :mod:`rasteret.read` and ``explain``. rasterio's
``((row_start, row_stop), (col_start, col_stop))`` form converts with
:meth:`Window.from_ranges` / :attr:`Window.ranges`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Window:
    """A pixel window ``(row_off, col_off, height, width)`` of a grid."""

    row_off: int
    col_off: int
    height: int
    width: int

    @classmethod
    def from_ranges(cls, rows: Sequence[int], cols: Sequence[int]) -> Window:
        """The window of rows ``[rows[0], rows[1])`` and columns ``[cols[0], cols[1])``."""
        (r0, r1), (c0, c1) = rows, cols
        return cls(int(r0), int(c0), int(r1) - int(r0), int(c1) - int(c0))

    @property
    def row_stop(self) -> int:
        """One past the last row."""
        return self.row_off + self.height

    @property
    def col_stop(self) -> int:
        """One past the last column."""
        return self.col_off + self.width

    @property
    def ranges(self) -> tuple[tuple[int, int], tuple[int, int]]:
        """``((row_off, row_stop), (col_off, col_stop))`` (rasterio's ``toranges()``)."""
        return (self.row_off, self.row_stop), (self.col_off, self.col_stop)

    @property
    def slices(self) -> tuple[slice, slice]:
        """``(rows, cols)`` slices for numpy indexing."""
        return (slice(self.row_off, self.row_stop), slice(self.col_off, self.col_stop))

    @property
    def shape(self) -> tuple[int, int]:
        """``(height, width)``."""
        return (self.height, self.width)

    @property
    def is_empty(self) -> bool:
        return self.height <= 0 or self.width <= 0

    def intersection(self, other: Window) -> Window:
        """The overlap of two windows (empty windows have zero height or width)."""
        r0, c0 = max(self.row_off, other.row_off), max(self.col_off, other.col_off)
        r1 = min(self.row_stop, other.row_stop)
        c1 = min(self.col_stop, other.col_stop)
        return Window(r0, c0, max(0, r1 - r0), max(0, c1 - c0))

    def shifted(self, drow: int, dcol: int) -> Window:
        """The same window moved by ``drow`` rows and ``dcol`` columns."""
        return Window(self.row_off + drow, self.col_off + dcol, self.height, self.width)
