"""Affine map with weights [out, in] as PyTorch and checkpoints define them (stored that way, or input-major)."""

import numpy as np

from ..backend import array_module

# Below this many rows, the product is handed to the BLAS as (W x^T)^T: OpenBLAS runs a GEMM with few
# rows and a transposed [in, out] operand slowly (it re-packs the whole weight for a few rows), and the
# transposed form faster. Measured over MiniLM-shaped weights (4 of 384 x 384, 384 x 1536, 1536 x 384;
# cold caches), one thread: 32 rows 15.0 vs 12.2 ms, 64 rows 21.3 vs 21.4, 128 rows 33.9 vs 38.6 (the
# copy back to row-major order then costs more than the faster product saves); two threads: 32 rows
# 20.0 vs 7.5, 64 rows equal, 128 rows 18.0 vs 23.7.
_FEW_ROWS = 64


def linear(x, weight, bias=None):
    """y = x W^T + b.   x [..., I], weight [O, I], bias [O] -> y [..., O] (row-major).

    ``weight.T`` is a view: matmul hands it to the BLAS without a copy. How the product runs depends on
    how the weight is stored (the values are the same either way):
    - input-major (``weight.T`` is row-major, see :func:`input_major`): x @ W^T is a plain product of two
      row-major matrices, the form the BLAS runs fastest at every row count of an encoder;
    - as checkpoints store it, [O, I] row-major: with few rows (numpy), the product is computed as
      (W x^T)^T, which OpenBLAS runs faster there; the bias is then added while the transposed result
      is copied back to row-major order. Otherwise W^T goes to the BLAS as a transposed operand.
    """
    xp = array_module(x)
    rows = x.size // max(1, x.shape[-1])
    if xp.__name__ == "numpy" and 0 < rows < _FEW_ROWS and not is_input_major(weight):
        yt = weight @ x.reshape(rows, x.shape[-1]).T  # [O, rows]
        y = xp.add(yt.T, bias, order="C") if bias is not None else xp.ascontiguousarray(yt.T)
        return y.reshape(x.shape[:-1] + (weight.shape[0],))
    y = x @ weight.T  # [..., O]
    if bias is not None:
        y += bias
    return y


def is_input_major(weight):
    return weight.ndim == 2 and weight.T.flags.c_contiguous and not weight.flags.c_contiguous


def input_major(weight, dtype=None):
    """The same matrix [O, I], stored input-major: a view of a new row-major [I, O] array.

    For numpy encoders (see ``_BertBase``): with the weight laid out as [I, O], x W^T is a product of two
    row-major matrices, which OpenBLAS runs faster than the transposed operand at the row-block sizes
    of an encoder (measured over MiniLM's layer weights, one thread: 64 rows 16.9 vs 21.3 ms, 128 rows
    29.9 vs 34.3, 2048 rows equal; the 1 x 128-token forward 29.5 vs 33.8 ms). Decoders keep the
    checkpoint layout: with the 1-32 rows of a decode step, (W x^T)^T on [O, I] is the faster one
    (8 rows 4.8 vs 5.6 ms). Copied block by block (a transposing copy with large strides is slow).
    """
    out = np.empty(weight.shape[::-1], dtype=dtype or weight.dtype)  # [I, O]
    step = 256
    for i in range(0, weight.shape[0], step):
        out[:, i:i + step] = weight[i:i + step].T
    return out.T
