"""Affine map with weights in PyTorch's [out, in] layout, as checkpoints store them."""

from ..backend import array_module

# Below this many rows, the product is handed to the BLAS as (W x^T)^T: OpenBLAS runs a GEMM with few
# rows and a transposed [in, out] operand at half speed (it re-packs the whole weight for a few rows),
# and the transposed form at full speed (measured, single-threaded, 384 x 1536 weight: 42 vs 81
# GFLOP/s at 16 rows, 85 vs 102 at 128, equal from about 300 rows).
_FEW_ROWS = 256


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
