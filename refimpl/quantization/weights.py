"""Quantized linear weights as a model holds them, and the linear product bitsandbytes runs for each.

A model's parameters keep transformers' names; a quantized layer's ``*.weight`` entry is one of the objects
below instead of an array. The linear op (``refimpl.ops.linear.linear`` and its fast twin) hands such a
weight the product: ``weight.linear(x, bias)``. Everything else in the forward is unchanged.

- :class:`Linear4bitWeight` (``bnb.nn.Linear4bit``): packed NF4/FP4 bytes + QuantState. Its product, as
  bitsandbytes' CPU ``gemm_4bit`` (backends/default/ops.py) with the generic dequantization::

      W = dequantize_4bit(packed, state) in the compute dtype      (float32 values rounded to it)
      y = x_c W^T + b_c     x_c, b_c: x and the bias rounded to the compute dtype; for a half compute dtype
                            the products are summed in float32 and the sum rounded once to the half dtype
      y in x's dtype

  (On a CPU with AVX512-BF16, bitsandbytes 0.50.2 runs another kernel at inference, bfloat16 inputs and
  absmax; refimpl reproduces the generic path: docs/precision.md.)
- :class:`Linear8bitWeight` (``bnb.nn.Linear8bitLt``, inference): CB int8 [O, I], SCB float32 [O];
  the product is :func:`refimpl.quantization.int8.int8_linear` with the layer's threshold.
"""

from __future__ import annotations

import json

import numpy as np

from ..errors import CheckpointError, ConfigError
from . import fourbit, int8
from .config import BitsAndBytesConfig, is_linear_weight, is_skipped, skip_keys
from .halfdtypes import dtype_of

_F32 = np.float32


class Linear4bitWeight:
    """A 4-bit linear weight: ``packed`` bytes, ``state`` (fourbit.QuantState), ``compute_dtype`` name."""

    def __init__(self, packed, state: fourbit.QuantState, compute_dtype="float32"):
        self.packed, self.state, self.compute_dtype = packed, state, compute_dtype
        self.shape = tuple(state.shape)  # [O, I], what strict loading checks
        self.ndim = len(self.shape)

    def dequantized(self) -> np.ndarray:
        """W [O, I] in the compute dtype (bitsandbytes dequantizes into the input's compute dtype)."""
        return fourbit.dequantize_4bit(self.packed, self.state, self.compute_dtype)

    def linear(self, x, bias=None):
        """y = x W^T + b as bitsandbytes' Linear4bit on CPU (module docstring). x [..., I] -> [..., O]."""
        compute = dtype_of(self.compute_dtype)
        w = self.dequantized()
        if compute == np.float32:
            y = x.astype(_F32, copy=False) @ w.T
            if bias is not None:
                y = y + bias.astype(_F32)
        else:  # half compute: inputs rounded to it, float32 sums, one rounding
            y = x.astype(compute).astype(_F32) @ w.astype(_F32).T
            if bias is not None:
                y = y + bias.astype(compute).astype(_F32)
            y = y.astype(compute)
        return y.astype(x.dtype, copy=False)

    def nbytes(self) -> int:
        s = self.state
        n = self.packed.nbytes + np.asarray(s.absmax).nbytes + s.code.nbytes
        return n + (s.state2.absmax.nbytes + s.state2.code.nbytes + 4 if s.nested else 0)

    def __repr__(self):
        nested = ", double-quant" if self.state.nested else ""
        return f"Linear4bitWeight({self.state.quant_type}, shape={self.shape}, blocksize={self.state.blocksize}{nested}, compute={self.compute_dtype})"


class Linear8bitWeight:
    """An LLM.int8 linear weight: ``CB`` int8 [O, I], ``SCB`` float32 [O], outlier ``threshold``."""

    def __init__(self, cb, scb, threshold=6.0):
        self.CB, self.SCB, self.threshold = cb, np.asarray(scb, _F32), float(threshold)
        self.shape = tuple(cb.shape)
        self.ndim = 2

    def linear(self, x, bias=None):
        return int8.int8_linear(x, self.CB, self.SCB, bias, self.threshold)

    def nbytes(self) -> int:
        return self.CB.nbytes + self.SCB.nbytes

    def __repr__(self):
        return f"Linear8bitWeight(shape={self.shape}, threshold={self.threshold})"


def is_quantized(weight) -> bool:
    return isinstance(weight, (Linear4bitWeight, Linear8bitWeight))


def state_arrays(name, weight) -> dict:
    """The quantization state of one weight as named host arrays (what ``refimpl trace`` records under
    ``quant.``), with bitsandbytes' QuantState field names: 4-bit ``{name}.packed`` (uint8, the bytes
    bitsandbytes stores), ``.absmax``, ``.code``, and with double quantization ``.offset``,
    ``.state2.absmax``, ``.state2.code``; LLM.int8 ``{name}.CB`` (int8 [O, I]) and ``.SCB`` (float32 [O])."""
    if isinstance(weight, Linear8bitWeight):
        return {f"{name}.CB": np.asarray(weight.CB), f"{name}.SCB": np.asarray(weight.SCB)}
    s = weight.state
    out = {f"{name}.packed": np.asarray(weight.packed), f"{name}.absmax": np.asarray(s.absmax),
           f"{name}.code": np.asarray(s.code)}
    if s.nested:
        out[f"{name}.offset"] = np.asarray(s.offset, dtype=_F32).reshape(1)
        out[f"{name}.state2.absmax"] = np.asarray(s.state2.absmax)
        out[f"{name}.state2.code"] = np.asarray(s.state2.code)
    return out


def config_for(quantization_config, model_config) -> BitsAndBytesConfig | None:
    """The quantization of a load: the argument, else config.json's ``quantization_config`` (a checkpoint
    transformers saved quantized), else None."""
    if quantization_config is None:
        stored = getattr(model_config, "extra", {}).get("quantization_config")
        return None if stored is None else BitsAndBytesConfig.from_dict(stored)
    if isinstance(quantization_config, dict):
        return BitsAndBytesConfig.from_dict(quantization_config)
    if not isinstance(quantization_config, BitsAndBytesConfig):
        raise ConfigError(f"quantization_config must be a refimpl.BitsAndBytesConfig (or its dict), got "
                          f"{type(quantization_config).__name__}")
    return quantization_config


def check_model_dtype(qconfig: BitsAndBytesConfig, dtype, backend="numpy") -> None:
    if backend != "numpy":
        raise ConfigError(f"quantization_config with backend={backend!r}: refimpl's bitsandbytes formats run on "
                          "numpy (bitsandbytes' CPU path); load with backend='numpy'")
    if np.dtype(dtype) == np.float64:
        what = "4-bit" if qconfig.load_in_4bit else "8-bit"
        raise ConfigError(f"dtype='float64' with {what} quantization: bitsandbytes' layers compute in float32 or "
                          "half precision; load with dtype='float32' (bnb_4bit_compute_dtype picks the 4-bit compute dtype)")


def quantize_params(model_cls, params: dict, qconfig: BitsAndBytesConfig, dtype, offset_threads: int = 1):
    """Replace the linear weights transformers would quantize by quantized weights. Returns (params, names).

    Weights already quantized (a pre-quantized checkpoint) stay as they are. A weight is first cast to the
    model's dtype, as transformers loads it before bitsandbytes quantizes it.
    """
    keys = skip_keys(model_cls, qconfig)
    out, names = dict(params), []
    for name, arr in params.items():
        if not is_linear_weight(name, arr) or is_skipped(name[: -len(".weight")], keys):
            continue
        names.append(name)
        if is_quantized(arr):
            continue
        w = np.asarray(arr).astype(dtype, copy=False)
        fourbit.check_finite(w, name)
        if qconfig.load_in_4bit:
            packed, state = fourbit.quantize_4bit(
                w, blocksize=64, quant_type=qconfig.bnb_4bit_quant_type,
                compress_statistics=qconfig.bnb_4bit_use_double_quant,
                quant_storage=qconfig.bnb_4bit_quant_storage, offset_threads=offset_threads)
            out[name] = Linear4bitWeight(packed, state, qconfig.bnb_4bit_compute_dtype)
        else:
            cb, scb, _ = int8.int8_vectorwise_quant(w)
            out[name] = Linear8bitWeight(cb, scb, qconfig.llm_int8_threshold)
    return out, names


_4BIT_SUFFIXES = (".absmax", ".quant_map", ".nested_absmax", ".nested_quant_map")


def gather_prequantized(tensors: dict, qconfig: BitsAndBytesConfig) -> dict:
    """A checkpoint transformers saved quantized -> the same names with quantized weight objects.

    4-bit: ``X.weight`` (packed bytes [n/2, 1]) with ``X.weight.absmax``, ``.quant_map``, ``.nested_absmax``,
    ``.nested_quant_map`` and ``X.weight.quant_state.bitsandbytes__nf4|fp4`` (JSON bytes: quant_type, blocksize,
    dtype, shape, nested_blocksize, nested_dtype, nested_offset), bitsandbytes' QuantState.as_dict(packed=True).
    8-bit: ``X.weight`` int8 with ``X.SCB`` float32 and ``X.weight_format`` (0: row-major).
    """
    tensors = dict(tensors)
    packed_keys = [k for k in tensors if ".weight.quant_state.bitsandbytes__" in k]
    for key in packed_keys:
        base = key.split(".quant_state.")[0]  # X.weight
        meta = json.loads(bytes(np.asarray(tensors.pop(key)).astype(np.uint8).tolist()).decode("utf-8"))
        get = lambda suffix: np.asarray(tensors.pop(base + suffix))  # noqa: E731
        try:
            absmax, code = get(".absmax"), get(".quant_map").astype(_F32)
            state2, offset = None, None
            if base + ".nested_absmax" in tensors:
                state2 = fourbit.QuantState(get(".nested_absmax").astype(_F32), tuple(absmax.shape),
                                            get(".nested_quant_map").astype(_F32), int(meta["nested_blocksize"]),
                                            None, meta.get("nested_dtype", "float32"))
                offset = _F32(meta["nested_offset"])
        except KeyError as e:
            raise CheckpointError(f"4-bit weight {base}: its quantization state lacks {e.args[0]}") from None
        state = fourbit.QuantState(absmax, tuple(meta["shape"]), code, int(meta["blocksize"]), meta["quant_type"],
                                   meta["dtype"], offset, state2)
        fourbit.check_blocksize(state.blocksize)
        fourbit.check_quant_type(state.quant_type)
        tensors[base] = Linear4bitWeight(np.asarray(tensors[base]), state, qconfig.bnb_4bit_compute_dtype)
    for key in [k for k in tensors if k.endswith(".SCB")]:
        base = key[: -len(".SCB")]
        tensors.pop(base + ".weight_format", None)
        tensors[base + ".weight"] = Linear8bitWeight(np.asarray(tensors[base + ".weight"]), tensors.pop(key),
                                                     qconfig.llm_int8_threshold)
    return tensors
