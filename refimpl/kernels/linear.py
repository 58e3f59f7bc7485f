"""``ops.linear.linear``, fast: the product form chosen by row count and weight layout, rows over threads.

The values are those of x W^T + b whichever form runs; only the order of the BLAS's work differs, so
float32 results agree with the reference to rounding (tests/test_kernels.py, tolerance in
tests/tolerances.py).
"""

import re

import numpy as np

from ..backend import array_module
from ..ops import linear as reference
from ..ops.precision import is_half
from .threads import map_rows

# Below this many rows, the product is handed to the BLAS as (W x^T)^T: OpenBLAS runs a GEMM with few
# rows and a transposed [in, out] operand slowly (it re-packs the whole weight for a few rows), and the
# transposed form faster (docs/performance.md, "linear").
_FEW_ROWS = 64


def linear(x, weight, bias=None):
    """y = x W^T + b (``ops.linear.linear``).   x [..., I], weight [O, I], bias [O] -> y [..., O] (row-major).

    Row blocks go to the worker threads of an open region (``threads.map_rows``). How each block's
    product runs depends on how the weight is stored (the values are the same either way):
    - input-major (``weight.T`` is row-major, see :func:`input_major`): x @ W^T is a plain product of two
      row-major matrices, the form the BLAS runs fastest at every row count of an encoder;
    - as checkpoints store it, [O, I] row-major: with few rows (numpy), the product is computed as
      (W x^T)^T, which OpenBLAS runs faster there; the bias is then added while the transposed result
      is copied back to row-major order. Otherwise W^T goes to the BLAS as a transposed operand.
    A quantized weight computes its own product, as in the reference (``weight.linear(x, bias)``).
    Half precision (float16, bfloat16) runs the reference, which states the rule (float32 sums, the bias
    added before one rounding); the weight may be stored input-major, which changes no value.
    """
    if hasattr(weight, "linear") or is_half(x.dtype):
        return reference.linear(x, weight, bias)
    return map_rows(lambda rows: _linear(rows, weight, bias), x, width=weight.shape[0])


def _linear(x, weight, bias):
    xp = array_module(x)
    lead, i = x.shape[:-1], x.shape[-1]
    rows = x.size // max(1, i)
    x2 = x.reshape(rows, i)  # one 2-D product: numpy runs [B, S, I] @ W^T as B separate products
    if xp is np and 0 < rows < _FEW_ROWS and not is_input_major(weight):
        yt = weight @ x2.T  # [O, rows]
        y = np.add(yt.T, bias, order="C") if bias is not None else np.ascontiguousarray(yt.T)
    else:
        y = x2 @ weight.T  # [rows, O]
        if bias is not None:
            y += bias
    return y.reshape(lead + (weight.shape[0],))


def is_input_major(weight):
    """Is ``weight`` [O, I] a view of a row-major [I, O] array (see :func:`input_major`)?"""
    return weight.ndim == 2 and weight.T.flags.c_contiguous and not weight.flags.c_contiguous


def input_major(weight, dtype=None):
    """The same matrix [O, I], stored input-major: a view of a new row-major [I, O] array.

    With the weight laid out as [I, O], x W^T is a product of two row-major matrices, which OpenBLAS
    runs faster than the transposed operand at the row-block sizes of an encoder; decoders keep the
    checkpoint layout, faster for the 1-32 rows of a decode step (docs/performance.md). Copied block by
    block (a transposing copy with large strides is slow).
    """
    out = np.empty(weight.shape[::-1], dtype=dtype or weight.dtype)  # [I, O]
    step = 256
    for i in range(0, weight.shape[0], step):
        out[:, i:i + step] = weight[i:i + step].T
    return out.T


# The projection matrices of an encoder layer (any prefix): Q, K, V, attention output, intermediate, output.
ENCODER_PROJECTION = re.compile(
    r"(^|\.)encoder\.layer\.\d+\.(attention\.self\.(query|key|value)|attention\.output\.dense|intermediate\.dense"
    r"|output\.dense)\.weight$"
)


def wants_input_major(name, arr, xp, is_decoder):
    """Is parameter ``name`` one the fast set stores input-major: an encoder's layer projection on numpy."""
    return xp is np and not is_decoder and arr.ndim == 2 and ENCODER_PROJECTION.search(name) is not None
