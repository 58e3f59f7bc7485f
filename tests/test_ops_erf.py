"""erf's accuracy contract, over the whole real line: float64 within 1e-15 relative of math.erf, float32
within 1 ulp of math.erf (rounded to float32). The float32 path is a table + cubic Taylor step; the
float64 path is Cody's rational approximations. Both implementations are held to it: the reference
(refimpl/ops/erf.py: Cody in float64 for every dtype) and the fast kernel (refimpl/kernels/erf.py: the
float32 table)."""

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from refimpl.kernels.erf import erf as fast_erf
from refimpl.ops.erf import erf as reference_erf

ERFS = (reference_erf, fast_erf)


def ulp_distance32(a, b):
    """Distance in float32 units in the last place (same-sign finite values; 0 for equal values)."""
    ia = a.view(np.int32).astype(np.int64)
    ib = b.view(np.int32).astype(np.int64)
    ia = np.where(ia < 0, -(ia & 0x7FFFFFFF), ia)  # sign-magnitude -> a monotone integer line
    ib = np.where(ib < 0, -(ib & 0x7FFFFFFF), ib)
    return np.abs(ia - ib)


def reference32(x):
    return np.array([math.erf(float(v)) for v in x.ravel()], np.float64).astype(np.float32).reshape(x.shape)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(width=32, allow_nan=False), min_size=1, max_size=64))
def test_float32_within_one_ulp_everywhere(values):
    x = np.array(values, np.float32)
    for erf in ERFS:
        got = erf(x)
        assert got.dtype == np.float32
        assert ulp_distance32(got, reference32(x)).max() <= 1, (erf.__module__, x, got, reference32(x))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(min_value=-4.5, max_value=4.5, width=32), min_size=1, max_size=64))
def test_float32_within_one_ulp_where_erf_varies(values):
    x = np.array(values, np.float32)
    for erf in ERFS:
        assert ulp_distance32(erf(x), reference32(x)).max() <= 1, erf.__module__


def test_float32_dense_sweep_and_special_values():
    """Every table interval on [-4.5, 4.5], both ends of each, tiny and subnormal inputs, +-inf, nan."""
    nodes = np.arange(-4.5 * 256, 4.5 * 256 + 1) / 256
    x = np.concatenate([
        np.linspace(-4.5, 4.5, 400_001),
        nodes, np.nextafter(nodes.astype(np.float32), np.float32(np.inf)),
        np.nextafter(nodes.astype(np.float32), np.float32(-np.inf)),
        [0.0, -0.0, 1e-45, -1e-45, 1e-38, 1e-30, 1e-8, 3.9, 3.92, 4.0, 4.0001, 10.0, 3e38, np.inf, -np.inf],
    ]).astype(np.float32)
    want = reference32(x)
    for erf in ERFS:
        got = erf(x)
        assert ulp_distance32(got, want).max() <= 1, erf.__module__
        assert erf(np.array([np.nan], np.float32))[0] != erf(np.array([np.nan], np.float32))[0]  # nan
        assert np.signbit(erf(np.array([-0.0], np.float32))[0])
        assert not np.signbit(erf(np.array([0.0], np.float32))[0])
        assert erf(np.array([np.inf, -np.inf], np.float32)).tolist() == [1.0, -1.0]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(allow_nan=False), min_size=1, max_size=64))
def test_float64_relative_error(values):
    x = np.array(values, np.float64)
    want = np.array([math.erf(v) for v in values])
    for erf in ERFS:
        got = erf(x)
        assert got.dtype == np.float64
        assert np.all(np.abs(got - want) <= 1e-15 * np.abs(want) + 1e-300), (x, got, want)


def test_shapes_and_non_contiguous_input():
    x = np.linspace(-3, 3, 7 * 40000, dtype=np.float32).reshape(7, 40000)[:, ::3]  # strided, > one chunk
    for erf in ERFS:
        assert erf(x).shape == x.shape
        assert ulp_distance32(erf(x), reference32(x)).max() <= 1
