"""Affine map, with the weight [out, in] as PyTorch and the checkpoints define it."""

from .precision import float32, is_half, rounded


def linear(x, weight, bias=None):
    """y = x W^T + b.   x [..., I], weight [O, I], bias [O] or None -> y [..., O].

    A quantized weight (refimpl.quantization.weights: bitsandbytes 4-bit or LLM.int8) computes the product
    as bitsandbytes does: ``weight.linear(x, bias)``.

    Half precision (float16, bfloat16): the products are summed in float32, the bias is added in float32,
    and the sum is rounded **once** to the half dtype (torch's CPU addmm: ``c = beta * c + alpha * dot`` in
    float32 with c holding the bias, BlasKernel.cpp / oneDNN's sum post-op). Rounding the product first
    and adding the bias in half would differ in ~30% of the outputs (tools/probe_half_precision.py)."""
    if hasattr(weight, "linear"):
        return weight.linear(x, bias)
    if is_half(x.dtype):
        y = float32(x) @ float32(weight).T
        return rounded(y if bias is None else y + float32(bias), x.dtype)
    y = x @ weight.T
    return y if bias is None else y + bias


def linear_backward(dy, x, weight, has_bias=True):
    """Gradients of y = x W^T + b.   dy [..., O], x [..., I], weight [O, I] ->

        dx = dy W                       [..., I]
        dW = sum_rows dy_r^T x_r        [O, I]   (the rows r run over every leading index)
        db = sum_rows dy_r              [O]      (None when ``has_bias`` is False)
    """
    o, i = weight.shape
    dy2 = dy.reshape(-1, o)  # [M, O]
    x2 = x.reshape(-1, i)  # [M, I]
    dx = (dy2 @ weight).reshape(x.shape[:-1] + (i,))
    dw = dy2.T @ x2
    return dx, dw, (dy2.sum(axis=0) if has_bias else None)
