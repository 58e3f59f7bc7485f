"""``ops.layer_norm``, fast: row sums on the BLAS, in place on one new array, row blocks over threads."""

from ..backend import array_module
from ..ops import layer_norm as reference
from ..ops.precision import is_half
from .threads import map_rows


def layer_norm(x, weight, bias, eps):
    """LayerNorm over the last axis (``ops.layer_norm.layer_norm``).   x [..., D] -> [..., D].
    Half precision runs the reference (float32 statistics, one rounding)."""
    if is_half(x.dtype):
        return reference.layer_norm(x, weight, bias, eps)
    return map_rows(lambda rows: _layer_norm(rows, weight, bias, eps), x)


def add_layer_norm(x, residual, weight, bias, eps):
    """LayerNorm(x + residual) (``ops.layer_norm.add_layer_norm``): the sum made once per row block, then
    normalized in place. Half precision runs the reference (a half addition, then its LayerNorm)."""
    if is_half(x.dtype):
        return reference.add_layer_norm(x, residual, weight, bias, eps)
    return map_rows(lambda a, r: _layer_norm(a + r, weight, bias, eps, out="in place"), x, residual)


def _layer_norm(x, weight, bias, eps, out=None):
    """The two row sums are matrix-vector products with a vector of ones (the BLAS reads the rows at
    memory speed, where NumPy's reductions are slower); the rest is done in place on one new array (on
    ``x`` itself with ``out="in place"``): five passes over [..., D]."""
    xp = array_module(x)
    d = x.shape[-1]
    ones = xp.ones(d, dtype=x.dtype)
    mean = (x @ ones) / d  # [...]
    centered = xp.subtract(x, mean[..., None], out=x if out == "in place" else None)  # [..., D]
    var = (xp.square(centered) @ ones) / d  # [...]
    var += eps
    centered *= (1.0 / xp.sqrt(var))[..., None]
    centered *= weight
    centered += bias
    return centered
