"""bitsandbytes' 4-bit formats, NF4 and FP4: blockwise absmax scaling, 16-value codebooks, two values a byte.

Codebooks (float32; ``code[nibble]``)::

    nibble   0        1        2        3        4        5        6        7
    NF4   -1.0     -0.69619 -0.52507 -0.39492 -0.28444 -0.18477 -0.09105  0.0
    FP4    0.0      0.00521  0.66667  1.0      0.33333  0.5      0.16667  0.25

    nibble   8        9        10       11       12       13       14       15
    NF4    0.07958  0.16093  0.24611  0.33792  0.44071  0.56262  0.72296  1.0
    FP4    0.0     -0.00521 -0.66667 -1.0     -0.33333 -0.5     -0.16667 -0.25

NF4 is bitsandbytes' list of normal-distribution quantiles (exact float32 values in :data:`NF4_CODE`);
FP4 is the list [0, 0.0625, 8, 12, 4, 6, 2, 3, 0, -0.0625, -8, -12, -4, -6, -2, -3] divided by 12 in
float32 (bit 3 is the sign; nibble 8 is +0, bitsandbytes writes ``-0`` as the integer 0).

Block layout. The weight W (any shape, usually [out, in]) is flattened in C order and cut into blocks of
``blocksize`` consecutive values (32, 64 (default), 128, ..., 4096); a block may span rows, and the last
block may be shorter::

    flat:    | w0 ... w63 | w64 ... w127 | ... | w(64k) ... w(n-1) |
    absmax:  |  a0        |  a1          | ... |  ak               |    float32, max |w| of the block

Quantization (bitsandbytes' CPU path, backends/default/ops.py ``quantize_4bit``), in float32:

    x = clamp(w * (1 / max(a, 1e-38)), -1, 1)      full blocks: multiply by the reciprocal
    x = clamp(w / max(a, 1e-38), -1, 1)            the short last block: a division (last bit can differ),
                                                   and its absmax is stored clamped: 1e-38 for a zero tail
    q = the codebook entry whose interval holds x, intervals cut at the midpoints of the sorted codebook
        ``(c[i] + c[i+1]) / 2``; a value equal to a midpoint goes to the lower entry. For FP4 the sorted
        order puts nibble 0 (+0) before nibble 8 (+0) with midpoint 0: x = 0 gives nibble 0, and
        0 < x < 0.0026 gives nibble 8.

Nibble order. Two values per byte, the **first value in the high nibble**::

    byte j = (q[2j] << 4) | q[2j+1]        an odd count is padded with one zero value (nibble of x = 0)

bitsandbytes stores the bytes as a [ceil(n/2), 1] uint8 tensor (``quant_storage`` other than uint8 views
the same bytes as that dtype). Dequantization: ``w = code[q] * absmax[block]`` in float32, then cast to the
state's dtype.

Double quantization (``compress_statistics=True``, transformers' ``bnb_4bit_use_double_quant``) stores
absmax itself in 8 bits::

    offset  = mean(absmax)                       float32, in torch's summation order (torch_float32)
    q8, a2  = quantize_blockwise(absmax - offset, blocksize=256)     dynamic 8-bit code (dynamic8)
    state.absmax = q8 (uint8), state.offset = offset, state.state2 = (absmax=a2, code=dynamic map, 256)
    absmax recovered = code8[q8] * a2[block] + offset                float32

NaN policy: bitsandbytes' result for a NaN or infinite weight is not defined by its format (the CPU
kernels' max ignores or propagates NaN depending on the instruction set); refimpl refuses such weights
with an error naming how many and where.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from ..errors import ConfigError
from . import dynamic8
from .halfdtypes import dtype_of
from .torch_float32 import mean_float32

_F32 = np.float32
BLOCKSIZES = (32, 64, 128, 256, 512, 1024, 2048, 4096)
QUANT_TYPES = ("nf4", "fp4")
SOURCE_DTYPES = ("float32", "float16", "bfloat16")

NF4_CODE = np.array([
    -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
    -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
    0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
    0.7229568362236023, 1.0,
], dtype=_F32)
FP4_CODE = (np.array([0, 0.0625, 8.0, 12.0, 4.0, 6.0, 2.0, 3.0, 0, -0.0625, -8.0, -12.0, -4.0, -6.0, -2.0, -3.0],
                     dtype=_F32) / _F32(12.0)).astype(_F32)
for _c in (NF4_CODE, FP4_CODE):
    _c.setflags(write=False)


def codebook(quant_type: str) -> np.ndarray:
    """The 16 float32 values of "nf4" or "fp4", indexed by nibble."""
    check_quant_type(quant_type)
    return NF4_CODE if quant_type == "nf4" else FP4_CODE


def _bounds(quant_type):
    """(midpoints of the sorted codebook, sorted position -> nibble)."""
    code = codebook(quant_type)
    order = np.argsort(code, kind="stable")  # FP4's two zeros: nibble 0 before nibble 8
    s = code[order]
    return ((s[:-1] + s[1:]) / _F32(2)).astype(_F32), order.astype(np.uint8)


@dataclass
class QuantState:
    """bitsandbytes' ``QuantState``, fields as numpy values.

    absmax: float32 [blocks] (or uint8 [blocks] with double quantization), shape: the weight's shape,
    code: the 16-entry codebook (the 256-entry dynamic map for ``state2``), blocksize, quant_type,
    dtype: the dtype the weight had and dequantizes to ("float32", "float16", "bfloat16"),
    offset: float32 scalar and state2: the nested QuantState (absmax float32, code, blocksize 256) with
    double quantization, else None.
    """

    absmax: np.ndarray
    shape: tuple
    code: np.ndarray
    blocksize: int
    quant_type: Optional[str] = None
    dtype: str = "float32"
    offset: Optional[np.float32] = None
    state2: Optional["QuantState"] = None
    extra: dict = field(default_factory=dict)

    @property
    def nested(self) -> bool:
        return self.state2 is not None


def check_quant_type(quant_type):
    if quant_type not in QUANT_TYPES:
        raise ConfigError(f"quant_type={quant_type!r} does not exist; bitsandbytes' 4-bit types are 'nf4' and 'fp4'")


def check_blocksize(blocksize):
    if blocksize not in BLOCKSIZES:
        raise ConfigError(f"blocksize={blocksize!r} is not one bitsandbytes accepts; choose one of {BLOCKSIZES} (64 is its default)")


def _dtype_name(w):
    name = w.dtype.name
    if name not in SOURCE_DTYPES:
        raise ConfigError(
            f"4-bit quantization takes float32, float16 or bfloat16 weights (bitsandbytes' rule), got {name}; "
            "convert first, e.g. w.astype(np.float32)"
        )
    return name


def check_finite(w, name="weight"):
    bad = ~np.isfinite(np.asarray(w, _F32))
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ConfigError(
            f"{name} holds {int(bad.sum())} NaN or infinite value(s) (first at index {first}); bitsandbytes' "
            "quantized value for them is undefined, so refimpl refuses to quantize it: fix or drop the weight"
        )


def quantize_4bit(w, blocksize: int = 64, quant_type: str = "nf4", compress_statistics: bool = False,
                  quant_storage="uint8", offset_threads: int = 1, rounding: str = "cpu"):
    """Quantize ``w`` to 4 bits: ``(packed, state)`` as ``bitsandbytes.functional.quantize_4bit`` on CPU.

    packed: uint8 [ceil(n/2), 1] (viewed as ``quant_storage`` if that is not uint8); state: QuantState.
    offset_threads: torch's thread count bitsandbytes ran under, which decides the double-quant offset's
    summation order for more than 32768 blocks (torch_float32.sum_float32). rounding: the double-quant
    8-bit step, "cpu" (bitsandbytes' CPU table, default) or "nearest" (its CUDA kernel).
    """
    check_blocksize(blocksize)
    check_quant_type(quant_type)
    w = np.asarray(w)
    dtype = _dtype_name(w)
    check_finite(w)
    flat = w.reshape(-1).astype(_F32)
    n = flat.size
    full = n - n % blocksize
    blocks = full // blocksize
    head = flat[:full].reshape(blocks, blocksize)
    absmax = np.abs(head).max(axis=1).astype(_F32) if blocks else np.zeros(0, _F32)
    inv = (_F32(1.0) / np.maximum(absmax, _F32(1e-38))).astype(_F32)
    x = np.clip(head * inv[:, None], _F32(-1), _F32(1)).reshape(-1)
    if full < n:  # the short last block: divided, not multiplied by the reciprocal
        tail_max = np.maximum(np.abs(flat[full:]).max(), _F32(1e-38)).astype(_F32)
        absmax = np.concatenate([absmax, [tail_max]]).astype(_F32)  # stored clamped, unlike full blocks
        x = np.concatenate([x, np.clip(flat[full:] / tail_max, _F32(-1), _F32(1))]).astype(_F32)
    if x.size % 2:
        x = np.concatenate([x, np.zeros(1, _F32)])
    bounds, order = _bounds(quant_type)
    q = order[np.searchsorted(bounds, x, side="left")]
    packed = ((q[0::2] << 4) | q[1::2]).astype(np.uint8).reshape(-1, 1)
    packed = _as_storage(packed, quant_storage)
    code = codebook(quant_type).copy()
    if not compress_statistics:
        return packed, QuantState(absmax, tuple(w.shape), code, blocksize, quant_type, dtype)
    offset = mean_float32(absmax, threads=offset_threads)
    q8, absmax2 = dynamic8.quantize_blockwise((absmax - offset).astype(_F32), blocksize=256, rounding=rounding)
    state2 = QuantState(absmax2, tuple(absmax.shape), dynamic8.create_dynamic_map().copy(), 256, None, "float32")
    return packed, QuantState(q8, tuple(w.shape), code, blocksize, quant_type, dtype, offset, state2)


def _as_storage(packed, quant_storage):
    name = np.dtype(quant_storage).name if not isinstance(quant_storage, str) else quant_storage
    if name == "uint8":
        return packed
    dtype = dtype_of(name)
    raw = packed.reshape(-1)
    if raw.size % dtype.itemsize:
        raise ConfigError(f"quant_storage={name}: {raw.size} packed bytes are not a whole number of {name} values")
    return raw.view(dtype).reshape(-1, 1)


def absmax_of(state: QuantState) -> np.ndarray:
    """The float32 per-block absmax of ``state``, undoing double quantization if present."""
    if not state.nested:
        return np.asarray(state.absmax, _F32)
    s2 = state.state2
    return (dynamic8.dequantize_blockwise(state.absmax, s2.absmax, s2.code, s2.blocksize) + _F32(state.offset)).astype(_F32)


def unpack_nibbles(packed, n: int) -> np.ndarray:
    """The first ``n`` 4-bit codes of ``packed`` (any storage dtype), high nibble first. -> uint8 [n]."""
    raw = np.ascontiguousarray(packed).reshape(-1).view(np.uint8)
    q = np.empty(raw.size * 2, np.uint8)
    q[0::2] = raw >> 4
    q[1::2] = raw & 0x0F
    return q[:n]


def dequantize_4bit(packed, state: QuantState, dtype=None) -> np.ndarray:
    """The weight back from ``(packed, state)``: ``code[q] * absmax[block]`` in float32, cast to ``dtype``
    (default the state's dtype), shape ``state.shape``.

    This is the format's definition and bitsandbytes' generic path. Known difference: bitsandbytes 0.50.2's
    AVX-512 CPU kernel reads absmax per row (``row * (in // blocksize) + col // blocksize``), which is
    wrong when the last dimension is a multiple of 16 but not of ``blocksize`` (docs/precision.md).
    """
    n = int(np.prod(state.shape))
    q = unpack_nibbles(packed, n)
    scale = np.repeat(absmax_of(state), state.blocksize)[:n]
    w = (state.code[q] * scale).astype(_F32).reshape(state.shape)
    return cast(w, dtype or state.dtype)


def cast(x, dtype):
    """float32 ``x`` rounded to ``dtype`` ("float32", "float16", "bfloat16"; round to nearest even)."""
    name = np.dtype(dtype).name if not isinstance(dtype, str) else dtype
    return x.astype(dtype_of(name), copy=False)
