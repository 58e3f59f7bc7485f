"""refimpl.backend: erf accuracy over the whole real line, backend and dtype selection."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refimpl.backend import erf, get_backend, resolve_dtype
from refimpl.errors import ConfigError


def ulp_distance_f32(a: np.float32, b: float) -> float:
    """|a - b| in units of the float32 spacing at b."""
    return abs(float(a) - b) / float(np.spacing(np.float32(abs(b))))


@settings(max_examples=3000, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=True, width=64))
def test_erf_float64_relative_error_at_most_1e_15(x):
    got = float(erf(np.array([x]))[0])
    want = math.erf(x)
    assert abs(got - want) <= 1e-15 * abs(want), (x, got, want)


@settings(max_examples=3000, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=True, width=32))
def test_erf_float32_within_one_ulp(x):
    got = erf(np.array([x], dtype=np.float32))
    assert got.dtype == np.float32
    want = math.erf(float(np.float32(x)))
    assert ulp_distance_f32(got[0], want) <= 1.0, (x, float(got[0]), want)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_erf_dense_sweep_and_special_values(dtype):
    """A dense sweep across every range boundary (0.46875, 4, 6), plus tiny, huge, signed zero, inf, nan."""
    xs = np.concatenate([np.linspace(-8, 8, 400001), [0.46875, 4.0, 6.0, 1e-300, 5e-324, 1e-30, 1e30]]).astype(dtype)
    got = erf(xs).astype(np.float64)
    want = np.array([math.erf(float(v)) for v in xs])
    if dtype == np.float64:
        assert (np.abs(got - want) <= 1e-15 * np.abs(want)).all()
    else:
        spacing = np.spacing(np.abs(want).astype(np.float32)).astype(np.float64)
        assert (np.abs(got - want) <= spacing).all()
    special = erf(np.array([0.0, -0.0, np.inf, -np.inf, np.nan], dtype=dtype))
    assert special[0] == 0 and math.copysign(1, special[1]) == -1
    assert special[2] == 1 and special[3] == -1 and np.isnan(special[4])


def test_erf_keeps_shape():
    x = np.linspace(-3, 3, 24, dtype=np.float32).reshape(2, 3, 4)
    assert erf(x).shape == (2, 3, 4)


def test_backend_and_dtype_selection():
    assert get_backend("numpy") is np
    assert resolve_dtype("float64") == np.float64
    with pytest.raises(ConfigError, match="unknown backend 'torch'"):
        get_backend("torch")
    with pytest.raises(ConfigError, match="unsupported dtype 'int8'"):
        resolve_dtype("int8")
    with pytest.raises(ConfigError, match="float16.*cupy backend only"):
        resolve_dtype("float16", "numpy")
