"""Half precision (float16, bfloat16): in which dtype each op computes, and where values are rounded.

The policy is what torch 2.13 does on the CPU for transformers' BERT forward (measured op by op in
tools/probe_half_precision.py; each rule and its source in docs/precision.md, "Half precision"):

- **storage**: weights and every activation between two ops are in the half dtype;
- **compute**: an op converts its half inputs to float32 (exactly), computes in float32 and rounds its
  result **once** to the half dtype: a linear's products are summed in float32 and the bias is added
  before the one rounding (torch's CPU addmm); q k^T and P v likewise; the division of the scores by
  sqrt(H) is a float32 division by float32(sqrt(H)); softmax, LayerNorm (statistics and affine) and the
  activations in float32;
- **elementwise sums** between ops (embedding sums, the residual add before LayerNorm, scores + mask,
  scores + relative-position terms) are half + half, correctly rounded: what numpy's float16 and
  ml_dtypes' bfloat16 additions give, and torch's.

For float32 and float64 these helpers change nothing: ``float32(x)`` is ``x`` and ``rounded(y, dtype)`` is ``y``.
"""

import functools

import numpy as np

HALF = ("float16", "bfloat16")


def is_half(dtype) -> bool:
    """Is ``dtype`` float16 or bfloat16 (a storage dtype computed in float32)?"""
    return np.dtype(dtype).name in HALF


def compute_dtype(dtype):
    """The dtype an op computes in for values stored in ``dtype``: float32 for the half dtypes, else itself."""
    return np.dtype(np.float32) if is_half(dtype) else np.dtype(dtype)


def float32(x):
    """A half array converted (exactly) to float32; any other array unchanged."""
    return x.astype(np.float32) if is_half(x.dtype) else x


def rounded(y, dtype):
    """``y`` rounded once (to nearest, ties to even) to the storage dtype ``dtype``; unchanged if it already is."""
    return y.astype(dtype, copy=False)


def computed_in_float32(fn):
    """``fn`` (an op of arrays and Python numbers) applied by the half rule: half array arguments converted
    to float32, ``fn`` computed in float32, its array result(s) rounded once to the first argument's dtype.
    Other dtypes call ``fn`` as it is."""

    @functools.wraps(fn)
    def op(x, *args, **kwargs):
        if not is_half(x.dtype):
            return fn(x, *args, **kwargs)
        args = tuple(float32(a) if hasattr(a, "dtype") else a for a in args)
        kwargs = {k: (float32(a) if hasattr(a, "dtype") else a) for k, a in kwargs.items()}
        y = fn(float32(x), *args, **kwargs)
        if isinstance(y, tuple):
            return tuple(rounded(v, x.dtype) for v in y)
        return rounded(y, x.dtype)

    op.reference = fn
    return op


def matmul(a, b):
    """a @ b with the half rule: float32 products and sums, one rounding to a's dtype per output element."""
    if not is_half(a.dtype):
        return a @ b
    return rounded(float32(a) @ float32(b), a.dtype)


def divide(x, c):
    """x / c, c a Python number, as torch divides a tensor by a number: in the compute dtype, by the number
    rounded to it (float32(sqrt(H)) for half scores; a float16 constant would differ), rounded once."""
    dt = compute_dtype(x.dtype)
    return rounded(float32(x) / dt.type(c), x.dtype)
