"""``BitsAndBytesConfig`` as transformers 4.57.6 reads it, and its rules for which layers are quantized.

Which linear layers are quantized (transformers' ``replace_with_bnb_linear`` + ``get_keys_to_not_convert``):
every ``nn.Linear`` except those matched by the skip keys. A layer at path P (``bert.pooler.dense``) with
leaf name N (``dense``) is kept in the model dtype when N is a skip key, or a key K equals P, or
``K + "."`` occurs anywhere in P (a substring test, as transformers does). Embeddings and LayerNorms are
never quantized (they are not linear layers).

The skip keys are ``llm_int8_skip_modules`` when given (both 4-bit and 8-bit read it). Otherwise
transformers derives them from the model: its tied weights (the word embeddings and an LM head's decoder,
the decoder bias tied to ``cls.predictions.bias``) plus the module of the last parameter, or the output
embeddings when nothing is tied. For the classes refimpl has, that gives :data:`DEFAULT_SKIP` (checked
against transformers by tests/test_quant_models.py): the pooler of a base model, every head, the whole LM
head (``cls.predictions`` as a key keeps ``cls.predictions.transform.dense`` too).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Optional

from ..errors import ConfigError
from .fourbit import QUANT_TYPES

COMPUTE_DTYPES = ("float32", "float16", "bfloat16")
STORAGE_DTYPES = ("uint8", "int8", "float16", "bfloat16", "float32")

# transformers 4.57.6's get_keys_to_not_convert(model), per class (refimpl has no other linear heads)
_LM = ["cls.predictions.decoder", "bert.embeddings.word_embeddings", "cls.predictions",
       "cls.predictions.transform.LayerNorm"]
DEFAULT_SKIP = {
    "BertModel": ["pooler.dense"],
    "RobertaModel": ["pooler.dense"],
    "BertForPreTraining": ["cls.predictions.decoder", "bert.embeddings.word_embeddings", "cls.predictions",
                           "cls.seq_relationship"],
    "BertLMHeadModel": _LM,
    "BertForMaskedLM": _LM,
    "BertForNextSentencePrediction": ["cls.seq_relationship"],
    "BertForSequenceClassification": ["classifier"],
    "BertForMultipleChoice": ["classifier"],
    "BertForTokenClassification": ["classifier"],
    "BertForQuestionAnswering": ["qa_outputs"],
    "RobertaForMaskedLM": ["lm_head", "roberta.embeddings.word_embeddings", "lm_head.decoder", "lm_head.layer_norm"],
    "RobertaForCausalLM": ["lm_head", "roberta.embeddings.word_embeddings", "lm_head.decoder", "lm_head.layer_norm"],
    "BertGenerationEncoder": [],  # transformers names the last LayerNorm, which is no linear layer
    "BertGenerationDecoder": ["lm_head", "bert.embeddings.word_embeddings", "lm_head.decoder"],
}


def _dtype_name(value, what, allowed, default):
    if value is None:
        return default
    name = str(value).replace("torch.", "") if not isinstance(value, str) else value
    try:
        import numpy as np

        name = np.dtype(name).name if name != "bfloat16" else name
    except TypeError:
        pass
    if name not in allowed:
        extra = " (4-bit computes in a half or single precision dtype, as bitsandbytes does; float64 is not one)" \
            if name == "float64" else ""
        raise ConfigError(f"{what}={value!r} is not supported{extra}; choose one of {allowed}")
    return name


@dataclass
class BitsAndBytesConfig:
    """transformers' ``BitsAndBytesConfig`` fields and defaults (4.57.6). Dtypes are names ("float16") or
    anything whose str() is ``torch.float16``. ``bnb_4bit_compute_dtype=None`` means float32, as there."""

    load_in_8bit: bool = False
    load_in_4bit: bool = False
    llm_int8_threshold: float = 6.0
    llm_int8_skip_modules: Optional[list] = None
    llm_int8_enable_fp32_cpu_offload: bool = False
    llm_int8_has_fp16_weight: bool = False
    bnb_4bit_compute_dtype: Optional[str] = None
    bnb_4bit_quant_type: str = "fp4"
    bnb_4bit_use_double_quant: bool = False
    bnb_4bit_quant_storage: Optional[str] = None

    def __post_init__(self):
        if self.load_in_4bit and self.load_in_8bit:
            raise ConfigError("load_in_4bit and load_in_8bit are both True; choose one")
        if not (self.load_in_4bit or self.load_in_8bit):
            raise ConfigError("BitsAndBytesConfig quantizes nothing: set load_in_4bit=True or load_in_8bit=True")
        if self.bnb_4bit_quant_type not in QUANT_TYPES:
            raise ConfigError(f"bnb_4bit_quant_type={self.bnb_4bit_quant_type!r} does not exist; choose 'nf4' or 'fp4'")
        self.bnb_4bit_compute_dtype = _dtype_name(self.bnb_4bit_compute_dtype, "bnb_4bit_compute_dtype",
                                                  COMPUTE_DTYPES, "float32")
        self.bnb_4bit_quant_storage = _dtype_name(self.bnb_4bit_quant_storage, "bnb_4bit_quant_storage",
                                                  STORAGE_DTYPES, "uint8")
        if self.llm_int8_has_fp16_weight:
            raise ConfigError("llm_int8_has_fp16_weight=True (training with float16 master weights) is not "
                              "supported; refimpl's 8-bit layers hold int8 weights only (the default, False)")
        if not isinstance(self.llm_int8_threshold, (int, float)) or self.llm_int8_threshold < 0:
            raise ConfigError(f"llm_int8_threshold={self.llm_int8_threshold!r}: give a number >= 0 (6.0 is the default; 0 disables outliers)")
        if self.llm_int8_skip_modules is not None and not all(isinstance(k, str) for k in self.llm_int8_skip_modules):
            raise ConfigError(f"llm_int8_skip_modules={self.llm_int8_skip_modules!r}: give a list of module names")

    @classmethod
    def from_dict(cls, data: dict) -> "BitsAndBytesConfig":
        """From a config.json ``quantization_config`` (transformers writes extra keys: quant_method, ...)."""
        if data.get("quant_method", "bitsandbytes") != "bitsandbytes":
            raise ConfigError(f"quantization_config has quant_method={data.get('quant_method')!r}; refimpl reads "
                              "bitsandbytes' 4-bit and 8-bit formats only")
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    @property
    def method(self) -> str:
        return "4bit" if self.load_in_4bit else "8bit"


def skip_keys(model_cls, qconfig: BitsAndBytesConfig) -> list:
    """The skip keys transformers uses for ``model_cls`` (module docstring)."""
    if qconfig.llm_int8_skip_modules is not None:
        return list(qconfig.llm_int8_skip_modules)
    name = model_cls.__name__
    if name not in DEFAULT_SKIP:
        raise ConfigError(f"no bitsandbytes skip rule for {name}; pass llm_int8_skip_modules explicitly")
    return list(DEFAULT_SKIP[name])


def is_linear_weight(name: str, arr) -> bool:
    """A linear layer's weight: 2-D, named ``*.weight``, not an embedding table."""
    if not name.endswith(".weight") or len(getattr(arr, "shape", ())) != 2:
        return False
    leaf = name[: -len(".weight")].rsplit(".", 1)[-1]
    return not (leaf.endswith("embeddings") or leaf.endswith("embedding"))


def is_skipped(module_path: str, keys) -> bool:
    """transformers' test: the leaf name is a key, or a key equals the path, or ``key + '.'`` is in it."""
    leaf = module_path.rsplit(".", 1)[-1]
    return leaf in keys or any(k == module_path or (k + ".") in module_path for k in keys)
