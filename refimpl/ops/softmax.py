"""Softmax and log-softmax over the last axis, shifted by the row maximum for stability."""

from ..backend import array_module
from .precision import computed_in_float32


@computed_in_float32
def softmax(x):
    """exp(x - max) / sum(exp(x - max)) along the last axis.   x [..., K] -> [..., K].

    Half precision: in float32, one rounding of the probabilities (torch's SoftMaxKernel.cpp converts
    reduced-precision rows to float32).

    A row whose entries are all the dtype's most negative finite value (a fully masked row) gives the
    uniform distribution 1/K, exactly as torch's softmax does for such a row: no NaN.
    """
    e = array_module(x).exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


@computed_in_float32
def log_softmax(x):
    """x - max - log(sum(exp(x - max))) along the last axis.   x [..., K] -> [..., K]. Half: as softmax."""
    xp = array_module(x)
    shifted = x - x.max(axis=-1, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(axis=-1, keepdims=True))


def softmax_backward(dy, y):
    """Gradient of y = softmax(x) along the last axis: dx = y * (dy - sum(dy * y)).   [..., K] -> [..., K]."""
    return y * (dy - (dy * y).sum(axis=-1, keepdims=True))


def log_softmax_backward(dy, logp):
    """Gradient of logp = log_softmax(x) along the last axis: dx = dy - exp(logp) * sum(dy)."""
    return dy - array_module(logp).exp(logp) * dy.sum(axis=-1, keepdims=True)
