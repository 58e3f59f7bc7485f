"""refimpl's tokenizers: transformers' class names and call API, no ``tokenizers``/transformers at run time.

* ``BertTokenizer`` — WordPiece as transformers' Rust-backed ``BertTokenizerFast`` (offsets included).
* ``BertTokenizerLegacy`` — WordPiece as transformers 4.57.6's pure-Python ``BertTokenizer``.
* ``BertGenerationTokenizer`` — SentencePiece glue, as transformers' ``BertGenerationTokenizer``.
* ``RobertaTokenizer`` — byte-level BPE, as transformers' ``RobertaTokenizer``.
* ``AutoTokenizer.from_pretrained(dir)`` — picks one of them from the directory.

Differences between transformers' implementations, and where refimpl stands: docs/tokenizers.md.
"""

from .auto import AutoTokenizer
from .base import BatchEncoding, TokenizerFileNotFoundError, TruncationError
from .bert import BertTokenizer, BertTokenizerLegacy
from .bert_generation import BertGenerationTokenizer
from .roberta import RobertaTokenizer

__all__ = [
    "AutoTokenizer",
    "BatchEncoding",
    "BertGenerationTokenizer",
    "BertTokenizer",
    "BertTokenizerLegacy",
    "RobertaTokenizer",
    "TokenizerFileNotFoundError",
    "TruncationError",
]
