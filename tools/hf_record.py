"""Record transformers 4.57.6's intermediates under refimpl's recorder names, by hooking its modules.

    from hf_record import hf_record
    with hf_record(hf_model) as rec:          # a transformers BERT-family model (eager attention)
        hf_model(**inputs)                    # or hf_model.generate(...)
    rec["encoder.layer.0.attention.self.masked_scores"]   # numpy array

This is how refimpl's names are proven (tests/test_recorder_parity.py): the same tensors, taken out of
the reference implementation itself. It needs torch and transformers (refimpl does not). The rules, one
per kind of name (docs/intermediates.md lists the names):

- a module whose checkpoint name is a recorded name — ``nn.Linear`` (``...query``, ``...dense``,
  ``classifier``, ``cls.predictions.decoder``...), ``nn.Embedding``, ``nn.LayerNorm``, the activation
  modules (``intermediate.intermediate_act_fn``, ``transform_act_fn``, ``pooler.activation``): its output;
- ``embeddings.sum``, ``lm_head.gelu``: the input of the LayerNorm that follows (a forward pre-hook);
- ``attention.self.context`` / ``probs``: the self-attention module's two outputs;
- ``scores``, ``masked_scores``, ``position_scores``, ``cache_key``, ``cache_value``: inside an attention
  module's call, torch.matmul, torch.einsum and softmax are wrapped for the duration of the call: the first
  matmul is q k^T (its second operand, transposed back, the keys read; with a cache those are
  ``cache_key``), the softmax's input is the masked scores, the einsum results (summed) the
  relative-position terms, and the second matmul's second operand the values read (``cache_value``);
- generation: each call of the decoder is a step (``step.{t}.``, the EncoderDecoderModel's ``decoder.``
  prefix inside it). Cross-attention keys and values, computed by transformers in the first step and
  cached, are filed without the step prefix, where refimpl computes them once before the steps.
"""

from __future__ import annotations

import contextlib

import numpy as np

ACTIVATION_SUFFIXES = ("intermediate_act_fn", "transform_act_fn", "pooler.activation")
PRE_HOOKED = {"embeddings.LayerNorm": "embeddings.sum", "lm_head.layer_norm": "lm_head.gelu"}


class _State:
    def __init__(self):
        self.records = {}
        self.step = None  # generation step of the current decoder call, or None
        self.attention = None  # name of the attention module being run
        self.matmuls = 0
        self.einsum = None
        self.cached = False  # is the current call using a cache?


def _numpy(t):
    return t.detach().cpu().numpy().copy()


@contextlib.contextmanager
def hf_record(model, decoder_prefix=None):
    """Hooks on ``model`` (a transformers model) recording into a dict; see the module docstring.

    decoder_prefix: the module name whose calls are generation steps ("decoder" for an
    EncoderDecoderModel, "" for a decoder-only model); None: no steps (a plain forward).
    """
    import torch
    from torch import nn

    state = _State()
    handles = []

    def name_of(module_name):
        if state.step is None or module_name.startswith("encoder.") and decoder_prefix == "decoder":
            return module_name
        if ".crossattention.self." in module_name and module_name.endswith((".key", ".value")):
            return module_name  # computed once (first step), filed without a step
        return f"step.{state.step}.{module_name}"

    def put(name, value):
        key = name_of(name)
        assert key not in state.records, f"{key} recorded twice"
        state.records[key] = value

    def out_hook(name):
        def hook(module, args, output):
            if name == "enc_to_dec_proj" and name in state.records:
                # transformers projects the same encoder states again at every step; refimpl once
                assert np.array_equal(state.records[name], _numpy(output)), "enc_to_dec_proj changed between steps"
                return
            if isinstance(output, torch.Tensor):
                put(name, _numpy(output))
        return hook

    def pre_hook(name):
        def hook(module, args):
            put(name, _numpy(args[0]))
        return hook

    def attention_pre(name):
        def hook(module, args, kwargs):
            state.attention, state.matmuls, state.einsum = name, 0, None
            state.cached = kwargs.get("past_key_values") is not None
        return hook

    def attention_post(name):
        def hook(module, args, kwargs, output):
            if state.einsum is not None:
                put(name + ".position_scores", _numpy(state.einsum))
            put(name + ".context", _numpy(output[0]))
            put(name + ".probs", _numpy(output[1]))
            state.attention = None
        return hook

    for name, module in model.named_modules():
        if isinstance(module, (nn.Linear, nn.LayerNorm)) or (
                isinstance(module, nn.Embedding) and not name.endswith("distance_embedding")) or \
                name.endswith(ACTIVATION_SUFFIXES):
            handles.append(module.register_forward_hook(out_hook(name)))
        for suffix, target in PRE_HOOKED.items():
            if name == suffix or name.endswith("." + suffix):
                handles.append(module.register_forward_pre_hook(pre_hook(name[: -len(suffix)] + target)))
        if name.endswith(("attention.self", "crossattention.self")):
            if "Sdpa" in type(module).__name__ or "Flash" in type(module).__name__:
                raise ValueError(f"{name} is {type(module).__name__}: hf_record needs eager attention (load the "
                                 "model with attn_implementation='eager'), whose scores and probabilities exist")
            handles.append(module.register_forward_pre_hook(attention_pre(name), with_kwargs=True))
            handles.append(module.register_forward_hook(attention_post(name), with_kwargs=True))
    if decoder_prefix is not None:
        decoder = model.get_submodule(decoder_prefix) if decoder_prefix else model

        def step_pre(module, args):
            state.step = 0 if state.step is None else state.step + 1
        handles.append(decoder.register_forward_pre_hook(step_pre))

    real_matmul, real_softmax, real_einsum = torch.matmul, torch.nn.functional.softmax, torch.einsum

    def matmul(a, b, *rest, **kw):
        out = real_matmul(a, b, *rest, **kw)
        if state.attention is not None:
            state.matmuls += 1
            if state.matmuls == 1:
                put(state.attention + ".scores", _numpy(out))
                if state.cached and ".crossattention." not in state.attention:
                    put(state.attention + ".cache_key", _numpy(b.transpose(-1, -2)))
            elif state.matmuls == 2 and state.cached and ".crossattention." not in state.attention:
                put(state.attention + ".cache_value", _numpy(b))
        return out

    def softmax(x, *rest, **kw):
        if state.attention is not None:
            put(state.attention + ".masked_scores", _numpy(x))
        return real_softmax(x, *rest, **kw)

    def einsum(*args, **kw):
        out = real_einsum(*args, **kw)
        if state.attention is not None:
            state.einsum = out if state.einsum is None else state.einsum + out
        return out

    torch.matmul, torch.nn.functional.softmax, torch.einsum = matmul, softmax, einsum
    try:
        yield state.records
    finally:
        torch.matmul, torch.nn.functional.softmax, torch.einsum = real_matmul, real_softmax, real_einsum
        for h in handles:
            h.remove()


def as_float64(records: dict) -> dict:
    return {k: np.asarray(v, dtype=np.float64) for k, v in records.items()}
