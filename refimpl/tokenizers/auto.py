"""``AutoTokenizer.from_pretrained(dir)``: pick the tokenizer class from the directory.

Order: ``tokenizer_config.json``'s ``tokenizer_class`` (``BertTokenizer``/``BertTokenizerFast`` ->
refimpl's ``BertTokenizer``, the Rust-matching one, as transformers' AutoTokenizer picks the fast class;
``RobertaTokenizer[Fast]``; ``BertGenerationTokenizer``), else ``config.json``'s ``model_type``, else
the files present (``vocab.txt``/WordPiece ``tokenizer.json`` -> BERT, ``vocab.json`` + ``merges.txt``
or a BPE ``tokenizer.json`` -> RoBERTa, ``spiece.model`` -> BertGeneration).
"""

from __future__ import annotations


from ..errors import TokenizerError
from .base import read_json
from .bert import BertTokenizer, BertTokenizerLegacy
from .bert_generation import BertGenerationTokenizer
from .roberta import RobertaTokenizer

TOKENIZER_CLASSES = {
    "BertTokenizer": BertTokenizer,
    "BertTokenizerFast": BertTokenizer,
    "BertTokenizerLegacy": BertTokenizerLegacy,
    "RobertaTokenizer": RobertaTokenizer,
    "RobertaTokenizerFast": RobertaTokenizer,
    "BertGenerationTokenizer": BertGenerationTokenizer,
}
MODEL_TYPES = {"bert": BertTokenizer, "roberta": RobertaTokenizer, "bert-generation": BertGenerationTokenizer}


class AutoTokenizer:
    """Factory only: ``AutoTokenizer.from_pretrained(directory, **kwargs)``."""

    def __init__(self):
        raise TypeError("AutoTokenizer is a factory: use AutoTokenizer.from_pretrained(directory)")

    @staticmethod
    def tokenizer_class_for(directory) -> type:
        """The refimpl class ``from_pretrained`` would use for ``directory``."""
        from ..checkpoint import local_directory

        directory = local_directory(directory, "tokenizer directory", "tokenizer_config.json and the vocabulary files")
        if (directory / "tokenizer_config.json").is_file():
            data = read_json(directory / "tokenizer_config.json", "tokenizer config")
            name = data.get("tokenizer_class") if isinstance(data, dict) else None
            if name is not None and not isinstance(name, str):
                raise TokenizerError(f"tokenizer_class={name!r} in {str(directory / 'tokenizer_config.json')!r} must "
                                     "be a class name (a str)")
            if name:
                if name not in TOKENIZER_CLASSES:
                    raise TokenizerError(
                        f"tokenizer_class {name!r} in {str(directory / 'tokenizer_config.json')!r} is not supported; "
                        f"refimpl has {sorted(TOKENIZER_CLASSES)}"
                    )
                return TOKENIZER_CLASSES[name]
        if (directory / "config.json").is_file():
            data = read_json(directory / "config.json", "model config")
            model_type = data.get("model_type") if isinstance(data, dict) else None
            if isinstance(model_type, str) and model_type in MODEL_TYPES:
                return MODEL_TYPES[model_type]
        if (directory / "vocab.txt").is_file():
            return BertTokenizer
        if (directory / "tokenizer.json").is_file():  # by its model: BPE -> RoBERTa, else BERT (which refuses
            data = read_json(directory / "tokenizer.json", "tokenizer file")  # a model it cannot read, by name)
            model = data.get("model") if isinstance(data, dict) else None
            return RobertaTokenizer if isinstance(model, dict) and model.get("type") == "BPE" else BertTokenizer
        if (directory / "vocab.json").is_file() and (directory / "merges.txt").is_file():
            return RobertaTokenizer
        if (directory / "spiece.model").is_file():
            return BertGenerationTokenizer
        raise TokenizerError(
            f"cannot tell which tokenizer {str(directory)!r} holds: no tokenizer_config.json tokenizer_class, "
            "no config.json model_type, and none of vocab.txt, tokenizer.json, vocab.json+merges.txt, spiece.model"
        )

    @classmethod
    def from_pretrained(cls, directory, **kwargs):
        return cls.tokenizer_class_for(directory).from_pretrained(directory, **kwargs)
