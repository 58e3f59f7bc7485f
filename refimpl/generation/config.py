"""Generation options with transformers 4.57.6's names and defaults, and where their values come from.

Precedence, lowest first (as transformers resolves them for a model loaded from a directory):
  1. ``GenerationConfig()`` defaults (max_length 20, num_beams 1, top_k 50, ...);
  2. the model's config.json: every generation field it sets (not None); for an encoder-decoder the
     top-level config first, then the decoder's config for fields still at their default;
  3. instead of 1-2: ``generation_config.json`` next to the checkpoint, when the model was loaded by
     ``EncoderDecoderModel`` / ``BertGeneration*.from_pretrained`` from a directory that has one (for other
     classes pass ``generation_config=load_generation_config(dir)``);
  4. keyword arguments to ``generate``.
Invalid values raise :class:`refimpl.errors.InputError` naming the value, the limit and the fix.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from ..errors import InputError


@dataclass
class GenerationConfig:
    max_length: int = 20  # total length (prompt / decoder start included)
    max_new_tokens: Optional[int] = None  # overrides max_length: max_length = prompt length + max_new_tokens
    min_length: int = 0
    min_new_tokens: Optional[int] = None
    early_stopping: Any = False  # True, False or "never" (beam search)
    do_sample: bool = False
    num_beams: int = 1
    num_return_sequences: int = 1
    temperature: float = 1.0
    top_k: Optional[int] = 50
    top_p: Optional[float] = 1.0
    repetition_penalty: float = 1.0
    length_penalty: float = 1.0
    no_repeat_ngram_size: int = 0
    bad_words_ids: Optional[list] = None
    forced_bos_token_id: Optional[int] = None
    forced_eos_token_id: Any = None
    pad_token_id: Optional[int] = None
    bos_token_id: Optional[int] = None
    eos_token_id: Any = None  # int or list of ints
    decoder_start_token_id: Optional[int] = None
    output_scores: bool = False
    output_logits: bool = False
    return_dict_in_generate: bool = False
    use_cache: bool = True

    @classmethod
    def field_names(cls):
        return [f.name for f in dataclasses.fields(cls)]

    def update(self, **kwargs):
        names = set(self.field_names())
        unknown = sorted(k for k in kwargs if k not in names)
        if unknown:
            raise InputError(f"unknown generate() arguments {unknown}; known generation options: {sorted(names)}")
        for k, v in kwargs.items():
            setattr(self, k, v)
        return self

    def validate(self):
        """The checks transformers makes (GenerationConfig.validate and the logits processors), as errors."""
        if self.early_stopping not in (True, False, "never") or isinstance(self.early_stopping, int) and not isinstance(self.early_stopping, bool):
            raise InputError(f"early_stopping must be True, False or 'never', got {self.early_stopping!r}")
        _int("num_beams", self.num_beams, 1)
        _int("num_return_sequences", self.num_return_sequences, 1)
        _int("max_length", self.max_length, 1)
        _int("min_length", self.min_length, 0)
        if self.max_new_tokens is not None:
            _int("max_new_tokens", self.max_new_tokens, 1)
        if self.min_new_tokens is not None:
            _int("min_new_tokens", self.min_new_tokens, 0)
        _int("no_repeat_ngram_size", self.no_repeat_ngram_size or 0, 0)
        if self.num_return_sequences != 1:
            if self.num_beams == 1 and not self.do_sample:
                raise InputError(
                    f"num_return_sequences={self.num_return_sequences} needs num_beams >= {self.num_return_sequences} "
                    "(greedy search returns one sequence per input) or do_sample=True"
                )
            if self.num_beams > 1 and self.num_return_sequences > self.num_beams:
                raise InputError(
                    f"num_return_sequences={self.num_return_sequences} is larger than num_beams={self.num_beams}; "
                    f"beam search keeps num_beams hypotheses: set num_beams >= {self.num_return_sequences}"
                )
        if not _is_number(self.repetition_penalty) or not self.repetition_penalty > 0:
            raise InputError(f"repetition_penalty={self.repetition_penalty!r} must be a float > 0 (1.0 disables it)")
        if not _is_number(self.length_penalty):
            raise InputError(f"length_penalty={self.length_penalty!r} must be a number")
        if self.do_sample:
            if not _is_number(self.temperature) or not self.temperature > 0:
                raise InputError(
                    f"temperature={self.temperature!r} must be a float > 0 when do_sample=True "
                    "(for greedy decoding set do_sample=False)"
                )
            if self.top_k is not None and (isinstance(self.top_k, bool) or not isinstance(self.top_k, int) or self.top_k < 0):
                raise InputError(f"top_k={self.top_k!r} must be an integer >= 1 (0 or None disables top-k)")
            if self.top_p is not None and (not _is_number(self.top_p) or not 0 < self.top_p <= 1):
                raise InputError(f"top_p={self.top_p!r} must lie in (0, 1] (1.0 disables nucleus sampling)")
        if self.bad_words_ids is not None:
            b = self.bad_words_ids
            if not isinstance(b, list) or not b or not all(isinstance(w, list) and w for w in b) or not all(
                isinstance(t, int) and not isinstance(t, bool) and t >= 0 for w in b for t in w
            ):
                raise InputError(f"bad_words_ids must be a non-empty list of non-empty lists of token ids >= 0, got {b!r}")
        return self

    def eos_list(self):
        """eos_token_id as a list (empty when unset)."""
        if self.eos_token_id is None:
            return []
        return [int(t) for t in (self.eos_token_id if isinstance(self.eos_token_id, (list, tuple)) else [self.eos_token_id])]


def _is_number(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _int(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InputError(f"{name}={value!r} must be an integer >= {minimum}")


def _config_fields(cfg) -> dict:
    """The generation-relevant, non-None values a model config carries (config.json keys + extras)."""
    d = cfg.to_dict() if hasattr(cfg, "to_dict") else {}
    names = set(GenerationConfig.field_names())
    return {k: v for k, v in d.items() if k in names and v is not None and not isinstance(v, dict)}


def resolve_generation_config(model, generation_config=None, kwargs=None) -> GenerationConfig:
    """The effective options for ``model.generate(**kwargs)`` (see the module docstring for precedence)."""
    path = getattr(model, "generation_config_path", None)
    if generation_config is not None:
        base = dataclasses.replace(generation_config)
    elif path is not None and Path(path).is_file():  # transformers then ignores config.json's fields
        base = load_generation_config(path)
    else:
        base = GenerationConfig()
        default = GenerationConfig()
        top = _config_fields(model.config)
        for k, v in top.items():
            setattr(base, k, v)
        decoder_cfg = getattr(model.config, "decoder", None)
        if decoder_cfg is not None:
            for k, v in _config_fields(decoder_cfg).items():
                if getattr(base, k) == getattr(default, k):
                    setattr(base, k, v)
    base.update(**(kwargs or {}))
    return base.validate()


def load_generation_config(path) -> GenerationConfig:
    """A GenerationConfig from a ``generation_config.json`` file (or a directory holding one)."""
    path = Path(path)
    if path.is_dir():
        path = path / "generation_config.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    gc = GenerationConfig()
    for k, v in data.items():
        if k in GenerationConfig.field_names():
            setattr(gc, k, v)
    return gc
