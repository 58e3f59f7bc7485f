"""Worker threads for the fast kernels: one region per forward, blocks of rows (or heads) per core.

Nothing here changes a result: a block runs the same code wherever it runs. The reference kernels
(``refimpl.ops``) never use this module.

NumPy runs each ufunc on one core; the BLAS runs each matrix product on all of them. The model's work
splits into independent blocks (rows of tokens; batch elements x heads in attention), so instead of
relying on the BLAS alone, ``cpu_threads`` opens a region in which ``map_blocks`` hands the blocks to
one Python thread per core (NumPy releases the GIL inside ufuncs and matmul) while the BLAS runs
single-threaded for the whole region. Two rules, both measured (docs/performance.md, "Two cores for
everything"):
- Never two thread pools at once. After every multi-threaded product OpenBLAS's worker threads spin
  for a while, taking a core's share from the Python threads. So a region covers a whole forward,
  embeddings to pooler, and nothing inside it switches the BLAS back to several threads.
- Small inputs get no region: below two row blocks there is nothing to split, and the BLAS's own
  threads are then the fastest way to use the cores (the break-even is between 96 and 128 rows).
The BLAS thread count is controlled with threadpoolctl (a dependency). Where threadpoolctl cannot
inspect the process, on cupy, or when the BLAS is already limited to one thread (e.g. by the caller's
``threadpoolctl.threadpool_limits(1)``), ``map_blocks`` runs the blocks one after another in the calling
thread. Either way every block runs the same code: threading decides only where it runs.
"""

import os
import threading
import time
from contextlib import contextmanager

import numpy as np

from ..backend import array_module

_local = threading.local()  # .workers: threads of the open region (caller's thread); .inside: in a block
_pool = None
_pool_lock = threading.Lock()
_MIN_BLOCK_ROWS = 64  # rows: the smallest row block worth a thread of its own (so: a region from 128 rows)
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
    is the BLAS's thread count on entry, less the cores other processes keep busy right now
    (:func:`free_cores`): threads that wait on each other collapse when a core is taken (a block on a
    descheduled thread holds up the whole region), so a contended machine gets fewer threads, down to
    one core's worth (one BLAS thread, no worker threads). A no-op on cupy, without threadpoolctl,
    inside a block, or inside another region.
    """
    controller = _blas_controller() if xp is np else False
    if not controller or getattr(_local, "workers", 0) or getattr(_local, "inside", False):
        yield
        return
    workers = max((lib.num_threads for lib in controller.lib_controllers), default=1)
    free = free_cores(workers)
    small = rows is not None and rows < 2 * _MIN_BLOCK_ROWS
    blas, python = (free, 1) if small else (1, free)  # BLAS threads, worker threads
    if small and free == workers:  # nothing to split and nothing in the way: the BLAS keeps its threads
        yield
        return
    limiter = controller.limit(limits=blas) if blas != workers else None
    _local.workers = python
    try:
        yield
    finally:
        _local.workers = 0
        if limiter is not None:
            limiter.restore_original_limits()


try:
    _CPUS = len(os.sched_getaffinity(0))
except (AttributeError, OSError):  # not Linux
    _CPUS = os.cpu_count() or 1


_FREE_EVERY_S = 0.02  # a reading is reused this long (reading costs ~40 us; a decode step ~3 ms)
_free_readings = (-1.0, _CPUS, _CPUS)  # (time of the last reading, the last two readings)


def free_cores(wanted):
    """How many of ``wanted`` threads have a core to themselves now: the machine's cores less the
    runnable threads of other processes (Linux: /proc/loadavg's running count, less this process's own
    running threads, e.g. a BLAS worker still spinning). Read at most every ``_FREE_EVERY_S``; a machine
    counts as contended only when two readings in a row say so (a kernel thread that runs for a moment
    is not a neighbour). At least 1; ``wanted`` where /proc is missing."""
    global _free_readings
    now = time.monotonic()
    if now - _free_readings[0] > _FREE_EVERY_S:
        _free_readings = (now, _free_readings[2], _free_cores_now())
    return max(1, min(wanted, max(_free_readings[1:])))


def _own_running():
    """How many of this process's threads are running or runnable (state R)."""
    own = 0
    for task in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{task}/stat") as f:
                own += f.read().rsplit(")", 1)[1].split()[0] == "R"
        except OSError:  # the thread ended meanwhile
            pass
    return own


def _free_cores_now():
    """The machine's cores less other processes' runnable threads, now (or all of them without /proc).
    This process's own running threads are counted before and after the machine's, and the larger
    count is taken, so that one of ours going to sleep in between is not taken for a neighbour."""
    try:
        before = _own_running()
        with open("/proc/loadavg") as f:
            running = int(f.read().split()[3].split("/")[0])
        own = max(before, _own_running())
    except (OSError, ValueError, IndexError):
        return _CPUS
    return _CPUS - max(0, running - own)


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
    more rows per call and every thread reads each weight matrix once (docs/performance.md, "Row
    blocks"). GELU and the other elementwise work still go through cache-sized chunks inside a block
    (``kernels.activations``).
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
    if workers() == 1:  # no region (or inside a block): the whole call, here
        return fn(*arrays)
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
