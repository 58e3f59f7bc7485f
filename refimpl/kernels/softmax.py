"""``ops.softmax``, fast: in place where the caller allows it (``out=``), row sums on the BLAS."""

from ..backend import array_module
from ..ops import softmax as reference
from ..ops.precision import is_half


def softmax(x, out=None):
    """exp(x - max) / sum(exp(x - max)) along the last axis.   x [..., K] -> [..., K].

    ``out``: where to write the result (``out=x`` works in place, as attention does on its scores).
    Three passes over memory: the row maximum, the shifted exponential (in place), and the division; the
    row sums are a matrix-vector product with a vector of ones, which the BLAS does at memory speed.

    A row whose entries are all the dtype's most negative finite value (a fully masked row) gives the
    uniform distribution 1/K, exactly as torch's softmax does for such a row — no NaN.
    Half precision: the reference (float32, one rounding), written into ``out`` when given.
    """
    if is_half(x.dtype):
        y = reference.softmax(x)
        if out is None:
            return y
        out[...] = y
        return out
    xp = array_module(x)
    out = xp.subtract(x, x.max(axis=-1, keepdims=True), out=out)
    xp.exp(out, out=out)
    total = out @ xp.ones(out.shape[-1], dtype=out.dtype)  # [...]
    out /= total[..., None]
    return out


def log_softmax(x, out=None):
    """x - max - log(sum(exp(x - max))) along the last axis.   x [..., K] -> [..., K].

    ``out``: where to write the result (``out=x`` works in place: beam search does so on each step's
    [R, V] logits, which spares two [R, V] allocations). Four passes: the row maximum, the shift, the
    exponential with its row sums, and the final subtraction. Half precision: as :func:`softmax`.
    """
    if is_half(x.dtype):
        y = reference.log_softmax(x)
        if out is None:
            return y
        out[...] = y
        return out
    xp = array_module(x)
    out = xp.subtract(x, x.max(axis=-1, keepdims=True), out=out)
    total = xp.exp(out).sum(axis=-1, keepdims=True)
    out -= xp.log(total)
    return out
