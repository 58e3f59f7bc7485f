"""Affine map, with the weight [out, in] as PyTorch and the checkpoints define it."""


def linear(x, weight, bias=None):
    """y = x W^T + b.   x [..., I], weight [O, I], bias [O] or None -> y [..., O]."""
    y = x @ weight.T
    return y if bias is None else y + bias
