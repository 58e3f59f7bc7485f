"""The call API shared by refimpl's tokenizers: encode, pairs, batches, truncation, padding, decode, save.

Semantics are transformers 4.57.6's (``tokenization_utils_base.py``). Two truncation flavours exist there
and both are reproduced:

* ``"fast"`` (Rust ``tokenizers``; refimpl's ``BertTokenizer``): the budget
  is ``max_length - n_special`` (wrapping to "no limit" when ``max_length < n_special``, as the Rust
  unsigned subtraction does); ``longest_first`` on a pair gives the shorter side ``max_length // 2``
  and the longer one the rest; a sequence too short for ``only_first``/``only_second`` is an error.
* ``"slow"`` (Python; ``BertTokenizerLegacy``, ``BertGenerationTokenizer``, ``RobertaTokenizer``):
  tokens are removed one at a time from the longer side (ties: the second); a sequence too short for
  the chosen strategy is left untruncated (transformers logs an error and goes on).

Example::

    tok(["a b", "c"], padding=True)  ->  {"input_ids": [[101, 1037, 1038, 102], [101, 1039, 102, 0]], ...}
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..errors import InputError, InputTypeError, TokenizerError

logger = logging.getLogger("refimpl.tokenizers")

VERY_LARGE_INTEGER = int(1e30)  # transformers' "no model_max_length" value
LARGE_INTEGER = int(1e20)

SPECIAL_TOKEN_NAMES = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token")
TRUNCATION_STRATEGIES = ("longest_first", "only_first", "only_second", "do_not_truncate")
PADDING_STRATEGIES = ("longest", "max_length", "do_not_pad")


class TokenizerFileNotFoundError(TokenizerError, FileNotFoundError):
    """A tokenizer file (vocab.txt, vocab.json, merges.txt, spiece.model, ...) that does not exist."""


class TruncationError(TokenizerError):
    """Truncation the fast (Rust) tokenizer refuses: same message as ``tokenizers`` raises."""


class Seq(NamedTuple):
    """Template item: the tokens of sequence ``index`` (0: text, 1: text_pair) with token type ``type_id``."""

    index: int
    type_id: int


class Special(NamedTuple):
    """Template item: one special token with token type ``type_id``."""

    token: str
    type_id: int


class BatchEncoding(dict):
    """What a tokenizer call returns: a dict of ``input_ids``, ``attention_mask``, ... (HF's key names).

    Keys are also attributes (``enc.input_ids``).
    """

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def read_json(path: Path, what: str) -> dict:
    """Load a JSON file, or raise a TokenizerError naming the file."""
    from ..checkpoint import MAX_JSON_BYTES, parse_json_text

    try:
        if Path(path).stat().st_size > MAX_JSON_BYTES:
            raise TokenizerError(f"{what} {str(path)!r} is {Path(path).stat().st_size} bytes, more than the "
                                 f"{MAX_JSON_BYTES} a tokenizer file can be; it is not one")
        with open(path, encoding="utf-8") as f:
            return parse_json_text(f.read())
    except FileNotFoundError:
        raise TokenizerFileNotFoundError(f"{what} {str(path)!r} does not exist") from None
    except (ValueError, UnicodeDecodeError) as e:  # json.JSONDecodeError is a ValueError
        if isinstance(e, TokenizerError):
            raise
        raise TokenizerError(f"{what} {str(path)!r} is not valid UTF-8 JSON ({e}); re-export it") from None


# tokenizer_config.json / special_tokens_map.json / from_pretrained keywords -> the type each must have
_BOOL_OPTIONS = ("do_lower_case", "do_basic_tokenize", "tokenize_chinese_chars", "clean_text", "add_prefix_space",
                 "decoder_cleanup", "clean_up_tokenization_spaces", "trim_offsets", "legacy", "split_by_punct")
_OPTION_TYPES = {"strip_accents": ("a boolean or null", lambda v: v is None or isinstance(v, bool)),
                 "model_max_length": ("an integer >= 0 or null", lambda v: v is None or _is_count(v)
                                      or isinstance(v, float) and v >= 0 and v == int(v)),
                 "max_input_chars_per_word": ("an integer >= 1", lambda v: _is_count(v) and v >= 1),
                 "padding_side": ("'left' or 'right'", lambda v: v in ("left", "right")),
                 "truncation_side": ("'left' or 'right'", lambda v: v in ("left", "right")),
                 "errors": ("a str (a codec error handler: 'replace', 'strict', 'ignore')", lambda v: isinstance(v, str)),
                 "wordpiece_prefix": ("a str", lambda v: isinstance(v, str)),
                 "never_split": ("null or a list of str", lambda v: v is None or isinstance(v, list)
                                 and all(isinstance(t, str) for t in v)),
                 "additional_special_tokens": ("a list of tokens (str, or {\"content\": str})", lambda v: v is None or
                                               isinstance(v, list) and all(_is_token_entry(t) for t in v)),
                 "sp_model_kwargs": ("an object", lambda v: v is None or isinstance(v, dict))}


def _is_count(v):
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _is_token_entry(v):
    return isinstance(v, str) or isinstance(v, dict) and isinstance(v.get("content"), str)


def check_options(options: dict, where: str) -> dict:
    """Each known tokenizer option of ``options`` has the type transformers' files give it, or a
    TokenizerError naming the key and ``where`` it came from: ``do_lower_case: "false"`` (a non-empty
    string, so truthy: it lowercased) or ``additional_special_tokens: "hello"`` (iterated: five
    one-character tokens) is refused instead of misread."""
    for key, value in options.items():
        if key in _BOOL_OPTIONS:
            want, ok = "a JSON boolean (true/false, unquoted)", isinstance(value, bool)
        elif key in SPECIAL_TOKEN_NAMES:
            want, ok = "a token (str, or {\"content\": str}) or null", value is None or _is_token_entry(value)
        elif key in _OPTION_TYPES:
            want, check = _OPTION_TYPES[key]
            ok = check(value)
        else:
            continue
        if not ok:
            raise TokenizerError(f"tokenizer option {key}={value!r:.80} ({type(value).__name__}) in {where} must be "
                                 f"{want}; fix it there")
    return options


def _token_content(value):
    """A special token as written in special_tokens_map.json / tokenizer_config.json: str or {"content": ...}."""
    if isinstance(value, dict):
        return value.get("content")
    return value


def _check_text(value, what: str):
    if not isinstance(value, str):
        raise InputTypeError(
            f"{what} must be a str (or a list of str for a batch), got {type(value).__name__} {value!r:.80}; "
            "decode bytes first (b.decode('utf-8')) and convert numbers with str()"
        )


def check_unicode(value: str, what: str = "text"):
    """InputError for a lone surrogate, which has no UTF-8 encoding (SentencePiece, which reads UTF-8,
    fails on it with a raw RuntimeError). WordPiece tokenizes such text (as transformers' slow BERT does)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as e:
        raise InputError(
            f"{what} contains a lone surrogate {value[e.start]!r} (U+{ord(value[e.start]):04X}) at character {e.start}, "
            "which is not Unicode text (no UTF-8 encoding; transformers' fast tokenizers and SentencePiece refuse it "
            "too): fix the text, e.g. text.encode('utf-16', 'surrogatepass').decode('utf-16') joins a split pair, "
            "or decode the original bytes with errors='replace'"
        ) from None


def _check_option(name, value, minimum, allow_none=True):
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise TokenizerError(f"{name}={value!r} must be an integer >= {minimum}" + (" or None" if allow_none else ""))


MAX_PADDED_TOKENS = 2 ** 26  # rows x padded length a call may build when no model_max_length bounds it


class TokenizerBase:
    """Special tokens, the ``__call__`` API, padding/truncation, decode and save, on top of four hooks:

    ``_tokenize_with_offsets(text, want_offsets) -> (tokens, offsets | None)``, ``_template(pair)``
    (where the special tokens go), ``convert_tokens_to_string(tokens)`` (slow decode) and
    ``_save_vocabulary(directory)``.
    """

    flavour = "fast"  # truncation / type-id / decode semantics: "fast" (Rust) or "slow" (Python)
    model_input_names = ("input_ids", "token_type_ids", "attention_mask")
    padding_side = "right"
    truncation_side = "right"
    default_special_tokens: dict = {}
    config_class_name = ""  # "tokenizer_class" written by save_pretrained
    default_clean_up = False  # clean_up_tokenization_spaces when the config does not say

    def __init__(self, model_max_length=None, padding_side=None, truncation_side=None,
                 clean_up_tokenization_spaces=None, additional_special_tokens=None, **special_tokens):  # fmt: skip
        self.model_max_length = VERY_LARGE_INTEGER if model_max_length is None else int(model_max_length)
        if padding_side is not None:
            self.padding_side = padding_side
        if truncation_side is not None:
            self.truncation_side = truncation_side
        self.clean_up_tokenization_spaces = (
            self.default_clean_up if clean_up_tokenization_spaces is None else bool(clean_up_tokenization_spaces)
        )
        self.special_tokens = {}
        for name in SPECIAL_TOKEN_NAMES:
            value = _token_content(special_tokens.pop(name, self.default_special_tokens.get(name)))
            if value is not None:
                self.special_tokens[name] = str(value)
        if special_tokens:
            raise TokenizerError(f"unknown tokenizer options {sorted(special_tokens)}; see the class docstring")
        self.additional_special_tokens = [str(_token_content(t)) for t in (additional_special_tokens or [])]

    # ------------------------------------------------------------------------------------ special tokens
    def __getattr__(self, name):
        if name in SPECIAL_TOKEN_NAMES:
            return self.__dict__.get("special_tokens", {}).get(name)
        if name.endswith("_token_id") and name[: -len("_id")] in SPECIAL_TOKEN_NAMES:
            token = self.__dict__.get("special_tokens", {}).get(name[: -len("_id")])
            return None if token is None else self.convert_tokens_to_ids(token)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    @property
    def all_special_tokens(self) -> list[str]:
        """Special tokens in transformers' order (bos, eos, unk, sep, pad, cls, mask, additional)."""
        out = []
        for t in [self.special_tokens[n] for n in SPECIAL_TOKEN_NAMES if n in self.special_tokens]:
            if t not in out:
                out.append(t)
        for t in self.additional_special_tokens:
            if t not in out:
                out.append(t)
        return out

    @property
    def all_special_ids(self) -> list[int]:
        return self.convert_tokens_to_ids(self.all_special_tokens)

    @property
    def special_tokens_map(self) -> dict:
        out = dict(self.special_tokens)
        if self.additional_special_tokens:
            out["additional_special_tokens"] = list(self.additional_special_tokens)
        return out

    @property
    def pad_token_type_id(self) -> int:
        return 0

    # ------------------------------------------------------------------------------------------- vocab
    def get_vocab(self) -> dict:
        return dict(self.vocab)

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def __len__(self) -> int:
        return len(self.get_vocab())

    def _token_to_id(self, token: str) -> int | None:
        return self.vocab.get(token)

    def convert_tokens_to_ids(self, tokens):
        """Token (or list of tokens) -> id(s); a token outside the vocabulary gives ``unk_token``'s id."""
        if isinstance(tokens, str):
            i = self._token_to_id(tokens)
            return self._token_to_id(self.unk_token) if i is None else i
        return [self.convert_tokens_to_ids(t) for t in tokens]

    def convert_ids_to_tokens(self, ids, skip_special_tokens: bool = False):
        """Id (or list of ids) -> token(s); an id outside the vocabulary gives ``unk_token`` (slow) or
        None (fast, as transformers' fast tokenizer)."""
        if isinstance(ids, (int, np.integer)):
            return self._id_to_token(int(ids))
        special = set(self.all_special_ids) if skip_special_tokens else ()
        return [self._id_to_token(i) for i in _to_id_list(ids) if i not in special]

    def _is_known_id(self, index: int) -> bool:
        """Does ``index`` name a token of this tokenizer (vocabulary or added tokens)?"""
        return self.ids_to_tokens.get(index) is not None

    def _check_known_ids(self, ids: list[int]):
        bad = [i for i in ids if not self._is_known_id(i)]
        if bad:
            n = len(self)
            where = "negative" if bad[0] < 0 else f"outside the vocabulary of {n} tokens (ids 0..{n - 1})"
            raise TokenizerError(
                f"cannot decode token id {bad[0]}: {where}"
                + (f" ({len(bad)} such ids, e.g. {bad[:5]})" if len(bad) > 1 else "")
                + f"; {type(self).__name__} knows ids 0..{n - 1}. The ids come from another vocabulary (check "
                "that the model and the tokenizer belong to the same checkpoint) or are not token ids"
            )

    def _id_to_token(self, index: int):
        token = self.ids_to_tokens.get(index)
        if token is None and self.flavour == "slow":
            return self.unk_token
        return token

    # -------------------------------------------------------------------------------------- tokenizing
    def tokenize(self, text: str, **kwargs) -> list[str]:
        """Text -> tokens, special tokens in the text kept whole (no [CLS]/[SEP] added)."""
        _check_text(text, "text")
        return self._tokenize_with_offsets(text, False)[0]

    def _encode_text(self, text: str, want_offsets: bool):
        tokens, offsets = self._tokenize_with_offsets(text, want_offsets)
        return self.convert_tokens_to_ids(tokens), offsets

    def _post_process_offsets(self, ids: list[int], offsets: list) -> list:
        """One sequence's offsets after truncation, before special tokens are added (the Rust
        post-processor's offset step). Unchanged here; ``RobertaTokenizer`` trims spaces."""
        return offsets

    def _template(self, pair: bool) -> list:
        """Layout with special tokens: a list of ``Seq`` and ``Special`` items."""
        raise NotImplementedError

    def num_special_tokens_to_add(self, pair: bool = False) -> int:
        return sum(1 for item in self._template(pair) if isinstance(item, Special))

    def _assemble(self, ids0, ids1, offs0, offs1, add_special_tokens: bool) -> dict:
        pair = ids1 is not None
        if add_special_tokens:
            layout = self._template(pair)
        else:  # without special tokens the Rust post-processor still gives the pair type 1; Python gives 0
            layout = [Seq(0, 0), Seq(1, 1 if self.flavour == "fast" else 0)][: 2 if pair else 1]
        ids, types, special, offsets = [], [], [], []
        for item in layout:
            if isinstance(item, Seq):
                seq, offs = (ids0, offs0) if item.index == 0 else (ids1, offs1)
                ids += seq
                types += [item.type_id] * len(seq)
                special += [0] * len(seq)
                if offs is not None:
                    offsets += offs
            else:
                ids.append(self.convert_tokens_to_ids(item.token))
                types.append(item.type_id)
                special.append(1)
                offsets.append((0, 0))
        return {"input_ids": ids, "token_type_ids": types, "special_tokens_mask": special, "offset_mapping": offsets}

    def build_inputs_with_special_tokens(self, token_ids_0, token_ids_1=None) -> list[int]:
        return self._assemble(list(token_ids_0), None if token_ids_1 is None else list(token_ids_1), None, None, True)[
            "input_ids"
        ]

    def create_token_type_ids_from_sequences(self, token_ids_0, token_ids_1=None) -> list[int]:
        return self._assemble(list(token_ids_0), None if token_ids_1 is None else list(token_ids_1), None, None, True)[
            "token_type_ids"
        ]

    def get_special_tokens_mask(self, token_ids_0, token_ids_1=None, already_has_special_tokens=False) -> list[int]:
        if already_has_special_tokens:
            special = set(self.all_special_ids)
            return [1 if i in special else 0 for i in token_ids_0]
        return self._assemble(list(token_ids_0), None if token_ids_1 is None else list(token_ids_1), None, None, True)[
            "special_tokens_mask"
        ]

    # ------------------------------------------------------------------------------------ truncation
    def _truncate(self, ids0, ids1, offs0, offs1, strategy, max_length, add_special_tokens):
        n_special = self.num_special_tokens_to_add(ids1 is not None) if add_special_tokens else 0
        fn = _truncate_fast if self.flavour == "fast" else _truncate_slow
        keep0, keep1 = fn(len(ids0), None if ids1 is None else len(ids1), strategy, max_length, n_special)
        left = self.truncation_side == "left"

        def cut(seq, keep):
            if seq is None or keep >= len(seq):
                return seq
            return seq[len(seq) - keep :] if left else seq[:keep]

        return cut(ids0, keep0), cut(ids1, keep1), cut(offs0, keep0), cut(offs1, keep1)

    # ------------------------------------------------------------------------------------------ call
    def __call__(self, text=None, text_pair=None, add_special_tokens: bool = True, padding=False, truncation=None,
                 max_length=None, pad_to_multiple_of=None, padding_side=None, return_tensors=None,
                 return_token_type_ids=None, return_attention_mask=None, return_special_tokens_mask=False,
                 return_offsets_mapping=False, verbose=True, **kwargs) -> BatchEncoding:  # fmt: skip
        """Encode one text, a pair, a batch of texts or a batch of pairs (transformers' ``__call__``)."""
        if kwargs:
            raise TokenizerError(
                f"unsupported tokenizer call options {sorted(kwargs)}; refimpl supports transformers' "
                "text/text_pair/add_special_tokens/padding/truncation/max_length/pad_to_multiple_of/"
                "padding_side/return_tensors/return_* options"
            )
        if text is None:
            raise InputTypeError("text must be a str (or a list of str for a batch), got NoneType None")
        batched = isinstance(text, (list, tuple))
        texts = list(text) if batched else [text]
        for i, t in enumerate(texts):
            _check_text(t, f"text[{i}]" if batched else "text")
        pairs = None
        if self.flavour == "fast" and not batched and text_pair == "":
            text_pair = None  # transformers' fast _encode_plus tests `if text_pair`: an empty pair is no pair
        if text_pair is not None:
            if batched != isinstance(text_pair, (list, tuple)):
                raise InputTypeError(
                    f"text is a {type(text).__name__} but text_pair is a {type(text_pair).__name__}: "
                    "pass two str, or two lists of str of the same length"
                )
            pairs = list(text_pair) if batched else [text_pair]
            if len(pairs) != len(texts):
                raise InputError(f"batch length mismatch: {len(texts)} texts but {len(pairs)} text_pairs")
            for i, t in enumerate(pairs):
                _check_text(t, f"text_pair[{i}]" if batched else "text_pair")
        if return_offsets_mapping and not self.supports_offsets:
            raise NotImplementedError(
                "return_offset_mapping is not available when using Python tokenizers. To use this feature, "
                "change your tokenizer to one deriving from transformers.PreTrainedTokenizerFast "
                f"(refimpl: {type(self).__name__} reproduces the Python tokenizer; use BertTokenizer)"
            )
        if return_tensors not in (None, "np"):
            raise TokenizerError(f"return_tensors={return_tensors!r} is not supported; use 'np' or None")
        _check_option("max_length", max_length, 0)
        _check_option("pad_to_multiple_of", pad_to_multiple_of, 1)
        for name, value in (("add_special_tokens", add_special_tokens), ("return_special_tokens_mask",
                            return_special_tokens_mask), ("return_offsets_mapping", return_offsets_mapping),
                            ("return_token_type_ids", return_token_type_ids),
                            ("return_attention_mask", return_attention_mask), ("verbose", verbose)):
            if not isinstance(value, bool) and not (value is None and name.startswith("return_")):
                raise TokenizerError(f"{name}={value!r} must be True or False")
        if padding_side is not None and padding_side not in ("left", "right"):
            raise TokenizerError(f"padding_side={padding_side!r}; use 'left' or 'right'")
        padding, truncation, max_length = self._strategies(padding, truncation, max_length, pad_to_multiple_of)

        rows = []
        for i, t in enumerate(texts):
            ids0, offs0 = self._encode_text(t, return_offsets_mapping)
            ids1, offs1 = self._encode_text(pairs[i], return_offsets_mapping) if pairs is not None else (None, None)
            if truncation != "do_not_truncate" and max_length is not None:
                ids0, ids1, offs0, offs1 = self._truncate(
                    ids0, ids1, offs0, offs1, truncation, max_length, add_special_tokens
                )
            if return_offsets_mapping:  # the Rust post-processor runs after truncation, on each sequence
                offs0 = self._post_process_offsets(ids0, offs0)
                offs1 = None if ids1 is None else self._post_process_offsets(ids1, offs1)
            rows.append(self._assemble(ids0, ids1, offs0, offs1, add_special_tokens))
        for row in rows:
            row["attention_mask"] = [1] * len(row["input_ids"])
        if padding != "do_not_pad" and rows:
            target = max(len(r["input_ids"]) for r in rows) if padding == "longest" else max_length
            if pad_to_multiple_of is not None and target % pad_to_multiple_of:
                target = (target // pad_to_multiple_of + 1) * pad_to_multiple_of
            self._check_padded_size(len(rows), target, max(len(r["input_ids"]) for r in rows))
            side = padding_side if padding_side is not None else self.padding_side
            if side not in ("left", "right"):
                raise TokenizerError(f"padding_side={side!r}; use 'left' or 'right'")
            for row in rows:
                if self.flavour == "slow" and not batched and not row["input_ids"]:
                    continue  # transformers' slow pad() returns an empty single example unpadded
                _pad_row(row, target, side, self.pad_token_id, self.pad_token_type_id)

        if return_token_type_ids is None:
            return_token_type_ids = "token_type_ids" in self.model_input_names
        if return_attention_mask is None:
            return_attention_mask = "attention_mask" in self.model_input_names
        keys = ["input_ids"]
        keys += ["token_type_ids"] if return_token_type_ids else []
        keys += ["attention_mask"] if return_attention_mask else []
        keys += ["special_tokens_mask"] if return_special_tokens_mask else []
        keys += ["offset_mapping"] if return_offsets_mapping else []
        out = BatchEncoding()
        for key in keys:
            column = [row[key] for row in rows]
            if return_tensors == "np":
                if len({len(c) for c in column}) > 1:
                    raise InputError(
                        "Unable to create tensor, you should probably activate truncation and/or padding with "
                        f"'padding=True' 'truncation=True' to have batched tensors with the same length "
                        f"(lengths of {key!r}: {[len(c) for c in column]})"
                    )
                arr = np.array(column, dtype=np.int64)
                if key == "offset_mapping":
                    arr = arr.reshape(len(column), len(column[0]) if column else 0, 2)  # an empty batch: (0, 0, 2)
                out[key] = arr
            else:
                out[key] = column if batched else column[0]
        return out

    supports_offsets = True

    def _check_padded_size(self, rows: int, target: int, longest: int):
        """Padding to ``target`` must stay within what a model can take: ``model_max_length`` when the
        tokenizer knows it, else ``MAX_PADDED_TOKENS`` tokens over the batch; padding never has to go past
        the longest row. (transformers builds the lists: max_length=10**10 exhausts memory.)"""
        if target <= longest:
            return
        if self.model_max_length <= LARGE_INTEGER and target > self.model_max_length:
            raise TokenizerError(
                f"padding to {target} tokens is more than model_max_length={self.model_max_length}, the most the "
                f"model takes; pad to at most {self.model_max_length} (padding='max_length', "
                f"max_length={self.model_max_length}) or use padding=True (the longest row)"
            )
        if rows * target > MAX_PADDED_TOKENS:
            raise TokenizerError(
                f"padding {rows} rows to {target} tokens builds {rows * target} ids, more than the "
                f"{MAX_PADDED_TOKENS} refimpl builds for one call; use padding=True (the longest row, {longest}) "
                "or a smaller max_length"
            )

    def _strategies(self, padding, truncation, max_length, pad_to_multiple_of):
        """transformers' ``_get_padding_truncation_strategies``: resolve padding/truncation/max_length."""
        if max_length is not None and padding is False and truncation is None:
            truncation = "longest_first"
        if padding is True:
            padding = "longest"
        elif padding is False or padding is None:
            padding = "do_not_pad"
        elif padding not in PADDING_STRATEGIES:
            raise TokenizerError(f"padding={padding!r} is not one of True, False, {PADDING_STRATEGIES}")
        if truncation is True:
            truncation = "longest_first"
        elif truncation is False or truncation is None:
            truncation = "do_not_truncate"
        elif truncation not in TRUNCATION_STRATEGIES:
            raise TokenizerError(f"truncation={truncation!r} is not one of True, False, {TRUNCATION_STRATEGIES}")
        if max_length is None:
            if padding == "max_length":
                if self.model_max_length > LARGE_INTEGER:
                    padding = "do_not_pad"
                else:
                    max_length = self.model_max_length
            if truncation != "do_not_truncate":
                if self.model_max_length > LARGE_INTEGER:
                    truncation = "do_not_truncate"
                else:
                    max_length = self.model_max_length
        if padding != "do_not_pad" and (self.pad_token is None or self.pad_token_id is None or self.pad_token_id < 0):
            raise TokenizerError(
                "Asking to pad but the tokenizer does not have a padding token: pass pad_token=... when loading"
            )
        if (truncation != "do_not_truncate" and padding != "do_not_pad" and pad_to_multiple_of is not None
                and max_length is not None and max_length % pad_to_multiple_of != 0):  # fmt: skip
            raise TokenizerError(
                "Truncation and padding are both activated but "
                f"truncation length ({max_length}) is not a multiple of pad_to_multiple_of ({pad_to_multiple_of})."
            )
        return padding, truncation, max_length

    def encode(self, text, text_pair=None, add_special_tokens=True, **kwargs) -> list[int]:
        """Ids of one text (or pair), special tokens added: ``__call__(...)["input_ids"]``."""
        return self(text, text_pair, add_special_tokens=add_special_tokens, **kwargs)["input_ids"]

    # ---------------------------------------------------------------------------------------- decode
    def decode(self, token_ids, skip_special_tokens: bool = False, clean_up_tokenization_spaces=None) -> str:
        """Ids -> text, as transformers decodes with this tokenizer's flavour.

        Every id must be one this tokenizer knows (0 <= id < len(tokenizer), added tokens included):
        another raises TokenizerError naming it and the vocabulary size. transformers differs by class
        (fast tokenizers drop an unknown id silently, slow BERT gives [UNK], slow RoBERTa a TypeError,
        BertGeneration an IndexError; docs/tokenizers.md): a dropped id is a silent wrong answer."""
        ids = _to_id_list(token_ids)
        self._check_known_ids(ids)
        text = self._decode(ids, skip_special_tokens)
        clean = self.clean_up_tokenization_spaces if clean_up_tokenization_spaces is None else clean_up_tokenization_spaces
        return clean_up_tokenization(text) if clean else text

    def batch_decode(self, sequences, skip_special_tokens=False, clean_up_tokenization_spaces=None) -> list[str]:
        return [self.decode(s, skip_special_tokens, clean_up_tokenization_spaces) for s in sequences]

    def _decode(self, ids: list[int], skip_special_tokens: bool) -> str:
        """transformers' slow ``_decode``: tokens (unknown ids -> unk), specials skipped by string, then
        ``convert_tokens_to_string`` (added tokens outside the vocabulary decoded on their own)."""
        tokens = [self._id_to_token(i) for i in ids]
        specials = set(self.all_special_tokens)
        added = {t for t in self.additional_special_tokens if self.convert_tokens_to_ids(t) >= self.vocab_size}
        parts, current = [], []
        for token in tokens:
            if skip_special_tokens and token in specials:
                continue
            if token in added:
                if current:
                    s = self.convert_tokens_to_string(current)
                    if s:
                        parts.append(s)
                    current = []
                parts.append(token)
            else:
                current.append(token)
        if current:
            parts.append(self.convert_tokens_to_string(current))
        return " ".join(parts)

    # ------------------------------------------------------------------------------------------ files
    @classmethod
    def _read_config(cls, directory, kwargs) -> tuple[Path, dict]:
        from ..checkpoint import local_directory

        directory = local_directory(directory, "tokenizer directory", "tokenizer_config.json and the vocabulary files")
        config = {}
        if (directory / "tokenizer_config.json").is_file():
            config = read_json(directory / "tokenizer_config.json", "tokenizer config")
            if not isinstance(config, dict):
                raise TokenizerError(f"{directory / 'tokenizer_config.json'} must hold a JSON object of options, got "
                                     f"{type(config).__name__}; fix or re-export it")
        if (directory / "special_tokens_map.json").is_file():
            special_map = read_json(directory / "special_tokens_map.json", "special tokens map")
            if not isinstance(special_map, dict):
                raise TokenizerError(f"{directory / 'special_tokens_map.json'} must hold a JSON object of tokens, got "
                                     f"{type(special_map).__name__}; fix or re-export it")
            for k, v in special_map.items():
                config.setdefault(k, v) if k not in SPECIAL_TOKEN_NAMES else config.__setitem__(k, v)
        for ignored in ("tokenizer_class", "name_or_path", "auto_map", "added_tokens_decoder", "special_tokens_map_file",
                        "tokenizer_file", "extra_special_tokens", "split_special_tokens", "use_fast"):  # fmt: skip
            config.pop(ignored, None)
        check_options(config, f"{str(directory)!r} (tokenizer_config.json / special_tokens_map.json)")
        check_options(kwargs, "the from_pretrained keywords")
        config.update(kwargs)
        return directory, config

    def save_pretrained(self, save_directory) -> tuple[str, ...]:
        """Write the vocabulary files, tokenizer_config.json and special_tokens_map.json (HF layout)."""
        directory = Path(save_directory)
        directory.mkdir(parents=True, exist_ok=True)
        config = {
            **self._init_config(),
            **self.special_tokens,
            "model_max_length": self.model_max_length,
            "clean_up_tokenization_spaces": self.clean_up_tokenization_spaces,
            "tokenizer_class": self.config_class_name,
        }
        if self.additional_special_tokens:
            config["additional_special_tokens"] = list(self.additional_special_tokens)
        if self.padding_side != "right":
            config["padding_side"] = self.padding_side
        if self.truncation_side != "right":
            config["truncation_side"] = self.truncation_side
        files = [str(f) for f in self._save_vocabulary(directory)]
        for name, content in (("tokenizer_config.json", config), ("special_tokens_map.json", self.special_tokens_map)):
            with open(directory / name, "w", encoding="utf-8") as f:
                json.dump(content, f, indent=2, ensure_ascii=False)
            files.append(str(directory / name))
        return tuple(files)


def _to_id_list(token_ids) -> list[int]:
    if isinstance(token_ids, (int, np.integer)):
        return [int(token_ids)]
    if isinstance(token_ids, np.ndarray):
        token_ids = token_ids.tolist()
    if not isinstance(token_ids, (list, tuple)):
        raise InputTypeError(f"token ids must be an int, a list of int or a numpy array, got {type(token_ids).__name__}")
    out = []
    for i in token_ids:
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)):
            raise InputTypeError(f"token ids must be ints, got {type(i).__name__} {i!r:.40}")
        out.append(int(i))
    return out


def _pad_row(row: dict, target: int, side: str, pad_id: int, pad_type_id: int):
    n = target - len(row["input_ids"])
    if n <= 0:
        return
    fills = {"input_ids": pad_id, "token_type_ids": pad_type_id, "special_tokens_mask": 1, "attention_mask": 0}
    for key, fill in fills.items():
        row[key] = row[key] + [fill] * n if side == "right" else [fill] * n + row[key]
    if row["offset_mapping"]:
        row["offset_mapping"] = (
            row["offset_mapping"] + [(0, 0)] * n if side == "right" else [(0, 0)] * n + row["offset_mapping"]
        )


def _truncate_fast(n0: int, n1, strategy: str, max_length: int, n_special: int):
    """Rust ``truncate_encodings``: lengths to keep. Budget ``max_length - n_special`` (no limit if negative)."""
    budget = max_length - n_special
    if budget < 0:  # the Rust usize subtraction wraps: effectively no truncation
        return n0, n1
    if budget == 0:
        return 0, (0 if n1 is not None else None)
    total = n0 + (n1 or 0)
    if total <= budget:
        return n0, n1
    to_remove = total - budget
    if strategy == "longest_first":
        if n1 is None:
            return budget, None
        a, b = (n1, n0) if n0 > n1 else (n0, n1)  # a: the shorter
        b = a if a > budget else max(a, budget - a)
        if a + b > budget:
            a = budget // 2
            b = a + budget % 2
        return (b, a) if n0 > n1 else (a, b)
    if strategy == "only_second" and n1 is None:
        raise TruncationError("Truncation error: Second sequence not provided")
    target = n0 if strategy == "only_first" else n1
    if target <= to_remove:
        raise TruncationError("Truncation error: Sequence to truncate too short to respect the provided max_length")
    return (n0 - to_remove, n1) if strategy == "only_first" else (n0, n1 - to_remove)


def _truncate_slow(n0: int, n1, strategy: str, max_length: int, n_special: int):
    """transformers' ``truncate_sequences``: lengths to keep (an impossible request leaves both untouched)."""
    total = n0 + (n1 or 0) + n_special
    to_remove = total - max_length
    if to_remove <= 0 or max_length == 0:  # transformers tests `max_length and ...`: 0 means no truncation
        return n0, n1
    if strategy == "only_first" or (strategy == "longest_first" and n1 is None):
        if n0 > to_remove:
            return n0 - to_remove, n1
        logger.error(f"We need to remove {to_remove} to truncate the input but the first sequence has a length {n0}.")
        return n0, n1
    if strategy == "longest_first":
        first = min(abs(n1 - n0), to_remove)
        second = to_remove - first
        if n0 > n1:
            cut0, cut1 = first + second // 2, second - second // 2
        else:
            cut0, cut1 = second // 2, first + second - second // 2
        return max(n0 - cut0, 0), max(n1 - cut1, 0)
    if strategy == "only_second" and n1 is not None:
        if n1 > to_remove:
            return n0, n1 - to_remove
        logger.error(f"We need to remove {to_remove} to truncate the input but the second sequence has a length {n1}.")
    return n0, n1


def clean_up_tokenization(text: str) -> str:
    """transformers' ``clean_up_tokenization``: drop the space before . ? ! , and English contractions.

    >>> clean_up_tokenization("hello , world ! don ' t")
    "hello, world! don't"
    """
    for old, new in ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"),
                     (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re")):  # fmt: skip
        text = text.replace(old, new)
    return text

