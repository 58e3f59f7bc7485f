"""Dropout, as torch.nn.Dropout computes it in training mode (inference: the identity).

    keep ~ Bernoulli(1 - p) elementwise;   y = x * (keep / (1 - p))

The keep mask is an explicit value: drawn from a caller's generator (:func:`dropout_mask`) or passed in
(a test replays torch's masks). p = 0 is the identity, p = 1 gives zeros (torch's special cases). The
factor keep / (1 - p) is formed in x's dtype as keep * (1 / (1 - p)), the way torch's CPU kernel
divides by a scalar, so a replayed mask gives torch's float32 values.
"""

from ..backend import array_module


def dropout_mask(rng, shape, p):
    """A keep mask of ``shape``: True with probability 1 - p (rng: a numpy Generator)."""
    return rng.random(shape) >= p


def dropout_factor(keep, p, dtype):
    """keep / (1 - p) in ``dtype`` (0 everywhere for p = 1): what x is multiplied by."""
    xp = array_module(keep)
    if p >= 1.0:
        return xp.zeros(keep.shape, dtype=dtype)
    return keep.astype(dtype) * (dtype.type(1.0) / dtype.type(1.0 - p))


def dropout(x, keep, p):
    """x * keep / (1 - p); ``keep`` None or p = 0: x unchanged."""
    if keep is None or p == 0:
        return x
    return x * dropout_factor(keep, p, x.dtype)


def dropout_backward(dy, keep, p):
    """dx = dy * keep / (1 - p) (the same factor as the forward)."""
    return dropout(dy, keep, p)
