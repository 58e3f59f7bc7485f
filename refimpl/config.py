"""Model configs read from ``config.json``, with transformers 4.57.6's defaults.

Only fields that change the computation are typed here; every other key of config.json is kept in
``extra`` (so nothing is silently lost) and written back by ``to_dict``. Values refimpl cannot honour
(an unknown ``hidden_act`` or ``position_embedding_type``) are errors that name them.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from .errors import CheckpointNotFoundError, ConfigError
from .ops.activations import ACT2FN

POSITION_EMBEDDING_TYPES = ("absolute", "relative_key", "relative_key_query")
PROBLEM_TYPES = (None, "regression", "single_label_classification", "multi_label_classification")


def read_config_json(path) -> dict:
    """Parse a config.json (a file, or a directory holding one) into a dict, with errors naming the file."""
    path = Path(path)
    if path.is_dir():
        path = path / "config.json"
    if not path.is_file():
        raise CheckpointNotFoundError(f"config file {path} does not exist; a checkpoint directory needs config.json")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path} is not valid JSON ({e}); fix or regenerate the file") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a JSON object, got {type(data).__name__}")
    return data


@dataclass
class _Config:
    extra: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_dict(cls, data: dict):
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        known = {k: v for k, v in data.items() if k in names}
        extra = {k: v for k, v in data.items() if k not in names}
        cfg = cls(**known, extra=extra)
        cfg._complete(extra)
        cfg.validate()
        return cfg

    @classmethod
    def from_pretrained(cls, path):
        """Read ``config.json`` from a checkpoint directory (or the file itself)."""
        return cls.from_dict(read_config_json(path))

    def _complete(self, extra: dict) -> None:
        """Derive fields transformers derives (hook for subclasses)."""

    def validate(self) -> None:
        """Raise ConfigError for values refimpl cannot honour."""

    def to_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"}
        d.update(self.extra)
        return d

    def to_json_string(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)


def _check_int(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"config value {name}={value!r} must be an integer >= {minimum}")


@dataclass
class BertConfig(_Config):
    """BERT's hyper-parameters. Defaults are transformers' BertConfig defaults (bert-base-uncased)."""

    model_type: str = "bert"
    vocab_size: int = 30522
    hidden_size: int = 768  # D
    num_hidden_layers: int = 12  # L
    num_attention_heads: int = 12  # N; head size H = D / N
    intermediate_size: int = 3072  # feed-forward inner size
    hidden_act: str = "gelu"  # exact erf GELU; see ops/activations.py for every name
    hidden_dropout_prob: float = 0.1  # unused at inference (dropout is the identity)
    attention_probs_dropout_prob: float = 0.1  # unused at inference
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    initializer_range: float = 0.02  # std of the normal used for newly initialised weights
    layer_norm_eps: float = 1e-12
    pad_token_id: Optional[int] = 0
    bos_token_id: Optional[int] = None
    eos_token_id: Any = None
    decoder_start_token_id: Optional[int] = None
    position_embedding_type: str = "absolute"  # or relative_key, relative_key_query
    use_cache: bool = True
    classifier_dropout: Optional[float] = None
    is_decoder: bool = False  # causal self-attention
    add_cross_attention: bool = False  # a cross-attention block in every layer (needs is_decoder)
    tie_word_embeddings: bool = True  # LM head weight = word embeddings
    chunk_size_feed_forward: int = 0  # chunking does not change results; accepted and ignored
    num_labels: int = 2  # classification heads; derived from id2label when present
    problem_type: Optional[str] = None
    id2label: Optional[dict] = None
    label2id: Optional[dict] = None
    output_attentions: bool = False
    output_hidden_states: bool = False

    @property
    def head_size(self) -> int:
        return self.hidden_size // self.num_attention_heads

    def _complete(self, extra: dict) -> None:
        if self.id2label is not None:
            self.id2label = {int(k): v for k, v in self.id2label.items()}
            self.num_labels = len(self.id2label)

    def validate(self) -> None:
        if self.hidden_act not in ACT2FN:
            raise ConfigError(
                f"hidden_act={self.hidden_act!r} is not supported; refimpl implements {sorted(ACT2FN)}"
            )
        if self.position_embedding_type not in POSITION_EMBEDDING_TYPES:
            raise ConfigError(
                f"position_embedding_type={self.position_embedding_type!r} is not supported; "
                f"choose one of {POSITION_EMBEDDING_TYPES}"
            )
        if self.problem_type not in PROBLEM_TYPES:
            raise ConfigError(f"problem_type={self.problem_type!r} is not one of {PROBLEM_TYPES}")
        for name, minimum in [("vocab_size", 1), ("hidden_size", 1), ("num_hidden_layers", 0),
                              ("num_attention_heads", 1), ("intermediate_size", 1),
                              ("max_position_embeddings", 1), ("type_vocab_size", 1), ("num_labels", 1)]:
            _check_int(name, getattr(self, name), minimum)
        if self.hidden_size % self.num_attention_heads != 0:
            raise ConfigError(
                f"hidden_size={self.hidden_size} is not a multiple of num_attention_heads="
                f"{self.num_attention_heads}; every head must have the same size"
            )
        if self.add_cross_attention and not self.is_decoder:
            raise ConfigError("add_cross_attention=True needs is_decoder=True (cross-attention only exists in a decoder)")


@dataclass
class BertGenerationConfig(BertConfig):
    """BertGeneration's hyper-parameters (transformers' BertGenerationConfig defaults).

    Same layer math as BERT; no token types and no pooler, so ``type_vocab_size`` is unused.
    """

    model_type: str = "bert-generation"
    vocab_size: int = 50358
    hidden_size: int = 1024
    num_hidden_layers: int = 24
    num_attention_heads: int = 16
    intermediate_size: int = 4096
    pad_token_id: Optional[int] = 0
    bos_token_id: Optional[int] = 2
    eos_token_id: Any = 1
