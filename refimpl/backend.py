"""Array backends: NumPy on the CPU, CuPy on an NVIDIA GPU — chosen once, when a model is loaded.

Every other module takes its array module from its inputs (``xp = array_module(x)``) and never imports
cupy itself. This file also supplies ``erf``, which NumPy lacks (SciPy is not a dependency).
"""

from __future__ import annotations

import sys

import numpy as np

from .errors import ConfigError

BACKENDS = ("numpy", "cupy")
DTYPES = {"float32": np.float32, "float64": np.float64, "float16": np.float16}


def get_backend(name: str = "numpy"):
    """The array module for backend ``name`` ("numpy" or "cupy")."""
    if name == "numpy":
        return np
    if name == "cupy":
        try:
            import cupy
        except ImportError as e:  # pragma: no cover - depends on the machine
            raise ConfigError(
                f"backend='cupy' needs CuPy: `pip install refimpl[gpu]` (cupy-cuda12x) on a machine with a CUDA GPU ({e})"
            ) from None
        return cupy
    raise ConfigError(f"unknown backend {name!r}; choose one of {BACKENDS}")


def resolve_dtype(dtype, backend: str = "numpy"):
    """Map "float32" / "float64" / "float16" (or the numpy dtype) to a numpy dtype, checking the backend has it."""
    key = np.dtype(dtype).name if not isinstance(dtype, str) else dtype
    if key not in DTYPES:
        raise ConfigError(f"unsupported dtype {dtype!r}; choose one of {sorted(DTYPES)}")
    if key == "float16" and backend == "numpy":
        raise ConfigError(
            "dtype='float16' is supported on the cupy backend only (NumPy has no fast float16 matmul); "
            "use dtype='float32' or backend='cupy'"
        )
    return np.dtype(DTYPES[key])


def array_module(x):
    """numpy or cupy, whichever owns array ``x`` (numpy for anything that is not a cupy array)."""
    cupy = sys.modules.get("cupy")
    if cupy is not None and isinstance(x, cupy.ndarray):
        return cupy
    return np


def to_host(x):
    """A numpy copy (or view) of ``x``, wherever it lives. Non-arrays pass through unchanged."""
    cupy = sys.modules.get("cupy")
    if cupy is not None and isinstance(x, cupy.ndarray):
        return cupy.asnumpy(x)
    return x


def finfo_min(dtype) -> float:
    """The dtype's most negative finite value: the additive mask constant transformers uses."""
    return float(np.finfo(dtype).min)


# --- erf -------------------------------------------------------------------------------------------
# W. J. Cody, "Rational Chebyshev approximations for the error function", Math. Comp. 23 (1969), as in
# Netlib SPECFUN's CALERF. Three ranges of |x|; each is a rational function evaluated by Horner's rule.
# Accuracy (tested against math.erf over the whole real line): float64 relative error <= 1e-15; float32
# inputs are evaluated in float64 and rounded once, so they land within 1 ulp of the true value.

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


def _erf_small(x):
    """erf(x) for |x| <= 0.46875: x * A(x^2) / B(x^2)."""
    z = x * x
    num = _ERF_A[4] * z
    den = z.copy()
    for a, b in zip(_ERF_A[:3], _ERF_B[:3]):
        num += a
        num *= z
        den += b
        den *= z
    return x * (num + _ERF_A[3]) / (den + _ERF_B[3])


def _exp_minus_square(xp, y):
    """exp(-y^2), with y^2 split as ysq^2 + (y - ysq)(y + ysq) to keep the exponent exact (Cody)."""
    ysq = xp.trunc(y * 16.0) / 16.0
    return xp.exp(-ysq * ysq) * xp.exp(-(y - ysq) * (y + ysq))


def _erfc_mid(xp, y):
    """erfc(y) for 0.46875 < y <= 4: exp(-y^2) * C(y) / D(y)."""
    num = _ERF_C[8] * y
    den = y.copy()
    for c, d in zip(_ERF_C[:7], _ERF_D[:7]):
        num += c
        num *= y
        den += d
        den *= y
    return _exp_minus_square(xp, y) * (num + _ERF_C[7]) / (den + _ERF_D[7])


def _erfc_large(xp, y):
    """erfc(y) for y > 4: exp(-y^2) / y * (1/sqrt(pi) - P(1/y^2) / (y^2 Q(1/y^2)))."""
    z = 1.0 / (y * y)
    num = _ERF_P[5] * z
    den = z.copy()
    for p, q in zip(_ERF_P[:4], _ERF_Q[:4]):
        num += p
        num *= z
        den += q
        den *= z
    r = z * (num + _ERF_P[4]) / (den + _ERF_Q[4])
    return _exp_minus_square(xp, y) * (_INV_SQRT_PI - r) / y


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
_ERF32_CHUNK = 131072  # elements per chunk: smaller ones lose more to GIL hand-offs between worker threads (GELU, 2 threads: 16K 9.2, 64K 4.2, 128K 3.1, 256K 2.8 ns per element), larger ones lose cache locality (end to end 128K was best)
_erf32_nodes = None


def _erf32_table():
    """E + i D: erf and its derivative at x0 = k / 256, k = -1024 .. 1024, complex128 (float64 parts)."""
    global _erf32_nodes
    if _erf32_nodes is None:
        n = int(_ERF32_MAX * _ERF32_STEPS)
        x0 = np.arange(-n, n + 1) / _ERF32_STEPS
        table = np.empty(x0.size, np.complex128)
        table.real = _erf_float64(x0)
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


def scratch(name, n, dtype):
    """A per-thread numpy work array of ``n`` elements of ``dtype``, reused across calls under ``name``
    (contents undefined). Spares the page faults of a fresh large temporary in every chunk of work."""
    arrays = getattr(_local, "scratch", None)
    if arrays is None:
        arrays = _local.scratch = {}
    a = arrays.get(name)
    if a is None or a.size < n or a.dtype != dtype:
        a = arrays[name] = np.empty(n, dtype)
    return a[:n]


def _erf32_scratch(n):
    """This thread's scratch arrays for :func:`_erf_float32`, at least ``n`` elements each."""
    scratch = getattr(_local, "erf32", None)
    if scratch is None or scratch[0].size < n:
        types = (np.float32, np.float32, np.float32, np.int32, np.float64, np.complex128)
        scratch = _local.erf32 = tuple(np.empty(n, t) for t in types)
    return scratch


def _erf_float64(x64):
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


def erf(x, out=None):
    """The error function erf(x) = 2/sqrt(pi) * integral_0^x exp(-t^2) dt, elementwise.

    Returns an array of ``x``'s dtype. float64 (and float16): Cody's rational approximations in float64,
    relative error <= 1e-15 against ``math.erf``, rounded once to the input's dtype. float32: a cubic
    Taylor step from a 2049-node table (built once from the float64 path), within 1 ulp of ``math.erf``
    (the float32 contract) at a fraction of the cost. erf(+-inf) = +-1, erf(nan) = nan. On cupy the
    GPU's own ``erf`` (cupyx.scipy.special) is used. ``out``: where to write the result (may be ``x``).
    """
    xp = array_module(x)
    if xp is not np:
        from cupyx.scipy.special import erf as gpu_erf  # pragma: no cover - GPU only

        return gpu_erf(x) if out is None else gpu_erf(x, out=out)
    if x.dtype == np.float32 and (out is None or out.dtype == np.float32):
        return _erf_float32(x, out=out)
    out_dtype = x.dtype if x.dtype.kind == "f" else np.dtype(np.float64)
    y = _erf_float64(np.asarray(x, dtype=np.float64)).astype(out_dtype, copy=False)
    if out is None:
        return y
    out[...] = y
    return out


# --- spreading row-wise work over the CPU cores -----------------------------------------------------
# NumPy runs each ufunc on one core; the BLAS runs each matrix product on all of them. The model's work
# splits into independent blocks (rows of tokens; batch elements x heads in attention), so instead of
# relying on the BLAS alone, ``cpu_threads`` opens a region in which ``map_blocks`` hands the blocks to
# one Python thread per core (NumPy releases the GIL inside ufuncs and matmul) while the BLAS runs
# single-threaded for the whole region. Two rules, both measured (docs/performance.md):
# - Never two thread pools at once. After every multi-threaded product OpenBLAS's worker threads spin
#   for about 0.1 s (measured: 0.10 s of CPU burnt in a 0.5 s sleep after one 512^3 product, whatever
#   the thread count is set to afterwards); a spinning worker takes a third of a core from the Python
#   threads (a 4 x 64 forward ran in 106 ms instead of 72 because the pooler's 4-row product ran on two
#   BLAS threads just before the next forward). So a region covers a whole forward, embeddings to
#   pooler, and nothing inside it switches the BLAS back to several threads.
# - Small inputs get no region: below two row blocks there is nothing to split, and the BLAS's own
#   threads are then the fastest way to use the cores (1 x 16 tokens: 7.3 ms without a region, 11.6
#   with one; the break-even is between 96 and 128 rows).
# The BLAS thread count is controlled with threadpoolctl, an optional dependency: without it, or on cupy,
# or when the BLAS is already limited to one thread (e.g. by the caller's
# ``threadpoolctl.threadpool_limits(1)``), ``map_blocks`` runs the blocks one after another in the calling
# thread. Either way every block runs the same code: threading decides only where it runs.

import threading
from contextlib import contextmanager

_local = threading.local()  # .workers: threads of the open region (caller's thread); .inside: in a block
_pool = None
_pool_lock = threading.Lock()
_MIN_BLOCK_ROWS = 64  # rows: the smallest row block worth a thread of its own (so: a region from 128 rows;
# measured, MiniLM, region vs none: 64 rows 26.2 vs 18.3 ms, 96 rows 28.9 vs 25.8, 128 rows 32.3 vs 37.8)
_blas = None  # threadpoolctl controller for the BLAS libraries, False if threadpoolctl is missing


def _blas_controller():
    global _blas
    if _blas is None:
        try:
            from threadpoolctl import ThreadpoolController

            _blas = ThreadpoolController().select(user_api="blas")
        except Exception:  # threadpoolctl missing, or unable to inspect this process
            _blas = False
    return _blas


def _worker_pool(workers):
    global _pool
    with _pool_lock:
        if _pool is None or _pool._max_workers < workers:
            from concurrent.futures import ThreadPoolExecutor

            _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="refimpl")
    return _pool


@contextmanager
def cpu_threads(xp, rows=None):
    """A region in which :func:`map_blocks` spreads blocks over the cores, with the BLAS single-threaded.

    ``rows``: the number of token rows the region will work on; with fewer than two row blocks' worth
    (``2 * _MIN_BLOCK_ROWS``) no region is opened and the BLAS keeps its threads. The number of threads
    is the BLAS's thread count on entry. A no-op on cupy, without threadpoolctl, inside a block, or
    inside another region.
    """
    controller = _blas_controller() if xp is np else False
    small = rows is not None and rows < 2 * _MIN_BLOCK_ROWS
    if small or not controller or getattr(_local, "workers", 0) or getattr(_local, "inside", False):
        yield
        return
    workers = max((lib.num_threads for lib in controller.lib_controllers), default=1)
    limiter = controller.limit(limits=1) if workers > 1 else None
    _local.workers = workers
    try:
        yield
    finally:
        _local.workers = 0
        if limiter is not None:
            limiter.restore_original_limits()


def workers():
    """How many threads :func:`map_blocks` uses here (1 outside a :func:`cpu_threads` region)."""
    return 1 if getattr(_local, "inside", False) else max(1, getattr(_local, "workers", 0) or 1)


def map_blocks(fn, blocks):
    """Call ``fn(block)`` for every block, on the region's threads (the calling thread included).

    Blocks must be independent (each writes its own part of the outputs). Blocks are handed out in
    order as threads become free. Exceptions propagate to the caller after all threads have stopped.
    """
    blocks = list(blocks)
    n = min(workers(), len(blocks))
    if n <= 1:  # no region, or a single block: it runs here, on the region's single-threaded BLAS
        for block in blocks:
            fn(block)
        return
    queue = iter(blocks)
    lock = threading.Lock()

    def drain():
        was_inside, _local.inside = getattr(_local, "inside", False), True
        try:
            while True:
                with lock:
                    block = next(queue, None)
                if block is None:
                    return
                fn(block)
        finally:
            _local.inside = was_inside

    futures = [_worker_pool(n - 1).submit(drain) for _ in range(n - 1)]
    try:
        drain()
    finally:
        errors = [f.exception() for f in futures]
    for e in errors:
        if e is not None:
            raise e


def row_blocks(rows, xp, target=2048, minimum=_MIN_BLOCK_ROWS):
    """Split ``rows`` rows into slices for :func:`map_blocks`: a multiple of the thread count, of at most
    about ``target`` rows each, none shorter than ``minimum``. On cupy: one slice (the GPU wants it whole).

    Few large blocks beat many cache-sized ones: with one block per thread the matrix products run on
    more rows per call and every thread reads each weight matrix once (measured, all-MiniLM-L6-v2, two
    threads, interleaved runs: 32 x 128 tokens 675 ms with one block per thread, 752 ms with blocks of
    about 384 rows; 8 x 512 1032 vs 1085 ms; 8 x 128 183 vs 192 ms). GELU and the other elementwise
    work still go through cache-sized chunks inside a block (``ops.activations``).
    """
    if xp is not np:
        return [slice(0, rows)]
    n = max(1, -(-rows // target))
    w = workers()
    n = -(-n // w) * w
    n = max(1, min(n, rows // minimum))
    size = -(-rows // n)
    return [slice(start, min(start + size, rows)) for start in range(0, rows, size)]


def map_rows(fn, *arrays, width=None):
    """``fn`` applied to row blocks of ``arrays`` (each [..., D_i], same leading shape), assembled.

    For computations in which every row (token) is independent: the result equals ``fn(*arrays)``. The
    blocks (:func:`row_blocks`) go to the cores through :func:`map_blocks`. ``width``: the
    last dimension of ``fn``'s result (default: that of ``arrays[0]``), or a tuple of them when ``fn``
    returns a tuple. Returns [..., width] (or a tuple), of ``arrays[0]``'s dtype.
    """
    xp = array_module(arrays[0])
    lead = arrays[0].shape[:-1]
    rows = 1
    for d in lead:
        rows *= d
    blocks = row_blocks(rows, xp)
    if len(blocks) == 1:
        return fn(*arrays)
    flat = [a.reshape(rows, a.shape[-1]) for a in arrays]
    widths = width if isinstance(width, tuple) else (arrays[0].shape[-1] if width is None else width,)
    outs = [xp.empty((rows, w), dtype=arrays[0].dtype) for w in widths]

    def block(r):
        result = fn(*(a[r] for a in flat))
        for out, part in zip(outs, result if isinstance(width, tuple) else (result,)):
            out[r] = part

    map_blocks(block, blocks)
    outs = [out.reshape(lead + (out.shape[-1],)) for out in outs]
    return tuple(outs) if isinstance(width, tuple) else outs[0]
