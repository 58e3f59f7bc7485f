"""Layer normalization over the last axis, as torch.nn.LayerNorm defines it."""

from ..backend import array_module


def layer_norm(x, weight, bias, eps):
    """y = (x - mean) / sqrt(var + eps) * weight + bias, statistics over the last axis.

    x [..., D], weight [D], bias [D] -> [..., D]. The variance is the biased (population) one,
    mean((x - mean)^2), as torch uses; ``eps`` is added inside the square root.
    """
    xp = array_module(x)
    mean = x.mean(axis=-1, keepdims=True)  # [..., 1]
    centered = x - mean
    var = (centered * centered).mean(axis=-1, keepdims=True)  # [..., 1]
    return centered / xp.sqrt(var + eps) * weight + bias


def add_layer_norm(x, residual, weight, bias, eps):
    """LayerNorm(x + residual): the Transformer's "add & norm" after attention and feed-forward."""
    return layer_norm(x + residual, weight, bias, eps)
