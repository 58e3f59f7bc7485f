"""New weights as transformers 4.57.6 makes them: ``_init_weights`` of BertPreTrainedModel,
RobertaPreTrainedModel and BertGenerationPreTrainedModel (the same rules), and torch's own default for the
one module those leave alone (EncoderDecoderModel's ``enc_to_dec_proj``).

    model = refimpl.BertModel(refimpl.BertConfig(), seed=0)    # every weight new, from a seeded generator
    refimpl.set_seed(0); model = refimpl.BertModel(config)     # the same, from the library's generator

By parameter name (std = ``config.initializer_range``, 0.02 by default):

| parameter | initial value | transformers' module rule |
|---|---|---|
| ``*LayerNorm.weight``, ``*layer_norm.weight`` | 1 | nn.LayerNorm: weight 1 |
| ``*LayerNorm.bias``, ``*layer_norm.bias``, every other ``*bias`` | 0 | nn.Linear bias 0, LayerNorm bias 0, LM-head bias 0 |
| embeddings with a padding index (``word_embeddings``; RoBERTa's ``position_embeddings`` too) | normal(0, std), the padding row 0 | nn.Embedding(padding_idx=pad_token_id) |
| every other weight (Linear, Embedding) | normal(0, std) | ``normal_(mean=0.0, std=initializer_range)`` |
| ``enc_to_dec_proj.weight`` / ``.bias`` | uniform(-1/sqrt(D_enc), 1/sqrt(D_enc)) | not in the encoder or the decoder, so ``_init_weights`` skips it: nn.Linear's default (kaiming_uniform with a = sqrt(5)) |

A tied LM-head weight is not a parameter of its own (it is the word embeddings, padding row included, as
after transformers' ``tie_weights``). Values are drawn in float64, in the order of the class's parameter
table, then cast to the model's dtype: the same distributions as transformers, not the same numbers (torch's
generator is not numpy's), so tests compare statistics.

Before anything is drawn, :func:`check_fits_in_memory` refuses a table larger than the machine's physical
memory at the model's dtype (``BertConfig(vocab_size=10**9)`` would otherwise start allocating terabytes).
"""

from __future__ import annotations

import math
import os

import numpy as np

from ..errors import ConfigError

_library_generator = None  # set by set_seed; None: fresh entropy for every unseeded model


def set_seed(seed: int) -> None:
    """Seed the generator that models built without ``seed=`` draw from (transformers' ``set_seed``)."""
    global _library_generator
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
    _library_generator = np.random.default_rng(int(seed))


def generator(seed=None) -> np.random.Generator:
    """``seed`` given: a generator of its own; else the one ``set_seed`` made; else fresh entropy."""
    if seed is not None:
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
        return np.random.default_rng(int(seed))
    if _library_generator is not None:
        return _library_generator
    return np.random.default_rng()


def physical_memory() -> int | None:
    """Bytes of physical memory of this machine (``SC_PAGE_SIZE * SC_PHYS_PAGES``), or None where the system
    does not say (no ``os.sysconf``, or those names unknown)."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None
    return total if total > 0 else None


def check_fits_in_memory(shapes: dict, dtype) -> None:
    """ConfigError when the parameter table ``shapes`` (name -> shape) needs more bytes at ``dtype`` than the
    machine's physical memory: the size, the memory, the largest parameter and the fix. Nothing is allocated;
    where the memory is unknown (:func:`physical_memory` None) nothing is checked."""
    total = physical_memory()
    if total is None:
        return
    sizes = {name: math.prod(shape) for name, shape in shapes.items()}  # Python ints: no overflow
    need = sum(sizes.values()) * np.dtype(dtype).itemsize
    if need <= total:
        return
    largest = max(sizes, key=sizes.get)
    raise ConfigError(
        f"new weights for this config need {need} bytes ({need / 2**30:.1f} GiB: {sum(sizes.values())} "
        f"parameters at {np.dtype(dtype).name}), more than this machine's physical memory of {total} bytes "
        f"({total / 2**30:.1f} GiB); the largest is {largest} {list(shapes[largest])}. Make the config smaller "
        "(vocab_size, hidden_size, intermediate_size, num_hidden_layers, max_position_embeddings)"
    )


def init_weights(shapes: dict, std: float, rng, padding_rows=None) -> dict:
    """New host arrays (float64) for every ``name -> shape`` in ``shapes``, by the table above.

    padding_rows: ``name -> row`` of embeddings whose padding row is zeroed (row None or outside the
    table: nothing zeroed, as nn.Embedding with padding_idx None).
    """
    padding_rows = padding_rows or {}
    out = {}
    for name, shape in shapes.items():
        fan_in = shapes["enc_to_dec_proj.weight"][1] if name.startswith("enc_to_dec_proj.") else None
        out[name] = init_param(name, shape, std, rng, fan_in)
        row = padding_rows.get(name)
        if row is not None and 0 <= row < shape[0]:
            out[name][row] = 0.0
    return out


def init_param(name: str, shape, std: float, rng, fan_in=None) -> np.ndarray:
    """One new parameter by its name (module docstring): float64 [shape]. fan_in: the input size of
    ``enc_to_dec_proj`` (its bias's bound comes from the weight's fan-in, as in nn.Linear)."""
    if name.endswith(("LayerNorm.weight", "layer_norm.weight")):
        return np.ones(shape)
    if name.startswith("enc_to_dec_proj."):
        bound = 1.0 / np.sqrt(fan_in)
        return rng.uniform(-bound, bound, size=shape)
    if name.endswith("bias"):
        return np.zeros(shape)
    return rng.normal(0.0, std, size=shape)
