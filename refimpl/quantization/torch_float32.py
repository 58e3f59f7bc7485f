"""The float32 arithmetic of torch's CPU kernels, where a quantization format inherits it.

bitsandbytes builds two of its format constants with torch: the dynamic 8-bit code of double quantization
(``torch.linspace``) and the double-quantization offset (``absmax.mean()``). Their last bits depend on
the order and fusion of torch's float32 operations, so refimpl does them the same way (measured against
torch 2.13 on an AVX-512 CPU; tests/test_quant_formats.py checks each one):

- ``torch.linspace(start, end, steps)`` (aten/src/ATen/native/cpu/RangeFactoriesKernel.cpp):
  ``step = (end - start) / (steps - 1)``; element i is ``start + step * i`` below ``steps // 2`` and
  ``end - step * (steps - 1 - i)`` from there on, each evaluated as one **fused multiply-add** (the
  vectorised builds of torch are compiled with FMA contraction): a single rounding, not two.
- ``x.sum()`` / ``x.mean()`` of a contiguous float32 vector (aten/src/ATen/native/cpu/SumKernel.cpp,
  ``cascade_sum``): float32 accumulators throughout, in this order:

      lanes    the vector is read as rows of W = 8 lanes (measured: torch 2.13's sum runs 8 float32
               lanes on an AVX-512 CPU as on AVX2); the last n mod W elements are left for the end
      ilp      the rows are split into 4 interleaved streams (row r goes to stream r mod 4); rows
               beyond the last full group of 4 go to stream 0 at the end
      cascade  each stream is summed by a 4-level cascade: level 0 adds 2^p consecutive rows
               (p = max(4, ceil_log2(rows / 4) // 4)), then is added into level 1 and cleared; level 1
               into level 2 every 2^p level-0 flushes, and so on; at the end levels 1..3 are added into 0
      combine  stream 0 += streams 1, 2, 3 (lane-wise); then a scalar starting at 0 adds the leftover
               elements in order, then the W lanes in order
      mean     the sum divided by float32(n)

  A vector shorter than W is summed by the same ilp + cascade over scalars. Above 32768 elements
  (torch's GRAIN_SIZE) with more than one torch thread the vector is cut into
  T = min(threads, ceil(n / 32768)) equal chunks (the last shorter), each summed as above, and the
  chunk sums added by the same procedure: ``threads`` says how many torch used.
"""

from __future__ import annotations

import numpy as np

_F32, _F64 = np.float32, np.float64
GRAIN_SIZE = 32768  # at::internal::GRAIN_SIZE


def fma32(a, b, c):
    """a * b + c for float32 values with one rounding (IEEE fma), on numpy arrays.

    The product of two float32 values is exact in float64; the float64 sum is rounded once more, so a
    result lying exactly halfway between two float32 values is corrected with the sum's exact error
    (TwoSum) to round as the single-rounding fma does.
    """
    a, b, c = (np.asarray(v, _F32).astype(_F64) for v in (a, b, c))
    p = a * b  # exact
    s = p + c
    bp = s - p
    err = (p - (s - bp)) + (c - bp)  # s + err == p + c exactly
    r = s.astype(_F32)
    rd = r.astype(_F64)
    toward = np.where(s > rd, np.inf, -np.inf).astype(_F32)
    other = np.nextafter(r, toward).astype(_F64)
    tie = (s != rd) & (s == (rd + other) / 2) & (err != 0)
    if np.any(tie):
        up = np.maximum(rd, other).astype(_F32)
        down = np.minimum(rd, other).astype(_F32)
        r = np.where(tie, np.where(err > 0, up, down), r)
    return r.astype(_F32)


def linspace_float32(start: float, end: float, steps: int) -> np.ndarray:
    """``torch.linspace(start, end, steps, dtype=torch.float32)`` bit for bit (see module docstring)."""
    start32, end32 = _F32(start), _F32(end)
    step = _F32((end32 - start32) / _F32(steps - 1)) if steps > 1 else _F32(0)
    i = np.arange(steps)
    half = steps // 2
    low = fma32(np.full(steps, step), i.astype(_F32), np.full(steps, start32))
    high = fma32(np.full(steps, -step), (steps - 1 - i).astype(_F32), np.full(steps, end32))
    return np.where(i < half, low, high).astype(_F32)


def _ceil_log2(x: int) -> int:
    return 1 if x <= 2 else int(x - 1).bit_length()


def _sequential(acc, rows):
    """acc + rows[0] + rows[1] + ... left to right in float32 (np.add.accumulate is strictly sequential)."""
    if len(rows) == 0:
        return acc
    return np.add.accumulate(np.concatenate([acc[None], rows]), axis=0, dtype=_F32)[-1]


def _multi_row_sum(x):
    """SumKernel's ``multi_row_sum``: x [size, nrows, ...] -> [nrows, ...], a 4-level cascade over size."""
    size = x.shape[0]
    levels = 4
    power = max(4, _ceil_log2(size) // levels)
    step, mask = 1 << power, (1 << power) - 1
    acc = np.zeros((levels,) + x.shape[1:], _F32)
    i = 0
    while i + step <= size:
        acc[0] = _sequential(acc[0], x[i:i + step])
        i += step
        for j in range(1, levels):
            acc[j] = acc[j] + acc[j - 1]
            acc[j - 1] = 0
            if i & (mask << (j * power)):
                break
    acc[0] = _sequential(acc[0], x[i:])
    for j in range(1, levels):
        acc[0] = acc[0] + acc[j]
    return acc[0]


def _row_sum(x):
    """SumKernel's ``row_sum``: x [size, ...] -> [...] through 4 interleaved streams."""
    size = x.shape[0]
    groups = size // 4
    partial = _multi_row_sum(x[:groups * 4].reshape((groups, 4) + x.shape[1:]))
    partial[0] = _sequential(partial[0], x[groups * 4:])
    for k in range(1, 4):
        partial[0] = partial[0] + partial[k]
    return partial[0]


def _serial_sum(x, width):
    n = x.shape[0]
    if n < width:
        return _F32(_F32(0) + _row_sum(x))
    rows = n // width
    lanes = _row_sum(x[:rows * width].reshape(rows, width))  # [W]
    total = _sequential(np.zeros((), _F32), x[rows * width:])
    total = _sequential(total, lanes)
    return _F32(_F32(0) + total)


def sum_float32(x, width: int = 8, threads: int = 1) -> np.float32:
    """``x.sum()`` of a contiguous float32 tensor on torch's CPU, bit for bit (module docstring).

    width: float32 lanes of torch's CPU sum kernel (8, measured on AVX2 and AVX-512 CPUs). threads: torch's thread
    count when it summed (``torch.get_num_threads()``); it matters only above 32768 elements.
    """
    x = np.ascontiguousarray(np.asarray(x, _F32).reshape(-1))
    n = x.shape[0]
    if n < GRAIN_SIZE or threads <= 1:
        return _serial_sum(x, width)
    chunks = min(threads, -(-n // GRAIN_SIZE))
    size = -(-n // chunks)
    partial = np.zeros(threads, _F32)
    for t in range(chunks):
        if t * size < n:
            partial[t] = _serial_sum(x[t * size:min(n, (t + 1) * size)], width)
    return _serial_sum(partial, width)


def mean_float32(x, width: int = 8, threads: int = 1) -> np.float32:
    """``x.mean()`` of a float32 tensor on torch's CPU: the cascade sum divided by float32(n)."""
    x = np.asarray(x, _F32).reshape(-1)
    return _F32(sum_float32(x, width, threads) / _F32(x.shape[0]))
