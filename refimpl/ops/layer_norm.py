"""Layer normalization over the last axis, as torch.nn.LayerNorm computes it."""

from ..backend import array_module


def layer_norm(x, weight, bias, eps):
    """y = (x - mean) / sqrt(var + eps) * weight + bias, statistics over the last axis.

    x [..., D], weight [D], bias [D] -> [..., D]. The variance is the biased (population) one, as torch
    uses; ``eps`` is added inside the square root.
    """
    xp = array_module(x)
    mean = x.mean(axis=-1, keepdims=True)  # [..., 1]
    centered = x - mean
    var = (centered * centered).mean(axis=-1, keepdims=True)  # [..., 1]
    centered *= 1.0 / xp.sqrt(var + eps)
    centered *= weight
    centered += bias
    return centered
