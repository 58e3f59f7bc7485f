"""Losses as torch.nn computes them with its default mean reduction."""

from ..backend import array_module
from .softmax import log_softmax

IGNORE_INDEX = -100


def cross_entropy(logits, labels, ignore_index=IGNORE_INDEX):
    """Mean over non-ignored positions of -log_softmax(logits)[label].

    logits [M, C], labels [M] (integers; ``ignore_index`` entries are skipped). If every label is
    ignored, the result is NaN (0/0), as torch returns.
    """
    xp = array_module(logits)
    keep = labels != ignore_index  # [M]
    safe = xp.where(keep, labels, 0)
    logp = log_softmax(logits)  # [M, C]
    picked = xp.take_along_axis(logp, safe[:, None].astype(xp.int64), axis=1)[:, 0]  # [M]
    total = -(picked * keep).sum()
    count = keep.sum()
    with _ignore_float_errors(xp):
        return (total / logits.dtype.type(count)).astype(logits.dtype)


def mse(pred, target):
    """mean((pred - target)^2) over every element."""
    d = pred - target
    return (d * d).mean()


def bce_with_logits(logits, targets):
    """mean(max(x, 0) - x*y + log(1 + exp(-|x|))), the stable binary cross-entropy on logits."""
    xp = array_module(logits)
    return (xp.maximum(logits, 0) - logits * targets + xp.log1p(xp.exp(-xp.abs(logits)))).mean()


class _ignore_float_errors:
    def __init__(self, xp):
        self.xp = xp

    def __enter__(self):
        if self.xp.__name__ == "numpy":
            self.saved = self.xp.seterr(invalid="ignore", divide="ignore")

    def __exit__(self, *exc):
        if self.xp.__name__ == "numpy":
            self.xp.seterr(**self.saved)
