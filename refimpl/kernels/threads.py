"""Worker threads for the fast kernels: one region per forward, blocks of rows (or heads) per core.

Nothing here changes a result: a block runs the same code wherever it runs. The reference kernels
(``refimpl.ops``) never use this module.

NumPy runs each ufunc on one core; the BLAS runs each matrix product on all of them. The model's work
splits into independent blocks (rows of tokens; batch elements x heads in attention), so instead of
relying on the BLAS alone, ``cpu_threads`` opens a region in which ``map_blocks`` hands the blocks to
one Python thread per core (NumPy releases the GIL inside ufuncs and matmul) while the BLAS runs
single-threaded for the whole region. Two rules, both measured (docs/performance.md):
- Never two thread pools at once. After every multi-threaded product OpenBLAS's worker threads spin
  for about 0.1 s (measured: 0.10 s of CPU burnt in a 0.5 s sleep after one 512^3 product, whatever
  the thread count is set to afterwards); a spinning worker takes a third of a core from the Python
  threads (a 4 x 64 forward ran in 106 ms instead of 72 because the pooler's 4-row product ran on two
  BLAS threads just before the next forward). So a region covers a whole forward, embeddings to
  pooler, and nothing inside it switches the BLAS back to several threads.
- Small inputs get no region: below two row blocks there is nothing to split, and the BLAS's own
  threads are then the fastest way to use the cores (1 x 16 tokens: 7.3 ms without a region, 11.6
  with one; the break-even is between 96 and 128 rows).
The BLAS thread count is controlled with threadpoolctl, an optional dependency: without it, or on cupy,
or when the BLAS is already limited to one thread (e.g. by the caller's
``threadpoolctl.threadpool_limits(1)``), ``map_blocks`` runs the blocks one after another in the calling
thread. Either way every block runs the same code: threading decides only where it runs.
"""

import threading
from contextlib import contextmanager

import numpy as np

from ..backend import array_module

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
