"""bitsandbytes' blockwise dynamic 8-bit format: the code that double quantization stores absmax in.

The code (``create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8)``) is 256 sorted float32
values in [-1, 1]: 0, 1.0, and for each exponent e = 0..6 the 2^e midpoints of
``linspace(0.1, 1, 2^e + 1)`` scaled by ±10^(e-6)::

    e = 0:  ±1e-6 * 0.55                                   (2 values)
    e = 1:  ±1e-5 * [0.325, 0.775]                         (4 values)
    ...
    e = 6:  ±1.0  * 64 midpoints of linspace(0.1, 1, 65)   (128 values)
    plus 0.0 and 1.0                                       = 256, sorted ascending

built in float32 exactly as torch builds it (``torch_float32.linspace_float32``: fused multiply-add;
a float64 build differs in the last bit of 42 of the 256 values).

Blockwise quantization of a float32 vector A (``quantize_blockwise``, blocksize 256 for double quant):

    block b = A[b*256 : (b+1)*256]  (the last block may be shorter)
    absmax[b] = max |block|         (float32)
    q[i] = index of the code value nearest to A[i] / absmax[b]      (uint8, one byte per value)
    dequantized A[i] = code[q[i]] * absmax[b]                        (float32)

"Nearest" is where the implementations differ (``rounding``):

- ``"cpu"`` (default, bitsandbytes' CPU kernel, csrc/cpu_ops.cpp ``quantize_cpu``): x = A[i] * (1 / absmax)
  is clamped to [-1, 1] and mapped to one of 65536 bins, ``bin = trunc((x + 1) * 0.5 * 65535 + 0.5)`` in float32
  (whether the compiler fuses the last multiply-add changed no bin of 28,090 values placed at bin edges);
  a 65536-entry table gives each bin the number of code midpoints ``0.5 * (code[j] + code[j+1])`` below
  the bin's value ``-1 + 2 * bin / 65535``. A value close to a midpoint can land on the neighbour of its
  nearest code. A block whose absmax is 0 gets q = 0 everywhere.
- ``"nearest"``: the code value at the smallest |x - code| (ties to the lower index), as bitsandbytes'
  CUDA kernel rounds (docs/precision.md: the two differ on a few codes per matrix).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..errors import ConfigError
from .torch_float32 import linspace_float32

_F32 = np.float32
ROUNDINGS = ("cpu", "nearest")


@lru_cache(maxsize=None)
def _dynamic_map() -> np.ndarray:
    data = []
    for e in range(7):  # max_exponent_bits = 7; signed, total_bits = 8: 2^e + 1 boundaries per exponent
        bounds = linspace_float32(0.1, 1.0, 2 ** e + 1)
        means = (bounds[:-1] + bounds[1:]) / _F32(2.0)
        scale = _F32(10.0 ** (e - 6))
        data.append(scale * means)
        data.append(-scale * means)
    data.append(np.array([0.0, 1.0], _F32))
    code = np.sort(np.concatenate(data).astype(_F32))
    assert code.shape == (256,)
    code.setflags(write=False)
    return code


def create_dynamic_map() -> np.ndarray:
    """The 256-entry dynamic 8-bit code, float32, sorted (module docstring). A read-only array."""
    return _dynamic_map()


@lru_cache(maxsize=8)
def _lut(code_bytes: bytes) -> np.ndarray:
    """The CPU kernel's 65536-entry table: bin -> code index (build_quantize_lut)."""
    code = np.frombuffer(code_bytes, _F32)
    midpoints = (_F32(0.5) * (code[:-1] + code[1:])).astype(_F32)
    bins = np.arange(65536, dtype=_F32)
    values = (_F32(-1.0) + (_F32(2.0) * bins) / _F32(65535)).astype(_F32)
    return np.searchsorted(midpoints, values, side="left").astype(np.uint8)  # midpoints strictly below


def _cpu_indices(x, code):
    lut = _lut(np.ascontiguousarray(code, _F32).tobytes())
    x = np.clip(x, _F32(-1.0), _F32(1.0))
    bins = ((x + _F32(1.0)) * _F32(0.5) * _F32(65535) + _F32(0.5)).astype(_F32)
    return lut[np.trunc(bins).astype(np.int64)]


def _nearest_indices(x, code):
    right = np.clip(np.searchsorted(code, x, side="left"), 1, len(code) - 1)
    left = right - 1
    dist_left = np.abs(x - code[left])
    dist_right = np.abs(code[right] - x)
    return np.where(dist_right < dist_left, right, left).astype(np.uint8)


def quantize_blockwise(a, code=None, blocksize: int = 256, rounding: str = "cpu"):
    """Blockwise 8-bit quantization of float32 ``a`` (any shape): (q uint8 of a's shape, absmax float32 [blocks]).

    code: the 256 sorted code values (default :func:`create_dynamic_map`). rounding: "cpu" (bitsandbytes'
    CPU kernel, the default) or "nearest" (its CUDA kernel); see the module docstring.
    """
    if rounding not in ROUNDINGS:
        raise ConfigError(f"rounding={rounding!r}: choose 'cpu' (bitsandbytes' CPU lookup table) or 'nearest' (its CUDA kernel)")
    if blocksize <= 0:
        raise ConfigError(f"blocksize must be positive, got {blocksize}")
    code = create_dynamic_map() if code is None else np.asarray(code, _F32)
    a = np.asarray(a)
    flat = a.reshape(-1).astype(_F32)
    n = flat.size
    blocks = -(-n // blocksize)
    padded = np.zeros(blocks * blocksize, _F32)
    padded[:n] = flat
    absmax = np.abs(padded.reshape(blocks, blocksize)).max(axis=1).astype(_F32)  # padding zeros never win
    with np.errstate(divide="ignore", invalid="ignore"):  # an all-zero block: 0 * inf, replaced below
        inv = (_F32(1.0) / absmax).astype(_F32)
        x = (padded.reshape(blocks, blocksize) * inv[:, None]).reshape(-1)[:n]
    per = np.repeat(absmax, blocksize)[:n]
    if rounding == "cpu":
        q = np.where(per == 0, np.uint8(0), _cpu_indices(np.where(per == 0, _F32(0), x), code))
    else:
        x = np.where(per == 0, _F32(0), x) if np.any(per == 0) else x
        q = _nearest_indices(np.clip(x, _F32(-1), _F32(1)), code)
        q = np.where(per == 0, np.uint8(0), q)
    return q.astype(np.uint8).reshape(a.shape), absmax


def dequantize_blockwise(q, absmax, code=None, blocksize: int = 256) -> np.ndarray:
    """code[q] * absmax[block], float32, q's shape (bitsandbytes' dequantize_blockwise)."""
    code = create_dynamic_map() if code is None else np.asarray(code, _F32)
    q = np.asarray(q)
    flat = q.reshape(-1)
    scale = np.repeat(np.asarray(absmax, _F32), blocksize)[:flat.size]
    return (code[flat] * scale).astype(_F32).reshape(q.shape)
