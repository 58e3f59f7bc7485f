"""Layer normalization over the last axis, as torch.nn.LayerNorm computes it."""

from ..backend import array_module


def layer_norm(x, weight, bias, eps, out=None):
    """y = (x - mean) / sqrt(var + eps) * weight + bias, statistics over the last axis.

    x [..., D], weight [D], bias [D] -> [..., D]. The variance is the biased (population) one, as torch
    uses; ``eps`` is added inside the square root. The two row sums are matrix-vector products with a
    vector of ones (the BLAS reads the rows at memory speed, where NumPy's reductions are slower); the
    rest is done in place on one new array (or on ``out``; ``out=x`` works in place), so the whole
    takes five passes over [..., D].
    """
    xp = array_module(x)
    d = x.shape[-1]
    ones = xp.ones(d, dtype=x.dtype)
    mean = (x @ ones) / d  # [...]
    centered = xp.subtract(x, mean[..., None], out=out)  # [..., D]
    var = (xp.square(centered) @ ones) / d  # [...]
    var += eps
    centered *= (1.0 / xp.sqrt(var))[..., None]
    centered *= weight
    centered += bias
    return centered
