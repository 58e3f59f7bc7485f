"""Affine map with weights in PyTorch's [out, in] layout, as checkpoints store them."""

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

    ``weight.T`` is a strided view: matmul hands it to the BLAS as a transposed operand, no copy is made.
    With few rows (numpy), the same product is computed as (W x^T)^T, which OpenBLAS runs faster there;
    the bias is then added while the transposed result is copied back to row-major order.
    """
    xp = array_module(x)
    rows = x.size // max(1, x.shape[-1])
    if xp.__name__ == "numpy" and 0 < rows < _FEW_ROWS:
        yt = weight @ x.reshape(rows, x.shape[-1]).T  # [O, rows]
        y = xp.add(yt.T, bias, order="C") if bias is not None else xp.ascontiguousarray(yt.T)
        return y.reshape(x.shape[:-1] + (weight.shape[0],))
    y = x @ weight.T  # [..., O]
    if bias is not None:
        y += bias
    return y
