"""The error function, which NumPy lacks (SciPy is not a dependency): the reference definition.

    erf(x) = 2 / sqrt(pi) * integral_0^x exp(-t^2) dt

Evaluated by W. J. Cody's rational Chebyshev approximations ("Rational Chebyshev approximations for the
error function", Math. Comp. 23 (1969), as in Netlib SPECFUN's CALERF), always in float64, and rounded
once to the input's dtype. Edge cases: erf(+-inf) = +-1, erf(nan) = nan, erf(-0.0) = -0.0. Accuracy
(tests/test_ops_erf.py, against ``math.erf`` over the whole real line): float64 relative error <= 1e-15,
so float32 and float16 results are within 1 ulp of the correctly rounded value. On cupy the GPU's own
``erf`` (cupyx.scipy.special) is used.
"""

import numpy as np

from ..backend import array_module

# Three ranges of |x|; each is a rational function evaluated by Horner's rule.

_ERF_A = (3.16112374387056560e00, 1.13864154151050156e02, 3.77485237685302021e02, 3.20937758913846947e03,
          1.85777706184603153e-1)
_ERF_B = (2.36012909523441209e01, 2.44024637934444173e02, 1.28261652607737228e03, 2.84423683343917062e03)
_ERF_C = (5.64188496988670089e-1, 8.88314979438837594e00, 6.61191906371416295e01, 2.98635138197400131e02,
          8.81952221241769090e02, 1.71204761263407058e03, 2.05107837782607147e03, 1.23033935479799725e03,
          2.15311535474403846e-8)
_ERF_D = (1.57449261107098347e01, 1.17693950891312499e02, 5.37181101862009858e02, 1.62138957456669019e03,
          3.29079923573345963e03, 4.36261909014324716e03, 3.43936767414372164e03, 1.23033935480374942e03)
_ERF_P = (3.05326634961232344e-1, 3.60344899949804439e-1, 1.25781726111229246e-1, 1.60837851487422766e-2,
          6.58749161529837803e-4, 1.63153871373020978e-2)
_ERF_Q = (2.56852019228982242e00, 1.87295284992346725e00, 5.27905102951428412e-1, 6.05183413124413191e-2,
          2.33520497626869185e-3)
_INV_SQRT_PI = 5.6418958354775628695e-1
_ERF_SMALL = 0.46875  # |x| below this: erf directly; above: 1 - erfc
_ERF_MID = 4.0  # |x| above this: asymptotic form of erfc
_ERF_ONE = 6.0  # |x| above this: erfc(x) < 1e-16, so erf(x) rounds to +-1 in float64


def _rational(z, num, den):
    """(N(z), D(z)) by Horner's rule, with Cody's coefficient layout: N has the leading coefficient last,
    N(z) = ((num[-1] z + num[0]) z + num[1]) z ... + num[-2], and D is monic,
    D(z) = ((z + den[0]) z + den[1]) z ... + den[-1]. Callers form ``factor * N / D`` (in that order)."""
    p = num[-1] * z
    q = z.copy()
    for a, b in zip(num[:-2], den[:-1]):
        p += a
        p *= z
        q += b
        q *= z
    return p + num[-2], q + den[-1]


def _erf_small(x):
    """erf(x) for |x| <= 0.46875: x * A(x^2) / B(x^2)."""
    n, d = _rational(x * x, _ERF_A, _ERF_B)
    return x * n / d


def _exp_minus_square(xp, y):
    """exp(-y^2), with y^2 split as ysq^2 + (y - ysq)(y + ysq) to keep the exponent exact (Cody)."""
    ysq = xp.trunc(y * 16.0) / 16.0
    return xp.exp(-ysq * ysq) * xp.exp(-(y - ysq) * (y + ysq))


def _erfc_mid(xp, y):
    """erfc(y) for 0.46875 < y <= 4: exp(-y^2) * C(y) / D(y)."""
    n, d = _rational(y, _ERF_C, _ERF_D)
    return _exp_minus_square(xp, y) * n / d


def _erfc_large(xp, y):
    """erfc(y) for y > 4: exp(-y^2) / y * (1/sqrt(pi) - P(1/y^2) / (y^2 Q(1/y^2)))."""
    z = 1.0 / (y * y)
    n, d = _rational(z, _ERF_P, _ERF_Q)
    r = z * n / d
    return _exp_minus_square(xp, y) * (_INV_SQRT_PI - r) / y


def erf_float64(x64):
    """Cody's erf of a float64 numpy array, all three ranges (see the comment above)."""
    y = np.minimum(np.abs(x64), _ERF_ONE)  # nan stays nan; beyond 6, erf is +-1 in float64
    small = y <= _ERF_SMALL
    # Evaluate each range where it applies; clamp the others' inputs into their own range so that no
    # branch computes on values it was not designed for (np.where evaluates both sides).
    from_small = _erf_small(np.where(small, x64, 0.0))
    y_mid = np.clip(y, _ERF_SMALL, _ERF_MID)
    y_large = np.clip(y, _ERF_MID, _ERF_ONE)
    erfc = np.where(y <= _ERF_MID, _erfc_mid(np, y_mid), _erfc_large(np, y_large))
    from_erfc = np.copysign((0.5 - erfc) + 0.5, x64)
    return np.where(small, from_small, from_erfc)


def erf(x):
    """erf(x) elementwise: Cody's approximation in float64, rounded once to ``x``'s dtype (see above)."""
    xp = array_module(x)
    if xp is not np:
        from cupyx.scipy.special import erf as gpu_erf  # pragma: no cover - GPU only

        return gpu_erf(x)
    out_dtype = x.dtype if x.dtype.kind == "f" else np.dtype(np.float64)
    return erf_float64(np.asarray(x, dtype=np.float64)).astype(out_dtype, copy=False)


# float16 GELU on torch's CPU: ATen's vectorized float32 erf (Vectorized<float>::erf, vec256/vec512_float.h) is
# Abramowitz & Stegun 7.1.26 (|error| <= 1.5e-7), evaluated with fused multiply-adds and Sleef's expf. torch's
# GELU of a float16 tensor runs it (measured: bit-identical float16 GELU on 24,576 values; a correctly
# rounded erf differs in 2.7% of them, by the cancellation in 1 + erf(x / sqrt 2) for x << 0).
_AS_P = 0.3275911
_AS_A = (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)


def _fma32(a, b, c):
    """a * b + c rounded once to float32 (a, b, c float32): the product is exact in float64."""
    return (a.astype(np.float64) * b + c).astype(np.float32)


def erf_abramowitz_stegun(x):
    """erf of a float32 array as ATen's vectorized float32 erf computes it (float32 result):

        t = 1 / (p |x| + 1);  r = ((((a5 t + a4) t + a3) t + a2) t + a1);  erf = sign(x) (1 - r t exp(-x^2))
    """
    f32 = np.float32
    a = np.abs(x)
    t = f32(1) / _fma32(a, f32(_AS_P), f32(1))
    r = _fma32(np.full_like(t, _AS_A[4]), t, f32(_AS_A[3]))
    for coeff in (_AS_A[2], _AS_A[1], _AS_A[0]):
        r = _fma32(r, t, f32(coeff))
    e = np.exp(-(x * x).astype(np.float64)).astype(f32)  # Sleef's expf (1 ulp) of -x^2, x^2 rounded to float32
    return np.copysign(_fma32(-e * t, r, f32(1)), x)
