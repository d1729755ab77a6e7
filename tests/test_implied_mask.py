"""Validity implied by the pixels (``ImpliedMask``): when a read may keep no mask array,
and that the mask it derives is the one the nodata rule gives."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rasteret.read.radiometry import implied_invalid, valid_mask
from rasteret.read.result import AOIStack, ImpliedMask

U16, U8, F32 = np.dtype(np.uint16), np.dtype(np.uint8), np.dtype(np.float32)


@pytest.mark.parametrize(
    ("dtype", "nodata", "fill", "out_dtype", "expected"),
    [
        (U16, 0, 0, U16, 0),  # Sentinel-2 L2A: nodata 0 filled with 0
        (U8, 0, 0, U16, 0),  # a uint8 band in a uint16 stack
        (U16, 0, 7, U16, None),  # another fill: nodata pixels no longer tell
        (U16, None, 0, U16, None),  # no nodata: only the outside is invalid
        (U16, math.nan, 0, U16, None),  # a nodata no uint16 pixel can hold
        (U16, 70000, 0, U16, None),
        (F32, math.nan, math.nan, F32, math.nan),
        (F32, -9999.0, -9999.0, F32, -9999.0),
        (F32, 0.0, 0.0, F32, None),  # -0.0 is nodata too, with other bits than the fill
        (F32, math.nan, 0.0, F32, None),
    ],
)
def test_implied_invalid(dtype, nodata, fill, out_dtype, expected) -> None:  # type: ignore[no-untyped-def]
    found = implied_invalid(dtype, nodata, fill, out_dtype)
    if expected is None or not math.isnan(expected):
        assert found == expected
    else:
        assert found is not None and math.isnan(found)


def test_derived_mask_is_the_nodata_rule() -> None:
    rng = np.random.default_rng(3)
    ints = rng.integers(0, 4, (2, 3, 40, 50)).astype(np.uint16)  # [N, C, h, w], 0 = nodata
    floats = ints.astype(np.float32)
    floats[floats == 1] = np.nan
    rule = ImpliedMask((0, 0, 0))
    expected = np.stack([valid_mask(ints[n, c], 0) for n in range(2) for c in range(3)])
    np.testing.assert_array_equal(rule.of(ints), expected.reshape(ints.shape))
    nan_rule = ImpliedMask((math.nan, float("nan"), np.nan))
    np.testing.assert_array_equal(nan_rule.of(floats[0]), ~np.isnan(floats[0]))
    assert nan_rule == ImpliedMask((float("nan"),) * 3)  # equal rules: one stack rule
    assert hash(nan_rule) == hash(ImpliedMask((float("nan"),) * 3))
    with pytest.raises(ValueError, match="2 bands for 3"):
        rule.of(ints[:, :2])


def test_stack_derives_its_mask_once_on_first_use() -> None:
    data = np.array([[[0, 5], [6, 0]], [[1, 0], [0, 0]]], dtype=np.uint16)  # [N, h, w]
    stack = AOIStack(data, ImpliedMask((0,)), None, ("B1",), 0)  # type: ignore[arg-type]
    assert stack.mask is stack.mask  # computed once
    np.testing.assert_array_equal(stack.mask, data != 0)
    np.testing.assert_array_equal(stack.masked().filled(9), np.where(data != 0, data, 9))
