"""Output records with transformers' class and field names.

Fields hold arrays of the model's backend (or tuples of them, or None). Like transformers' ModelOutput,
a record can be indexed by field name (``out["logits"]``) or, over its non-None fields in order, by
position (``out[0]``), and ``to_tuple()`` gives those fields.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Optional


@dataclass
class ModelOutput:
    def to_tuple(self) -> tuple:
        return tuple(getattr(self, f.name) for f in dataclasses.fields(self) if getattr(self, f.name) is not None)

    def keys(self) -> list:
        return [f.name for f in dataclasses.fields(self) if getattr(self, f.name) is not None]

    def items(self) -> list:
        return [(k, getattr(self, k)) for k in self.keys()]

    def __getitem__(self, key):
        if isinstance(key, str):
            return getattr(self, key)
        return self.to_tuple()[key]

    def __contains__(self, key) -> bool:
        return key in self.keys()

    def arrays(self) -> dict:
        """Every array field on the host, flat and in field order: ``{"logits": ..., "hidden_states.0": ...}``
        (tuples as ``field.i``; None entries and the KV cache left out)."""
        import numpy as np

        from .backend import to_host

        flat = {}
        for key, value in self.items():
            if key == "past_key_values":
                continue
            for name, v in ([(f"{key}.{i}", v) for i, v in enumerate(value)] if isinstance(value, (tuple, list))
                            else [(key, value)]):
                if v is not None:
                    flat[name] = np.asarray(to_host(v))
        return flat


@dataclass
class BaseModelOutputWithPastAndCrossAttentions(ModelOutput):
    last_hidden_state: Any = None  # [B, S, D]
    past_key_values: Any = None  # refimpl.cache.KVCache when use_cache
    hidden_states: Optional[tuple] = None  # L+1 arrays [B, S, D]: embeddings, then each layer's output
    attentions: Optional[tuple] = None  # L arrays [B, N, S, T]
    cross_attentions: Optional[tuple] = None  # L arrays [B, N, S, S_enc]


@dataclass
class BaseModelOutputWithPoolingAndCrossAttentions(ModelOutput):
    last_hidden_state: Any = None  # [B, S, D]
    pooler_output: Any = None  # [B, D] tanh(dense(h[:, 0]))
    past_key_values: Any = None
    hidden_states: Optional[tuple] = None
    attentions: Optional[tuple] = None
    cross_attentions: Optional[tuple] = None


@dataclass
class BertForPreTrainingOutput(ModelOutput):
    loss: Any = None
    prediction_logits: Any = None  # [B, S, V]
    seq_relationship_logits: Any = None  # [B, 2]
    hidden_states: Optional[tuple] = None
    attentions: Optional[tuple] = None


@dataclass
class CausalLMOutputWithCrossAttentions(ModelOutput):
    loss: Any = None
    logits: Any = None  # [B, S, V]
    past_key_values: Any = None
    hidden_states: Optional[tuple] = None
    attentions: Optional[tuple] = None
    cross_attentions: Optional[tuple] = None


@dataclass
class MaskedLMOutput(ModelOutput):
    loss: Any = None
    logits: Any = None  # [B, S, V]
    hidden_states: Optional[tuple] = None
    attentions: Optional[tuple] = None


@dataclass
class NextSentencePredictorOutput(ModelOutput):
    loss: Any = None
    logits: Any = None  # [B, 2]
    hidden_states: Optional[tuple] = None
    attentions: Optional[tuple] = None


@dataclass
class SequenceClassifierOutput(ModelOutput):
    loss: Any = None
    logits: Any = None  # [B, num_labels]
    hidden_states: Optional[tuple] = None
    attentions: Optional[tuple] = None


@dataclass
class MultipleChoiceModelOutput(ModelOutput):
    loss: Any = None
    logits: Any = None  # [B, C]
    hidden_states: Optional[tuple] = None
    attentions: Optional[tuple] = None


@dataclass
class TokenClassifierOutput(ModelOutput):
    loss: Any = None
    logits: Any = None  # [B, S, num_labels]
    hidden_states: Optional[tuple] = None
    attentions: Optional[tuple] = None


@dataclass
class QuestionAnsweringModelOutput(ModelOutput):
    loss: Any = None
    start_logits: Any = None  # [B, S]
    end_logits: Any = None  # [B, S]
    hidden_states: Optional[tuple] = None
    attentions: Optional[tuple] = None


@dataclass
class Seq2SeqLMOutput(ModelOutput):
    loss: Any = None
    logits: Any = None  # [B, T, V]
    past_key_values: Any = None
    decoder_hidden_states: Optional[tuple] = None
    decoder_attentions: Optional[tuple] = None
    cross_attentions: Optional[tuple] = None
    encoder_last_hidden_state: Any = None
    encoder_hidden_states: Optional[tuple] = None
    encoder_attentions: Optional[tuple] = None
