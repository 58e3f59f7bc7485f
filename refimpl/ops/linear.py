"""Affine map with weights in PyTorch's [out, in] layout, as checkpoints store them."""


def linear(x, weight, bias=None):
    """y = x W^T + b.   x [..., I], weight [O, I], bias [O] -> y [..., O].

    ``weight.T`` is a strided view: matmul hands it to the BLAS as a transposed operand, no copy is made.
    """
    y = x @ weight.T  # [..., O]
    if bias is not None:
        y += bias
    return y
