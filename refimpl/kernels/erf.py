"""erf for float32 arrays, fast: a table of erf and erf' and a cubic Taylor step (implements ``ops.erf.erf``).

The reference (``refimpl.ops.erf``) evaluates Cody's approximation in float64 for every element. For
float32 the contract is "within 1 ulp of the true value", which needs far less precision: this kernel
reads erf and its derivative at the nearest table node below |x| and takes one cubic Taylor step. The
derivation and error budget are in the comment below; tests/test_ops_erf.py checks the contract against
``math.erf`` and tests/test_kernels.py checks agreement with the reference.
"""

import numpy as np

from ..backend import array_module
from ..ops.erf import _INV_SQRT_PI, erf_float64
from ..ops.erf import erf as reference_erf
from .threads import _local

# float32 inputs: a table of erf and its derivative at the nodes x0 = k/256 on [-4, 4], and a cubic Taylor
# step from the node between 0 and x. This is a different evaluation of the same function, chosen
# because the float32 contract (within 1 ulp of math.erf) needs far less than Cody's float64 precision.
# With h = x - x0 (|h| < 1/256, the sign of x), E = erf(x0) and D = erf'(x0) = 2/sqrt(pi) exp(-x0^2),
#     erf(x0 + h) = E + D h (1 + c) + R,    c = h (-x0 + h (2 x0^2 - 1) / 3)
# (from erf'' = -2x erf' and erf''' = (4x^2 - 2) erf'), where |R| <= 4.5/24 h^4 < 5e-11 absolute, and
# below 1e-10 relative near 0, where the expansion is odd. Error budget, with 1 ulp = 2^-24 relative:
# - k = trunc(256 x) (a float32 -> int32 conversion), x0 = k / 256 (written from k to float32) and
#   h = x - x0 are exact in float32 (scaling by 2^8 is exact, and so is k / 256 for |k| <= 1024;
#   Sterbenz's lemma for the difference, x0 and x having the same sign and |x0| <= |x| < 2 |x0| unless
#   x0 = 0);
# - c is small (|c| < 0.016) and computed in float32, with no cancellation (its two terms never have
#   opposite signs unless one is ten times the other): its error is below 3e-9 relative to 1 + c;
# - 1 + c, the products with h and D, and the sum with E are float64, E and D are float64 from the
#   Cody path above: the value is within 1e-8 of erf relative before its one rounding to float32, so
#   the rounded result is within 1 ulp of the correctly rounded one.
# Signed zeros: x0 = 0 / 256 is +0.0, so x = -0.0 gives h = -0.0 - +0.0 = -0.0, D h (1 + c) = -0.0, and
# the table holds erf(0) as -0.0, so that -0.0 + -0.0 = -0.0 (and +0.0 gives +0.0 + -0.0 = +0.0).
# Beyond |x| = 4 erf rounds to +-1 in float32 (erfc(4) = 1.5e-8 < 2^-25), so x is clipped to [-4, 4].
# The table is complex, E + i D, so that one gather fetches both (16 bytes a node, 32 KiB in all, in
# L1); node k is at index k + 1024. The work goes chunk by chunk, so that temporaries stay in cache.
_ERF32_STEPS = 256  # table nodes per unit of x
_ERF32_MAX = 4.0
_ERF32_CHUNK = 131072  # elements per chunk: smaller ones lose to GIL hand-offs between threads, larger ones cache locality (docs/performance.md)
_erf32_nodes = None


def _erf32_table():
    """E + i D: erf and its derivative at x0 = k / 256, k = -1024 .. 1024, complex128 (float64 parts)."""
    global _erf32_nodes
    if _erf32_nodes is None:
        n = int(_ERF32_MAX * _ERF32_STEPS)
        x0 = np.arange(-n, n + 1) / _ERF32_STEPS
        table = np.empty(x0.size, np.complex128)
        table.real = erf_float64(x0)
        table.real[n] = -0.0  # erf(0) as -0.0 (see the comment above); set part by part: E + 1j * D gives +0.0
        table.imag = (2.0 * _INV_SQRT_PI) * np.exp(-x0 * x0)
        _erf32_nodes = table
    return _erf32_nodes


def _erf_float32(x, out=None):
    """erf of a float32 numpy array, within 1 ulp of math.erf (see the comment above).

    ``out``: a float32 array of x's shape to write into (it may be ``x`` itself). Every pass writes into
    per-thread scratch arrays of one chunk: a fresh multi-hundred-KiB temporary per operation costs
    page faults. The node index is a 32-bit integer throughout: converting float32 to it is several
    times faster than to a 64-bit one, and ``np.take`` accepts it.
    """
    table = _erf32_table()
    if out is None:
        out = np.empty(x.shape, np.float32)
    flat_x, flat_out = x.reshape(-1), out.reshape(-1)
    scratch = _erf32_scratch(min(flat_x.size, _ERF32_CHUNK))
    with np.errstate(invalid="ignore"):  # nan -> some index; the nan then flows through h into the result
        for start in range(0, flat_x.size, _ERF32_CHUNK):
            xs = flat_x[start:start + _ERF32_CHUNK]
            n = xs.size
            h, x0, c, k, r, g = (a[:n] for a in scratch)
            xs.clip(-_ERF32_MAX, _ERF32_MAX, out=h)  # x in [-4, 4]
            np.multiply(h, float(_ERF32_STEPS), out=x0)  # exact
            np.copyto(k, x0, casting="unsafe")  # node k = trunc(256 x) (nan: a garbage index that mode="clip" tames)
            np.multiply(k, 1.0 / _ERF32_STEPS, out=x0, dtype=np.float32, casting="unsafe")  # x0 = k / 256, exact, +0.0 for k = 0
            k += int(_ERF32_MAX * _ERF32_STEPS)  # its index in the table
            h -= x0  # h = x - x0, exact
            np.multiply(x0, x0, out=c)  # c = h (-x0 + h (2 x0^2 - 1) / 3), float32
            c *= 2.0 / 3.0
            c -= 1.0 / 3.0
            c *= h
            c -= x0
            c *= h
            np.add(c, 1.0, out=r, dtype=np.float64)  # float64 from here on
            r *= h
            np.take(table, k, mode="clip", out=g)  # E + i D
            r *= g.imag  # D h (1 + c)
            r += g.real  # E + D h (1 + c)
            np.copyto(flat_out[start:start + n], r, casting="same_kind")  # the one rounding to float32
    return out


def _erf32_scratch(n):
    """This thread's scratch arrays for :func:`_erf_float32`, at least ``n`` elements each."""
    scratch = getattr(_local, "erf32", None)
    if scratch is None or scratch[0].size < n:
        types = (np.float32, np.float32, np.float32, np.int32, np.float64, np.complex128)
        scratch = _local.erf32 = tuple(np.empty(n, t) for t in types)
    return scratch


def erf(x, out=None):
    """erf(x) elementwise, as ``ops.erf.erf``: float32 numpy arrays through the table (within 1 ulp of
    ``math.erf``), everything else through the reference. ``out``: a float32 array of x's shape to write
    into (it may be ``x`` itself), float32 numpy only."""
    if array_module(x) is np and x.dtype == np.float32:
        return _erf_float32(x, out=out)
    if out is not None:
        raise ValueError("erf(out=...) is for float32 numpy arrays only")
    return reference_erf(x)
