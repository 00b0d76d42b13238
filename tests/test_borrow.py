"""fastprop.run.borrow: views without reference counts see the same memory."""

import numpy as np
import pytest
from numba import njit
from numba.core.errors import TypingError

from fastprop.run.borrow import borrowed


@njit
def _double_through_views(a, b):
    va, vb = borrowed((a, b))
    for i in range(va.shape[0]):
        for j in range(va.shape[1]):
            va[i, j] *= 2.0
    vb[1] = 7
    return va.shape[0], va.shape[1], va.strides[0], va.strides[1], vb[0] + vb[1]


@njit
def _sum_view(a):
    v = borrowed(a)
    return v.sum(), v[1:].sum()


def test_borrowed_views_read_and_write_the_originals():
    base = np.arange(24.0).reshape(4, 6)
    a = base[::2, 1::2]  # not contiguous: the views keep the strides
    b = np.array([3, 4, 5], dtype=np.int64)
    expect = 2.0 * a
    shape0, shape1, s0, s1, bsum = _double_through_views(a, b)
    assert (shape0, shape1, s0, s1) == (a.shape[0], a.shape[1], a.strides[0], a.strides[1])
    np.testing.assert_array_equal(a, expect)
    np.testing.assert_array_equal(base[::2, 1::2], expect)
    assert b[1] == 7 and bsum == 10
    assert _sum_view(np.arange(5.0)) == (10.0, 10.0)


def test_borrowed_takes_only_arrays():
    @njit
    def bad(x):
        return borrowed((x, 1.0))

    with pytest.raises(TypingError):
        bad(np.zeros(2))
