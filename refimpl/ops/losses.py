"""Losses as torch.nn computes them with its default mean reduction."""

from ..backend import array_module
from .softmax import log_softmax, log_softmax_backward

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


def span_loss(start_logits, end_logits, start_positions, end_positions):
    """The question-answering loss: (CE(start) + CE(end)) / 2 with ignore index S.

    start_logits, end_logits [B, S]; positions [B] integers already clamped to [0, S] (transformers clamps
    them, so a position at or beyond S becomes S and is then ignored).
    """
    s = start_logits.shape[1]
    return (cross_entropy(start_logits, start_positions, ignore_index=s)
            + cross_entropy(end_logits, end_positions, ignore_index=s)) / 2


# --- training: gradients with respect to the logits ---------------------------------------------------


def cross_entropy_backward(logits, labels, ignore_index=IGNORE_INDEX, scale=1.0):
    """d(scale * cross_entropy)/d logits [M, C]:

        dlogits[m] = scale * (softmax(logits[m]) - onehot(labels[m])) / count   for kept rows, 0 for ignored ones

    computed as torch's autograd does, through the log-softmax: g = -scale * onehot * keep / count, then
    dlogits = g - exp(log_softmax) * sum(g). count = number of kept rows; when every label is ignored the
    loss is NaN and this gradient is 0 everywhere (torch writes nothing for ignored rows).
    """
    xp = array_module(logits)
    keep = labels != ignore_index  # [M]
    count = int(keep.sum())
    if count == 0:
        return xp.zeros_like(logits)
    safe = xp.where(keep, labels, 0).astype(xp.int64)
    g = xp.zeros_like(logits)
    weight = logits.dtype.type(-scale) / logits.dtype.type(count)
    g[xp.arange(logits.shape[0]), safe] = xp.where(keep, weight, logits.dtype.type(0))
    return log_softmax_backward(g, log_softmax(logits))


def span_loss_backward(start_logits, end_logits, start_positions, end_positions):
    """Gradients of :func:`span_loss`: half of each cross-entropy's gradient. Returns (dstart, dend) [B, S]."""
    s = start_logits.shape[1]
    return (cross_entropy_backward(start_logits, start_positions, s, scale=0.5),
            cross_entropy_backward(end_logits, end_positions, s, scale=0.5))


def mse_backward(pred, target):
    """d mse / d pred = 2 (pred - target) / n, n = number of elements."""
    return 2.0 * (pred - target) / pred.dtype.type(pred.size)


def bce_with_logits_backward(logits, targets):
    """d bce_with_logits / d logits = (sigmoid(x) - y) / n, n = number of elements."""
    from .activations import sigmoid

    return (sigmoid(logits) - targets) / logits.dtype.type(logits.size)


class _ignore_float_errors:
    def __init__(self, xp):
        self.xp = xp

    def __enter__(self):
        if self.xp.__name__ == "numpy":
            self.saved = self.xp.seterr(invalid="ignore", divide="ignore")

    def __exit__(self, *exc):
        if self.xp.__name__ == "numpy":
            self.xp.seterr(**self.saved)
