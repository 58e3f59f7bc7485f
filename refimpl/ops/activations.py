"""Activation functions under transformers' ``hidden_act`` names, with its formulas.

Each takes an array and returns a new one of the same shape and dtype; constants are Python floats so
they never promote float32 to float64.

| name                | formula                                                        |
|---------------------|----------------------------------------------------------------|
| gelu, gelu_python   | x * 0.5 * (1 + erf(x / sqrt(2)))        (exact, erf form)      |
| gelu_new, gelu_pytorch_tanh, gelu_python_tanh, gelu_accurate | 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) |
| gelu_fast           | 0.5 x (1 + tanh(x * 0.7978845608 * (1 + 0.044715 x^2)))         |
| gelu_10             | clip(gelu(x), -10, 10)                                         |
| quick_gelu          | x * sigmoid(1.702 x)                                           |
| relu, relu2, relu6  | max(x, 0); max(x, 0)^2; min(max(x, 0), 6)                      |
| silu, swish         | x * sigmoid(x)                                                 |
| sigmoid, tanh       | 1 / (1 + exp(-x)); tanh(x)                                      |
| mish                | x * tanh(softplus(x)), softplus(x) = log1p(exp(-abs x)) + max(x, 0) |
| leaky_relu          | x if x >= 0 else 0.01 x                                        |
| laplace             | 0.5 * (1 + erf((x - 0.707107) / (0.282095 sqrt(2))))           |
| linear              | x                                                              |
"""

import functools
import math

import numpy as np

from ..backend import array_module
from ..errors import ConfigError
from .erf import erf, erf_abramowitz_stegun
from .precision import computed_in_float32, is_half

_SQRT_2 = math.sqrt(2.0)
_INV_SQRT_2 = 1.0 / math.sqrt(2.0)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


def gelu(x):
    """Exact GELU: x * Phi(x) = x * 0.5 * (1 + erf(x / sqrt(2))).

    Half precision: float32, one rounding (torch's GeluKernel.cpp), as every activation (get_activation);
    for float16 with torch's float32 erf of that path, Abramowitz & Stegun 7.1.26 (:func:`gelu_float16`)."""
    return x * 0.5 * (1.0 + erf(x / _SQRT_2))


def gelu_float16(x):
    """GELU of a float16 array as torch computes it on the CPU: x * 0.5 * (1 + erf(x * (1/sqrt 2))) in
    float32 with ATen's vectorized erf (refimpl.ops.erf.erf_abramowitz_stegun), rounded once to float16."""
    x32 = x.astype(np.float32)
    return (x32 * np.float32(0.5) * (np.float32(1) + erf_abramowitz_stegun(x32 * np.float32(_INV_SQRT_2)))).astype(np.float16)


def gelu_tanh(x):
    """Tanh-approximated GELU (gelu_new, gelu_pytorch_tanh): 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""
    return 0.5 * x * (1.0 + array_module(x).tanh(_SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)))


def gelu_fast(x):
    """0.5 x (1 + tanh(x * 0.7978845608 * (1 + 0.044715 x^2))) — note the rounded constant."""
    return 0.5 * x * (1.0 + array_module(x).tanh(x * 0.7978845608 * (1.0 + 0.044715 * x * x)))


def gelu_10(x):
    """GELU clipped to [-10, 10]."""
    return array_module(x).clip(gelu(x), -10.0, 10.0)


def sigmoid(x):
    """1 / (1 + exp(-x)), computed without overflow for large |x|: e / (1 + e), e = exp(-|x|), for x < 0."""
    xp = array_module(x)
    e = xp.exp(-xp.abs(x))  # in (0, 1]
    return xp.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(x.dtype, copy=False)


def quick_gelu(x):
    """x * sigmoid(1.702 x)."""
    return x * sigmoid(1.702 * x)


def silu(x):
    """x * sigmoid(x) (also called swish)."""
    return x * sigmoid(x)


def relu(x):
    """max(x, 0)."""
    return array_module(x).maximum(x, 0)


def relu2(x):
    """max(x, 0)^2."""
    r = relu(x)
    return r * r


def relu6(x):
    """min(max(x, 0), 6)."""
    return array_module(x).clip(x, 0, 6)


def tanh(x):
    return array_module(x).tanh(x)


def softplus(x):
    """log(1 + exp(x)) = log1p(exp(-|x|)) + max(x, 0), exact for large |x|."""
    xp = array_module(x)
    return xp.log1p(xp.exp(-xp.abs(x))) + xp.maximum(x, 0)


def mish(x):
    """x * tanh(softplus(x))."""
    return x * array_module(x).tanh(softplus(x))


def leaky_relu(x):
    """x for x >= 0, 0.01 x below (torch's default negative slope)."""
    return array_module(x).where(x >= 0, x, x * 0.01)


def laplace(x):
    """0.5 * (1 + erf((x - mu) / (sigma sqrt 2))), mu = 0.707107, sigma = 0.282095."""
    return 0.5 * (1.0 + erf((x - 0.707107) / (0.282095 * _SQRT_2)))


def linear(x):
    """x (the identity)."""
    return x


ACT2FN = {
    "gelu": gelu,
    "gelu_python": gelu,
    "gelu_new": gelu_tanh,
    "gelu_pytorch_tanh": gelu_tanh,
    "gelu_python_tanh": gelu_tanh,
    "gelu_accurate": gelu_tanh,
    "gelu_fast": gelu_fast,
    "gelu_10": gelu_10,
    "quick_gelu": quick_gelu,
    "relu": relu,
    "relu2": relu2,
    "relu6": relu6,
    "silu": silu,
    "swish": silu,
    "sigmoid": sigmoid,
    "tanh": tanh,
    "mish": mish,
    "leaky_relu": leaky_relu,
    "laplace": laplace,
    "linear": linear,
}


def check_activation(name):
    """ConfigError unless ``name`` is a ``hidden_act`` refimpl implements."""
    if not isinstance(name, str) or name not in ACT2FN:
        raise ConfigError(
            f"hidden_act={name!r} is not supported; refimpl implements {sorted(ACT2FN)} "
            "(transformers' names). Set hidden_act in config.json to one of them."
        )


def get_activation(name: str):
    """The activation function for config value ``hidden_act`` = ``name``, with the half-precision rule
    (refimpl.ops.precision: a half input is computed in float32 and the result rounded once; float32 and
    float64 inputs call the function as it is)."""
    check_activation(name)
    return _HALF_AWARE[name]


def _half_aware(fn):
    computed = computed_in_float32(fn)

    @functools.wraps(fn)
    def act(x):
        if fn is gelu and x.dtype == np.float16 and array_module(x) is np:
            return gelu_float16(x)
        return computed(x) if is_half(x.dtype) else fn(x)

    return act


_HALF_AWARE = {name: _half_aware(fn) for name, fn in ACT2FN.items()}


# --- training: derivatives ---------------------------------------------------------------------------
#
# Each ``d_<name>(x)`` is the derivative f'(x) of the activation, so that the backward of y = f(x) is
# dx = dy * f'(x) (:func:`activation_backward`). Where f is not differentiable at a point (relu at 0, the
# clipping ends), the value is the one torch's autograd uses, noted on the function.

_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def d_gelu(x):
    """Phi(x) + x phi(x), phi(x) = exp(-x^2 / 2) / sqrt(2 pi) (torch's GELU backward)."""
    return 0.5 * (1.0 + erf(x / _SQRT_2)) + x * (array_module(x).exp(-0.5 * x * x) * _INV_SQRT_2PI)


def _d_tanh_gelu(x, c, u):
    """0.5 (1 + t) + 0.5 x (1 - t^2) u'(x), t = tanh(u(x)), for the two tanh GELUs (u given with u' = c(.))."""
    t = array_module(x).tanh(u)
    return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * c


def d_gelu_tanh(x):
    """u = sqrt(2/pi) (x + 0.044715 x^3), u' = sqrt(2/pi) (1 + 3 * 0.044715 x^2)."""
    return _d_tanh_gelu(x, _SQRT_2_OVER_PI * (1.0 + 3.0 * 0.044715 * x * x), _SQRT_2_OVER_PI * (x + 0.044715 * x * x * x))


def d_gelu_fast(x):
    """u = x * 0.7978845608 (1 + 0.044715 x^2), u' = 0.7978845608 (1 + 3 * 0.044715 x^2)."""
    return _d_tanh_gelu(x, 0.7978845608 * (1.0 + 3.0 * 0.044715 * x * x), x * 0.7978845608 * (1.0 + 0.044715 * x * x))


def d_gelu_10(x):
    """gelu'(x) where -10 <= gelu(x) <= 10, else 0 (torch's clip passes the gradient at the ends)."""
    g = gelu(x)
    return d_gelu(x) * ((g >= -10.0) & (g <= 10.0))


def d_sigmoid(x):
    """s (1 - s), s = sigmoid(x)."""
    s = sigmoid(x)
    return s * (1.0 - s)


def d_quick_gelu(x):
    """s + 1.702 x s (1 - s), s = sigmoid(1.702 x)."""
    s = sigmoid(1.702 * x)
    return s + 1.702 * x * s * (1.0 - s)


def d_silu(x):
    """s (1 + x (1 - s)), s = sigmoid(x)."""
    s = sigmoid(x)
    return s * (1.0 + x * (1.0 - s))


def d_relu(x):
    """1 for x > 0, else 0 (0 at x = 0, as torch)."""
    return (x > 0).astype(x.dtype)


def d_relu2(x):
    """2 max(x, 0)."""
    return 2.0 * relu(x)


def d_relu6(x):
    """1 for 0 < x < 6, else 0 (torch's hardtanh backward: 0 at both ends)."""
    return ((x > 0) & (x < 6)).astype(x.dtype)


def d_tanh(x):
    """1 - tanh(x)^2."""
    t = array_module(x).tanh(x)
    return 1.0 - t * t


def d_mish(x):
    """tanh(sp) + x sigmoid(x) (1 - tanh(sp)^2), sp = softplus(x) (torch's mish backward)."""
    t = array_module(x).tanh(softplus(x))
    return t + x * sigmoid(x) * (1.0 - t * t)


def d_leaky_relu(x):
    """1 for x > 0, else 0.01 (0.01 at x = 0, as torch)."""
    return array_module(x).where(x > 0, 1.0, 0.01).astype(x.dtype)


def d_laplace(x):
    """exp(-z^2) / (sigma sqrt(2 pi)), z = (x - mu) / (sigma sqrt 2): 0.5 erf'(z) dz/dx."""
    z = (x - 0.707107) / (0.282095 * _SQRT_2)
    return array_module(x).exp(-z * z) * (1.0 / (0.282095 * _SQRT_2 * math.sqrt(math.pi)))


def d_linear(x):
    """1."""
    return array_module(x).ones_like(x)


ACT2GRAD = {
    gelu: d_gelu, gelu_tanh: d_gelu_tanh, gelu_fast: d_gelu_fast, gelu_10: d_gelu_10, quick_gelu: d_quick_gelu,
    relu: d_relu, relu2: d_relu2, relu6: d_relu6, silu: d_silu, sigmoid: d_sigmoid, tanh: d_tanh, mish: d_mish,
    leaky_relu: d_leaky_relu, laplace: d_laplace, linear: d_linear,
}


def get_activation_derivative(name: str):
    """f' for config value ``hidden_act`` = ``name`` (the derivative of :func:`get_activation`'s function)."""
    check_activation(name)
    return ACT2GRAD[ACT2FN[name]]


def activation_backward(name, dy, x):
    """dx = dy * f'(x) for y = f(x), f the ``hidden_act`` ``name``; x is the activation's input."""
    return dy * get_activation_derivative(name)(x)


def tanh_backward(dy, y):
    """dx = dy (1 - y^2) for y = tanh(x), from the output (the pooler's activation)."""
    return dy * (1.0 - y * y)
