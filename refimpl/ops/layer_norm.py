"""Layer normalization over the last axis, as torch.nn.LayerNorm defines it."""

from typing import Any, NamedTuple

from ..backend import array_module
from .precision import computed_in_float32


@computed_in_float32
def layer_norm(x, weight, bias, eps):
    """y = (x - mean) / sqrt(var + eps) * weight + bias, statistics over the last axis.

    x [..., D], weight [D], bias [D] -> [..., D]. The variance is the biased (population) one,
    mean((x - mean)^2), as torch uses; ``eps`` is added inside the square root.
    Half precision: statistics and affine in float32, one rounding of y (torch's layer_norm_kernel.cpp
    computes reduced-precision rows in float32, weight and bias included).
    """
    xp = array_module(x)
    mean = x.mean(axis=-1, keepdims=True)  # [..., 1]
    centered = x - mean
    var = (centered * centered).mean(axis=-1, keepdims=True)  # [..., 1]
    return centered / xp.sqrt(var + eps) * weight + bias


def add_layer_norm(x, residual, weight, bias, eps):
    """LayerNorm(x + residual): the Transformer's "add & norm" after attention and feed-forward.
    Half precision: x + residual is a half addition (rounded, as transformers adds two half tensors), then
    :func:`layer_norm`."""
    return layer_norm(x + residual, weight, bias, eps)


# --- training: forward with a tape, and the backward -------------------------------------------------


class LayerNormTape(NamedTuple):
    """What the LayerNorm backward needs from its forward."""

    xhat: Any  # (x - mean) / sqrt(var + eps)   [..., D]
    rstd: Any  # 1 / sqrt(var + eps)              [..., 1]


def layer_norm_forward(x, weight, bias, eps):
    """:func:`layer_norm` (the same operations in the same order, so the same values), and its tape.
    Returns (y [..., D], LayerNormTape)."""
    xp = array_module(x)
    mean = x.mean(axis=-1, keepdims=True)
    centered = x - mean
    var = (centered * centered).mean(axis=-1, keepdims=True)
    std = xp.sqrt(var + eps)
    xhat = centered / std
    return xhat * weight + bias, LayerNormTape(xhat, 1.0 / std)


def add_layer_norm_forward(x, residual, weight, bias, eps):
    """:func:`add_layer_norm` and its tape (the gradient of x + residual reaches both terms unchanged)."""
    return layer_norm_forward(x + residual, weight, bias, eps)


def layer_norm_backward(dy, tape, weight):
    """Gradients of y = xhat * w + b, xhat = (x - mean) / sqrt(var + eps), over the last axis (D values):

        g  = dy * w
        dx = rstd * (g - mean(g) - xhat * mean(g * xhat))      [..., D]   (means over the last axis)
        dw = sum_rows dy * xhat,   db = sum_rows dy            [D]

    (the mean and the variance depend on x too: the two subtracted means are their contributions).
    Returns (dx, dw, db).
    """
    d = dy.shape[-1]
    g = dy * weight
    dx = tape.rstd * (g - g.mean(axis=-1, keepdims=True) - tape.xhat * (g * tape.xhat).mean(axis=-1, keepdims=True))
    dw = (dy * tape.xhat).reshape(-1, d).sum(axis=0)
    db = dy.reshape(-1, d).sum(axis=0)
    return dx, dw, db
