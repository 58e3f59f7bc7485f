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

import numpy as np

from ..backend import array_module, erf, scratch
from ..errors import ConfigError

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2 = 1.0 / math.sqrt(2.0)
_CHUNK = 131072  # elements per chunk for the costlier activations (numpy): 512 KiB of float32 (see _ERF32_CHUNK)


def gelu(x, out=None):
    """Exact GELU: x * Phi(x) = x * 0.5 * (1 + erf(x / sqrt(2))).

    Evaluated chunk by chunk (``_CHUNK`` elements; on cupy, the whole array at once): each chunk's
    temporaries, erf's included, stay in L1/L2 instead of streaming through memory once per operation.
    ``out``: where to write the result; ``out=x`` works in place and spares a large allocation.
    """
    return _chunked(_gelu_chunk, x, out)


def _gelu_chunk(x, out=None):
    xp = array_module(x)
    y = x * _INV_SQRT_2 if xp is not np else np.multiply(x, _INV_SQRT_2, out=scratch("gelu", x.size, x.dtype))
    y = erf(y, out=y)  # in place; finish in place
    y += 1.0
    y *= 0.5
    return xp.multiply(y, x, out=out)  # out may be x itself


def gelu_tanh(x, out=None):
    """Tanh-approximated GELU (gelu_new / gelu_pytorch_tanh): 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).

    Chunked like :func:`gelu`.
    """
    return _chunked(_gelu_tanh_chunk, x, out)


def _gelu_tanh_chunk(x):
    xp = array_module(x)
    y = x * x
    y *= x
    y *= 0.044715
    y += x
    y *= _SQRT_2_OVER_PI
    xp.tanh(y, out=y)
    y += 1.0
    y *= 0.5
    y *= x
    return y


def _chunked(fn, x, out=None):
    """``fn`` (elementwise) applied to consecutive chunks of ``x``, written into ``out`` (new if None)."""
    xp = array_module(x)
    target = out if out is not None and out.flags.c_contiguous else xp.empty(x.shape, dtype=x.dtype)
    flat_x, flat_target = x.reshape(-1), target.reshape(-1)
    chunk = _CHUNK if xp is np else max(1, flat_x.size)
    for start in range(0, flat_x.size, chunk):
        if fn is _gelu_chunk:  # writes its result straight into the target
            fn(flat_x[start:start + chunk], out=flat_target[start:start + chunk])
        else:
            flat_target[start:start + chunk] = fn(flat_x[start:start + chunk])
    if out is not None and target is not out:
        out[...] = target
        return out
    return target


def gelu_fast(x):
    """0.5 x (1 + tanh(x * 0.7978845608 * (1 + 0.044715 x^2))) — note the rounded constant."""
    xp = array_module(x)
    return 0.5 * x * (1.0 + xp.tanh(x * 0.7978845608 * (1.0 + 0.044715 * x * x)))


def gelu_10(x):
    """GELU clipped to [-10, 10]."""
    return array_module(x).clip(gelu(x), -10.0, 10.0)


def sigmoid(x):
    """1 / (1 + exp(-x)), computed without overflow for large |x|."""
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
    return array_module(x).maximum(x, 0)


def relu2(x):
    r = relu(x)
    return r * r


def relu6(x):
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
    """torch's default negative slope 0.01."""
    return array_module(x).where(x >= 0, x, x * 0.01)


def laplace(x):
    """0.5 * (1 + erf((x - mu) / (sigma sqrt 2))), mu = 0.707107, sigma = 0.282095."""
    return 0.5 * (1.0 + erf((x - 0.707107) / (0.282095 * math.sqrt(2.0))))


def linear(x):
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


def _accepts_out(fn):
    """``fn(x)`` as ``fn(x, out=None)``: every activation can be asked to write into ``out``."""
    if fn in (gelu, gelu_tanh):
        return fn

    def with_out(x, out=None):
        y = fn(x)
        if out is None:
            return y
        out[...] = y
        return out

    with_out.__name__, with_out.__doc__ = fn.__name__, fn.__doc__
    return with_out


ACT2FN = {name: _accepts_out(fn) for name, fn in ACT2FN.items()}


def get_activation(name: str):
    """The activation function for config value ``hidden_act`` = ``name``."""
    if not isinstance(name, str) or name not in ACT2FN:
        raise ConfigError(
            f"hidden_act={name!r} is not supported; refimpl implements {sorted(ACT2FN)} "
            "(transformers' names). Set hidden_act in config.json to one of them."
        )
    return ACT2FN[name]
