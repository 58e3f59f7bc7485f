"""``ops.activations``, fast: the two GELUs chunk by chunk in cache, chunks over threads; erf by table.

Only the activations that matter for speed have a fast form (the exact GELU of BERT and the tanh GELU);
every other ``hidden_act`` runs its reference definition.
"""

import math

import numpy as np

from ..backend import array_module
from ..ops import activations as reference
from ..ops.precision import is_half
from .erf import erf
from .threads import map_blocks, scratch, workers

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2 = 1.0 / math.sqrt(2.0)
_CHUNK = 131072  # elements per chunk (numpy): 512 KiB of float32, in L2 with its temporaries (see erf's chunk)


def gelu(x):
    """Exact GELU, x * 0.5 * (1 + erf(x / sqrt(2))) (``ops.activations.gelu``), computed as
    0.5 (1 + erf(x * (1/sqrt 2))) x: chunk by chunk, each chunk's temporaries (erf's included) in L1/L2
    instead of streaming through memory once per operation."""
    return _chunked(_gelu_chunk, x)


def gelu_tanh(x):
    """0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) (``ops.activations.gelu_tanh``), chunked like gelu."""
    return _chunked(_gelu_tanh_chunk, x)


def _gelu_chunk(x, out):
    xp = array_module(x)
    y = x * _INV_SQRT_2 if xp is not np else np.multiply(x, _INV_SQRT_2, out=scratch("gelu", x.size, x.dtype))
    y = erf(y, out=y) if xp is np and y.dtype == np.float32 else erf(y)
    y += 1.0
    y *= 0.5
    xp.multiply(y, x, out=out)


def _gelu_tanh_chunk(x, out):
    xp = array_module(x)
    y = x * x
    y *= x
    y *= 0.044715
    y += x
    y *= _SQRT_2_OVER_PI
    xp.tanh(y, out=y)
    y += 1.0
    y *= 0.5
    xp.multiply(y, x, out=out)


def _chunked(fn, x):
    """``fn(chunk, out)`` (elementwise) over consecutive chunks of ``x`` into a new array; the chunks are
    split into one contiguous part per worker thread (``threads.map_blocks``). On cupy: one chunk."""
    xp = array_module(x)
    out = xp.empty(x.shape, dtype=x.dtype)
    flat_x, flat_out = xp.ascontiguousarray(x).reshape(-1), out.reshape(-1)
    if xp is not np:
        fn(flat_x, flat_out)
        return out
    n = flat_x.size
    parts = max(1, min(workers(), n // _CHUNK))
    size = -(-n // parts)

    def part(start):
        for c in range(start, min(start + size, n), _CHUNK):
            end = min(c + _CHUNK, start + size, n)
            fn(flat_x[c:end], flat_out[c:end])

    map_blocks(part, range(0, n, size))
    return out


FAST = {"gelu": gelu, "gelu_tanh": gelu_tanh}


def get_activation(name):
    """The fast form of ``hidden_act`` = ``name`` where there is one, else its reference definition.
    Half-precision inputs run the reference definition, which carries the half rule (refimpl.ops.precision)."""
    ref = reference.get_activation(name)
    fast = FAST.get(ref.__name__)
    if fast is None:
        return ref

    def activation(x):
        return ref(x) if is_half(x.dtype) else fast(x)

    activation.__name__ = ref.__name__
    return activation
