"""SentencePiece glue for BertGeneration, matching transformers 4.57.6's ``BertGenerationTokenizer``.

The SentencePiece model (``spiece.model`` / any ``.model``/``.spm`` file) does the segmentation; this
class adds transformers' special tokens (``<s>``, ``</s>``, ``<unk>``, ``<pad>``, ``<::::>``: kept whole
in the text, given ids past the SentencePiece vocabulary when the model lacks them), the call API
(no special tokens are inserted: BertGeneration's template is just ``A`` / ``A B``), and decoding as
transformers decodes (SentencePiece decode between special tokens, then ``strip``).

``sp_model_kwargs`` go to ``sentencepiece.SentencePieceProcessor`` unchanged, e.g.
``{"enable_sampling": True, "nbest_size": -1, "alpha": 0.1}`` for subword regularization.

    >>> tok.tokenize("Hello world")
    ['▁Hello', '▁world']
"""

from __future__ import annotations

from pathlib import Path

import sentencepiece as spm

from ..errors import TokenizerError
from .base import Seq, TokenizerBase, TokenizerFileNotFoundError, check_unicode



def load_sentencepiece(path, sp_model_kwargs: dict | None) -> spm.SentencePieceProcessor:
    """Load a SentencePiece model file, or raise an error naming it."""
    path = Path(path)
    if not path.is_file():
        raise TokenizerFileNotFoundError(f"SentencePiece model {str(path)!r} does not exist")
    sp = spm.SentencePieceProcessor(**(sp_model_kwargs or {}))
    try:
        sp.Load(str(path))
    except (OSError, RuntimeError) as e:
        raise TokenizerError(
            f"SentencePiece model {str(path)!r} could not be loaded ({e}); it must be a serialized "
            "ModelProto (.model/.spm) written by sentencepiece's trainer"
        ) from None
    return sp


class BertGenerationTokenizer(TokenizerBase):
    """SentencePiece tokenizer with BertGeneration's special tokens (see module docstring)."""

    flavour = "slow"
    supports_offsets = False
    config_class_name = "BertGenerationTokenizer"
    model_input_names = ("input_ids", "attention_mask")
    default_special_tokens = {
        "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>", "sep_token": "<::::>",
    }  # fmt: skip
    vocab_file_name = "spiece.model"

    def __init__(self, vocab_file, sp_model_kwargs: dict | None = None, **kwargs):
        self.sp_model_kwargs = dict(sp_model_kwargs or {})
        self.vocab_file = str(vocab_file)
        self.sp_model = load_sentencepiece(vocab_file, self.sp_model_kwargs)
        super().__init__(**kwargs)
        n = self.sp_model.get_piece_size()
        self.vocab = {self.sp_model.id_to_piece(i): i for i in range(n)}
        self._init_added_tokens()  # special tokens the model lacks get ids past its vocabulary

    @classmethod
    def from_pretrained(cls, directory, **kwargs):
        """Load ``spiece.model`` (or the single ``*.model``/``*.spm`` file) + the JSON configs."""
        directory, config = cls._read_config(directory, kwargs)
        path = directory / cls.vocab_file_name
        if not path.is_file():
            candidates = sorted(list(directory.glob("*.model")) + list(directory.glob("*.spm")))
            if len(candidates) != 1:
                raise TokenizerFileNotFoundError(
                    f"no {cls.vocab_file_name} in {str(directory)!r} (other SentencePiece files: "
                    f"{[c.name for c in candidates]}); pass vocab_file= explicitly"
                )
            path = candidates[0]
        config.pop("vocab_file", None)
        return cls(path, **config)

    @property
    def vocab_size(self) -> int:
        return self.sp_model.get_piece_size()

    def _token_to_id(self, token):
        i = self.__dict__.get("added_tokens", {}).get(token)
        return self.vocab.get(token) if i is None else i

    def _is_known_id(self, index: int) -> bool:
        return self._id_to_token(index) is not None

    def _id_to_token(self, index: int):
        for token, i in self.added_tokens.items():
            if i == index:
                return token
        if 0 <= index < self.sp_model.get_piece_size():
            return self.sp_model.id_to_piece(index)
        return None

    def _template(self, pair: bool) -> list:
        return [Seq(0, 0), Seq(1, 1)] if pair else [Seq(0, 0)]

    def _assemble(self, ids0, ids1, offs0, offs1, add_special_tokens: bool, words0=None, words1=None) -> dict:
        """As the base, but token type ids as transformers' generic ``create_token_type_ids_from_sequences``
        makes them: it counts a [CLS] and a [SEP] slot whenever those tokens are *defined*, so with
        ``sep_token="<::::>"`` the type ids are one longer than the ids per sequence (a transformers quirk,
        reproduced: ``tok("a")`` gives ``input_ids`` of length 1 and ``token_type_ids`` of length 2)."""
        row = super()._assemble(ids0, ids1, offs0, offs1, add_special_tokens, words0, words1)
        if add_special_tokens:
            extra = int(self.cls_token is not None) + int(self.sep_token is not None)
            row["token_type_ids"] = [0] * (len(ids0) + extra)
            if ids1 is not None:
                row["token_type_ids"] += [1] * (len(ids1) + int(self.sep_token is not None))
        return row

    def _tokenize_with_offsets(self, text: str, want_offsets: bool):
        check_unicode(text)  # SentencePiece reads UTF-8: a lone surrogate was a raw RuntimeError
        tokens: list[str] = []
        pos = 0
        matches = list(self._special_re.finditer(text)) if self._special_re is not None else []
        for m in matches + [None]:
            piece = text[pos : m.start()] if m is not None else text[pos:]
            if piece:
                tokens.extend(self.sp_model.encode(piece, out_type=str))
            if m is not None:
                tokens.append(m.group())
                pos = m.end()
        return tokens, None

    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        """SentencePiece-decode the runs between special tokens, keep the special tokens, strip."""
        specials = set(self.all_special_tokens)
        out, run = "", []
        for token in tokens:
            if token in specials:
                out += self.sp_model.decode(run) + token
                run = []
            else:
                run.append(token)
        return (out + self.sp_model.decode(run)).strip()

    def _init_config(self) -> dict:
        return {"sp_model_kwargs": self.sp_model_kwargs} if self.sp_model_kwargs else {}

    def _save_vocabulary(self, directory: Path):
        path = directory / self.vocab_file_name
        path.write_bytes(self.sp_model.serialized_model_proto())
        return [path]
