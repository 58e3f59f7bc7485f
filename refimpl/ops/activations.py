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

import math

from ..backend import array_module
from ..errors import ConfigError
from .erf import erf

_SQRT_2 = math.sqrt(2.0)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


def gelu(x):
    """Exact GELU: x * Phi(x) = x * 0.5 * (1 + erf(x / sqrt(2)))."""
    return x * 0.5 * (1.0 + erf(x / _SQRT_2))


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
    """The activation function for config value ``hidden_act`` = ``name``."""
    check_activation(name)
    return ACT2FN[name]
