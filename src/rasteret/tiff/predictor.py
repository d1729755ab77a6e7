"""Undo the TIFF predictors (tag 317) on decoded blocks, in place where possible.

Both functions take an array shaped ``(rows, width, samples)``:

* **Predictor 2** (horizontal differencing) works on integers in *native* byte order:
  the caller byte-swaps first, then accumulates, exactly as libtiff's ``swabHorAcc*``.
  Each sample of a chunky pixel is differenced against the same sample of the previous
  pixel. Floating-point samples are accumulated as unsigned integers of the same
  width (libtiff does the same, e.g. for float16 files written with predictor 2).
* **Predictor 3** (floating point) works on the raw, byte-shuffled bytes: libtiff
  stores each row as the byte planes of its values, most significant byte first,
  after byte-wise differencing with a distance of ``samples``. The layout does not
  depend on the file's byte order, so no byte swap happens before or after it.
"""

from __future__ import annotations

import imagecodecs
import numpy as np

#: Integer view used to accumulate predictor-2 samples of each item size.
_UNSIGNED = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}

#: Bit widths libtiff's horizontal predictor supports.
HORIZONTAL_BITS = frozenset({8, 16, 32, 64})
#: Bit widths libtiff's floating-point predictor supports (float16/32/64).
FLOATING_BITS = frozenset({16, 32, 64})


def undo_horizontal(block: np.ndarray) -> np.ndarray:
    """Undo predictor 2 in place on a native-order ``(rows, width, samples)`` array."""
    if block.dtype.kind not in "iu":
        view = block.view(_UNSIGNED[block.dtype.itemsize])
        imagecodecs.delta_decode(view, axis=1, out=view)
        return block
    return imagecodecs.delta_decode(block, axis=1, out=block)


def undo_floating(block: np.ndarray) -> np.ndarray:
    """Undo predictor 3 on a ``(rows, width, samples)`` float array of raw shuffled bytes.

    Returns a new native-order array (the imagecodecs kernel cannot work in place).
    """
    return imagecodecs.floatpred_decode(block, axis=-2)
