"""Model configs read from ``config.json``, with transformers 4.57.6's defaults.

Only fields that change the computation are typed here; every other key of config.json is kept in
``extra`` (so nothing is silently lost) and written back by ``to_dict``. Values refimpl cannot honour
(an unknown ``hidden_act`` or ``position_embedding_type``) are errors that name them.
"""

from __future__ import annotations

import dataclasses
import json
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Optional

from .errors import CheckpointNotFoundError, ConfigError
from .ops.activations import ACT2FN
from .checkpoint import parse_json_text

POSITION_EMBEDDING_TYPES = ("absolute", "relative_key", "relative_key_query")
PROBLEM_TYPES = (None, "regression", "single_label_classification", "multi_label_classification")


def read_config_json(path) -> dict:
    """Parse a config.json (a checkpoint directory holding one, or the .json file itself, as transformers'
    config classes accept) into a dict, with errors naming the file: another file given where a directory
    is expected, a name that is no local path (a model hub name?), a directory without config.json."""
    from .checkpoint import local_directory

    given = Path(path)
    if given.is_file() and given.suffix == ".json":
        path = given
    else:
        directory = local_directory(given, holding="config.json and model.safetensors")
        path = directory / "config.json"
        if not path.is_file():
            inside = sorted(p.name for p in directory.iterdir())
            nested = sorted(p.name for p in directory.iterdir() if (p / "config.json").is_file())
            raise CheckpointNotFoundError(
                f"no config.json in {str(directory)!r}, which holds {inside[:12]}{' ...' if len(inside) > 12 else ''}; "
                "a checkpoint directory needs config.json"
                + (f" (its subdirector{'ies' if len(nested) > 1 else 'y'} {nested[:5]} "
                   f"{'have' if len(nested) > 1 else 'has'} one: pass that directory)" if nested else "")
            )
    try:
        data = parse_json_text(path.read_text(encoding="utf-8"))  # a RecursionError becomes a JSONDecodeError
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path} is not valid JSON ({e}); fix or regenerate the file") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a JSON object, got {type(data).__name__}")
    return data


@dataclass
class _Config:
    """A model config: typed fields (those that change the computation) plus ``extra`` (every other key).

    ``model_type`` is the class's, as in transformers: a file saying another type is read with a warning
    (except a BERT config read as BertGeneration's, the documented warm start), and ``to_dict`` writes the
    class's type, so what is saved is what the class is.
    """

    model_type: ClassVar[str] = ""
    # keys transformers may write that a config's JSON carries but refimpl has no use for: never an error
    extra: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_dict(cls, data: dict, **overrides):
        """A config from a config.json dict, then ``overrides`` applied as :meth:`update` applies them."""
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        kind = data.get("model_type", cls.model_type)
        if kind != cls.model_type and (kind, cls.model_type) not in _COMPATIBLE_TYPES:
            warnings.warn(f"a config of model_type {kind!r} is read as {cls.__name__} (model_type "
                          f"{cls.model_type!r}); this is not supported for every configuration", stacklevel=3)
        data = {k: v for k, v in data.items() if k != "model_type"}
        known = {k: v for k, v in data.items() if k in names}
        extra = {k: v for k, v in data.items() if k not in names}
        cfg = cls(**known, extra=extra)  # __post_init__ derives what transformers derives
        if overrides:
            cfg.update(**overrides)  # validates
        else:
            cfg.validate()
        return cfg

    @classmethod
    def from_pretrained(cls, path, **overrides):
        """Read ``config.json`` from a checkpoint directory (or the file itself); ``overrides`` set fields,
        as transformers' ``Config.from_pretrained(path, num_labels=3)``."""
        return cls.from_dict(read_config_json(path), **overrides)

    def __post_init__(self):
        self._complete(self.extra)

    def update(self, **values) -> None:
        """Set config fields by name (transformers' ``from_pretrained(path, **kwargs)`` overrides), then
        validate. A name the config does not have is an error (transformers passes such a keyword on to
        the model's constructor, which refuses it). Setting ``num_labels`` to a count other than
        ``id2label``'s resets the labels to LABEL_0..; setting ``id2label`` sets ``num_labels``."""
        names = {f.name for f in dataclasses.fields(self)} - {"extra"}
        unknown = sorted(k for k in values if k not in names and k not in self.extra)
        if unknown:
            raise ConfigError(
                f"{type(self).__name__} has no field {', '.join(map(repr, unknown))}; config fields are "
                f"{sorted(names)} (and the keys config.json already holds)"
            )
        for key, value in values.items():
            if key in names:
                setattr(self, key, value)
            else:
                self.extra[key] = value
        self._complete(self.extra, relabel="num_labels" in values and "id2label" not in values)
        self.validate()

    def _complete(self, extra: dict, relabel: bool = False) -> None:
        """Derive fields transformers derives (hook for subclasses)."""

    def validate(self) -> None:
        """Raise ConfigError for values refimpl cannot honour."""

    def to_dict(self) -> dict:
        d = {"model_type": self.model_type}
        d.update({f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"})
        d.update(self.extra)
        return d

    def to_json_string(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    def save_pretrained(self, directory) -> Path:
        """Write ``config.json`` into ``directory`` (created if needed); returns the file's path."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / "config.json"
        path.write_text(self.to_json_string() + "\n", encoding="utf-8")
        return path


# (file's model_type, class's model_type) read without a warning: transformers' documented warm start
_COMPATIBLE_TYPES = {("bert", "bert-generation")}


_TYPES = {"bool": (bool,), "int": (int,), "float": (int, float), "str": (str,), "dict": (dict,)}


def check_field_types(config) -> None:
    """Every typed field of ``config`` holds a value of its declared type (``Optional[...]`` admits null;
    ``Any`` anything): a string where a boolean belongs (``is_decoder: "false"``, which Python would read
    as true) or a list where a number belongs is a ConfigError naming the key, never a silent reading."""
    for f in dataclasses.fields(config):
        declared = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", "Any")
        optional = declared.startswith("Optional[")
        base = declared[len("Optional["):-1] if optional else declared
        if base not in _TYPES:
            continue
        value = getattr(config, f.name)
        if value is None and optional:
            continue
        ok = isinstance(value, _TYPES[base]) and not (base in ("int", "float") and isinstance(value, bool))
        if not ok:
            raise ConfigError(
                f"config value {f.name}={value!r} ({type(value).__name__}) must be {'null or ' if optional else ''}"
                f"{'a JSON boolean (true/false, unquoted)' if base == 'bool' else f'of type {base}'}; fix config.json"
            )


def _check_int(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"config value {name}={value!r} must be an integer >= {minimum}")


@dataclass
class BertConfig(_Config):
    """BERT's hyper-parameters. Defaults are transformers' BertConfig defaults (bert-base-uncased)."""

    model_type: ClassVar[str] = "bert"
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

    def _complete(self, extra: dict, relabel: bool = False) -> None:
        """transformers' label bookkeeping: ``id2label`` (keys made ints) decides ``num_labels``; without
        one (or after ``num_labels`` is changed to another count) the labels are LABEL_0 .. LABEL_{n-1};
        ``label2id`` defaults to the inverse of ``id2label``."""
        if self.id2label is not None and not (relabel and len(self.id2label) != self.num_labels):
            if not isinstance(self.id2label, dict):
                raise ConfigError(f"id2label must be a mapping of label index -> name, got {self.id2label!r}")
            try:
                self.id2label = {int(k): v for k, v in self.id2label.items()}
            except (TypeError, ValueError):
                raise ConfigError(f"id2label keys must be integers (or their strings), got {sorted(self.id2label)}") from None
            self.num_labels = len(self.id2label)
        else:
            _check_int("num_labels", self.num_labels, 1)
            self.id2label = {i: f"LABEL_{i}" for i in range(self.num_labels)}
            self.label2id = None
        if self.label2id is None or (relabel and len(self.label2id) != self.num_labels):
            self.label2id = {v: k for k, v in self.id2label.items()}

    def validate(self) -> None:
        check_field_types(self)
        for name in ("layer_norm_eps", "initializer_range"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0 or (name == "layer_norm_eps" and value == 0):
                raise ConfigError(f"config value {name}={value!r} must be a finite number "
                                  f"{'> 0' if name == 'layer_norm_eps' else '>= 0'} (BERT uses 1e-12 and 0.02)")
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob", "classifier_dropout"):
            value = getattr(self, name)
            if value is not None and not 0 <= value <= 1:
                raise ConfigError(f"config value {name}={value!r} must be a probability in [0, 1]")
        for name in ("pad_token_id", "bos_token_id", "decoder_start_token_id", "eos_token_id"):
            value = getattr(self, name)
            for token in value if isinstance(value, list) else [value]:
                if token is not None and (isinstance(token, bool) or not isinstance(token, int) or token < 0):
                    raise ConfigError(f"config value {name}={value!r} must be a non-negative token id "
                                      f"{'(or a list of them) ' if name == 'eos_token_id' else ''}or null")
        if self.pad_token_id is not None and self.pad_token_id >= self.vocab_size:
            raise ConfigError(f"pad_token_id={self.pad_token_id} is outside the vocabulary [0, {self.vocab_size}) "
                              "(it indexes the word embeddings' padding row)")
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

    model_type: ClassVar[str] = "bert-generation"
    vocab_size: int = 50358
    hidden_size: int = 1024
    num_hidden_layers: int = 24
    num_attention_heads: int = 16
    intermediate_size: int = 4096
    pad_token_id: Optional[int] = 0
    bos_token_id: Optional[int] = 2
    eos_token_id: Any = 1
