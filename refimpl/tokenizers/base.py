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
import regex

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
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def _word_info(self, batch_index: int, what: str) -> list:
        tokenizer = self.__dict__.get("_tokenizer")
        if tokenizer is None:
            raise TokenizerError(f"{what}() needs the encoding a tokenizer call returned (this one was built by hand)")
        if self.__dict__.get("_rows") is None:
            self._rows = tokenizer._word_rows(self._call_args)
        if not isinstance(batch_index, int) or not -len(self._rows) <= batch_index < len(self._rows):
            raise InputError(f"batch_index={batch_index!r} is outside the {len(self._rows)} rows of this encoding")
        return list(self._rows[batch_index][what])

    def word_ids(self, batch_index: int = 0) -> list:
        """The index of the word each token comes from (None for special tokens and padding), as
        transformers' fast ``BatchEncoding.word_ids``: a pre-tokenizer word, or with
        ``is_split_into_words=True`` the position of the word in the list."""
        return self._word_info(batch_index, "words")

    def words(self, batch_index: int = 0) -> list:
        return self.word_ids(batch_index)

    def sequence_ids(self, batch_index: int = 0) -> list:
        """0 for tokens of the text, 1 for the pair, None for special tokens and padding."""
        return self._word_info(batch_index, "sequence_ids")


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

#: Keys transformers writes into tokenizer_config.json (or records from tokenizer.json's truncation/padding
#: sections) that its tokenizers keep in ``init_kwargs`` without acting on them in a call: recorded, no effect.
RECORDED_OPTIONS = ("max_length", "stride", "truncation_strategy", "pad_to_multiple_of", "pad_token_type_id",
                    "verbose", "name_or_path", "processor_class", "chat_template", "use_fast", "tokenizer_file",
                    "special_tokens_map_file", "auto_map", "tokenizer_class", "from_slow", "legacy",
                    "spaces_between_special_tokens")  # fmt: skip
#: Keys transformers acts on that refimpl does not implement, with the one value that means "off".
UNSUPPORTED_OPTIONS = {"split_special_tokens": False, "tokenizer_object": None, "gguf_file": None,
                       "extra_special_tokens": {}, "__slow_tokenizer": None}  # fmt: skip


def check_side(name: str, value, where: str = ""):
    """``padding_side`` / ``truncation_side`` must be 'left' or 'right' (transformers: ValueError at load)."""
    if value not in ("left", "right"):
        raise TokenizerError(f"{name}={value!r}{where} must be 'left' or 'right'; transformers refuses "
                             f"it too ({name.split('_')[0].capitalize()} side should be selected between 'right' and "
                             "'left')")  # fmt: skip


class Encoded(NamedTuple):
    """One sequence after tokenization: ids, character offsets (or None), word index of each token (or None)."""

    ids: list
    offsets: list | None
    words: list | None

    def cut(self, start: int, stop: int) -> "Encoded":
        return Encoded(self.ids[start:stop], None if self.offsets is None else self.offsets[start:stop],
                       None if self.words is None else self.words[start:stop])  # fmt: skip


class TokenizerBase:
    """Special and added tokens, the ``__call__`` API, padding/truncation/overflow, decode and save, on top of
    four hooks:

    ``_tokenize_with_offsets(text, want_offsets, **call_options) -> (tokens, offsets | None)``,
    ``_template(pair)`` (where the special tokens go), ``convert_tokens_to_string(tokens)`` and
    ``_save_vocabulary(directory)``.
    """

    flavour = "fast"  # truncation / type-id / decode semantics: "fast" (Rust) or "slow" (Python)
    model_input_names = ("input_ids", "token_type_ids", "attention_mask")
    padding_side = "right"
    truncation_side = "right"
    default_special_tokens: dict = {}
    config_class_name = ""  # "tokenizer_class" written by save_pretrained
    default_clean_up = False  # clean_up_tokenization_spaces when the config does not say
    call_options: tuple = ()  # extra keyword arguments __call__ accepts (RobertaTokenizer: add_prefix_space)
    supports_word_ids = False  # word_ids() / sequence_ids() (transformers: fast tokenizers only)

    def __init__(self, model_max_length=None, padding_side=None, truncation_side=None,
                 clean_up_tokenization_spaces=None, additional_special_tokens=None, model_input_names=None,
                 max_len=None, added_tokens_decoder=None, **kwargs):  # fmt: skip
        if model_max_length is None:
            model_max_length = max_len
        self.model_max_length = VERY_LARGE_INTEGER if model_max_length is None else int(model_max_length)
        if padding_side is not None:
            check_side("padding_side", padding_side, " (tokenizer option)")
            self.padding_side = padding_side
        if truncation_side is not None:
            check_side("truncation_side", truncation_side, " (tokenizer option)")
            self.truncation_side = truncation_side
        if model_input_names is not None:
            self.model_input_names = tuple(model_input_names)
        self.clean_up_tokenization_spaces = (
            self.default_clean_up if clean_up_tokenization_spaces is None else bool(clean_up_tokenization_spaces)
        )
        self.special_tokens = {}
        for name in SPECIAL_TOKEN_NAMES:
            value = _token_content(kwargs.pop(name, self.default_special_tokens.get(name)))
            if value is not None:
                self.special_tokens[name] = str(value)
        self.init_kwargs = {}
        for key in list(kwargs):
            value = kwargs.pop(key)
            if key in UNSUPPORTED_OPTIONS:
                if value in (UNSUPPORTED_OPTIONS[key], None):
                    continue
                raise TokenizerError(f"tokenizer option {key}={value!r:.80} is not supported by refimpl (transformers "
                                     f"acts on it); drop it or set it to {UNSUPPORTED_OPTIONS[key]!r}")
            if callable(getattr(type(self), key, None)):
                raise TokenizerError(f"tokenizer option {key!r} conflicts with the method {key} of "
                                     f"{type(self).__name__} (transformers refuses it too); drop it")
            if key not in RECORDED_OPTIONS:
                logger.warning(f"tokenizer option {key}={value!r:.60} is not one {type(self).__name__} uses: recorded in "
                               "init_kwargs without effect, as transformers does")
            self.init_kwargs[key] = value
        self.additional_special_tokens = []
        for t in additional_special_tokens or []:
            t = str(_token_content(t))
            if t not in self.additional_special_tokens:
                self.additional_special_tokens.append(t)
        self.added_tokens: dict[str, int] = {}  # no-split tokens (content -> id; the id may be a vocabulary id)
        self._added_special: dict[str, bool] = {}  # content -> special?
        self._added_tokens_decoder = added_tokens_decoder or {}

    def _init_added_tokens(self):
        """Register the special tokens (and added_tokens_decoder entries) as no-split tokens, as transformers
        does; called by each class once its vocabulary is set. A token outside the vocabulary gets the next id."""
        entries = []
        for index, entry in sorted(((int(i), e) for i, e in self._added_tokens_decoder.items()), key=lambda x: x[0]):
            content = _token_content(entry)
            if not isinstance(content, str):
                raise TokenizerError(f"added_tokens_decoder entry {index}: {entry!r:.80} has no 'content' string")
            entries.append((content, index, bool(entry.get("special", True)) if isinstance(entry, dict) else True,
                            entry if isinstance(entry, dict) else {}))  # fmt: skip
        for content, index, special, entry in entries:
            self._check_added_flags(content, entry)
            if self._token_to_id(content) is None and index != len(self.get_vocab()):
                raise TokenizerError(
                    f"added_tokens_decoder gives {content!r} the id {index}, but the next free id is "
                    f"{len(self.get_vocab())}; the tokenizer files do not belong together (re-save them)"
                )
            self._add(content, special)
        for token in self.all_special_tokens:
            self._add(token, True)
        self._refresh_added()

    def _check_added_flags(self, content, entry):
        for flag in ("lstrip", "rstrip", "single_word"):
            if entry.get(flag) and not (flag == "lstrip" and content in getattr(self, "_lstrip", ())):
                raise TokenizerError(f"added token {content!r} has {flag}=true, which refimpl does not implement for "
                                     f"{type(self).__name__}; remove the flag (or the token)")

    def _add(self, content: str, special: bool) -> bool:
        """Make ``content`` a no-split token; True when it got a new id."""
        if content in self.added_tokens:
            self._added_special[content] = self._added_special[content] or special
            return False
        existing = self._token_to_id(content)
        new = existing is None
        self.added_tokens[content] = len(self.get_vocab()) if new else existing
        self._added_special[content] = special
        if hasattr(self, "ids_to_tokens") and new:
            self.ids_to_tokens[self.added_tokens[content]] = content
        return new

    def _refresh_added(self):
        """Rebuild the no-split regex (leftmost-longest, as the Rust AddedVocabulary and Python Trie match)."""
        tokens = sorted(self._raw_added_tokens(), key=len, reverse=True)
        self._special_re = regex.compile("|".join(map(regex.escape, tokens))) if tokens else None

    def _raw_added_tokens(self) -> list[str]:
        """No-split tokens matched in the raw text (fast: the special ones; slow: all)."""
        return list(self.added_tokens)

    def add_tokens(self, new_tokens, special_tokens: bool = False) -> int:
        """transformers' ``add_tokens``: each token becomes a no-split token (a new id when it is not in the
        vocabulary); returns how many transformers counts (fast: every token not already added; slow: new ids)."""
        if isinstance(new_tokens, str) or isinstance(new_tokens, dict):
            new_tokens = [new_tokens]
        count = 0
        for token in new_tokens:
            content = _token_content(token)
            if not isinstance(content, str) or not content:
                raise InputTypeError(f"add_tokens takes str tokens (or {{'content': str}}), got {token!r:.80}")
            if isinstance(token, dict):
                self._check_added_flags(content, token)
            special = bool(token.get("special", special_tokens)) if isinstance(token, dict) else special_tokens
            content = self._added_content(content, special)
            if content in self.added_tokens:
                continue
            new = self._add(content, special)
            count += 1 if (new or self.flavour == "fast") else 0
        self._refresh_added()
        return count

    def _added_content(self, content: str, special: bool) -> str:
        return content

    def add_special_tokens(self, special_tokens_dict: dict, replace_additional_special_tokens: bool = True) -> int:
        """transformers' ``add_special_tokens``: set ``bos_token``..``mask_token`` and/or
        ``additional_special_tokens`` (replacing the list unless ``replace_additional_special_tokens=False``)."""
        if not isinstance(special_tokens_dict, dict):
            raise InputTypeError(f"add_special_tokens takes a dict, got {type(special_tokens_dict).__name__}")
        added = []
        for key, value in special_tokens_dict.items():
            if key == "additional_special_tokens":
                values = [str(_token_content(t)) for t in value]
                if replace_additional_special_tokens:
                    self.additional_special_tokens = []
                for t in values:
                    if t not in self.additional_special_tokens:
                        self.additional_special_tokens.append(t)
                added += values
            elif key in SPECIAL_TOKEN_NAMES:
                self.special_tokens[key] = str(_token_content(value))
                added.append(self.special_tokens[key])
            else:
                raise TokenizerError(f"add_special_tokens: {key!r} is not one of {SPECIAL_TOKEN_NAMES} or "
                                     "'additional_special_tokens'")
        count = 0
        for t in added:
            if t in self.added_tokens:
                self._added_special[t] = True
                continue
            new = self._add(t, True)
            count += 1 if (new or self.flavour == "fast") else 0
        self._refresh_added()
        return count

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
    def additional_special_tokens_ids(self) -> list[int]:
        return self.convert_tokens_to_ids(self.additional_special_tokens)

    @property
    def special_tokens_map(self) -> dict:
        out = dict(self.special_tokens)
        if self.additional_special_tokens:
            out["additional_special_tokens"] = list(self.additional_special_tokens)
        return out

    @property
    def pad_token_type_id(self) -> int:
        return 0

    @property
    def added_tokens_encoder(self) -> dict:
        """Added (no-split) tokens -> ids, as transformers' ``added_tokens_encoder``."""
        return dict(sorted(self.added_tokens.items(), key=lambda kv: kv[1]))

    def get_added_vocab(self) -> dict:
        return self.added_tokens_encoder

    # ------------------------------------------------------------------------------------------- vocab
    def get_vocab(self) -> dict:
        return {**self.vocab, **self.__dict__.get("added_tokens", {})}

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def __len__(self) -> int:
        return len(self.get_vocab())

    def _token_to_id(self, token: str) -> int | None:
        i = self.__dict__.get("added_tokens", {}).get(token)
        return self.vocab.get(token) if i is None else i

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
    def tokenize(self, text: str, pair=None, add_special_tokens: bool = False, **kwargs) -> list[str]:
        """Text -> tokens, special tokens in the text kept whole (no [CLS]/[SEP] added unless asked)."""
        _check_text(text, "text")
        opts = self._call_opts(kwargs)
        if pair is not None or add_special_tokens:
            ids = self(text, pair, add_special_tokens=add_special_tokens, **opts)["input_ids"]
            return self.convert_ids_to_tokens(ids)
        return self._tokenize_with_offsets(text, False, **opts)[0]

    def _call_opts(self, kwargs: dict) -> dict:
        """Keyword arguments of a call beyond transformers' common ones: those in ``call_options``, else an error."""
        unknown = sorted(k for k in kwargs if k not in self.call_options)
        if unknown:
            raise TokenizerError(
                f"unsupported tokenizer call options {unknown} for {type(self).__name__}; refimpl supports transformers' "
                "text/text_pair/add_special_tokens/padding/truncation/max_length/stride/is_split_into_words/"
                "pad_to_multiple_of/padding_side/return_tensors/return_* options"
                + (f" and {list(self.call_options)}" if self.call_options else "")
            )
        return dict(kwargs)

    def _encode_text(self, text: str, want_offsets: bool, **opts):
        tokens, offsets = self._tokenize_with_offsets(text, want_offsets, **opts)
        return self.convert_tokens_to_ids(tokens), offsets

    def _encode_words(self, text: str, **opts) -> Encoded:
        """ids, offsets and the word of each token (``word_ids()``); only tokenizers with ``supports_word_ids``."""
        raise NotImplementedError

    def _encode_sequence(self, value, want_offsets: bool, want_words: bool, split: bool, opts: dict) -> Encoded:
        """One text, or (``is_split_into_words``) a list of words each tokenized on its own (offsets per word;
        word index = position in the list)."""
        if not split:
            if want_words:
                return self._encode_words(value, **opts)
            ids, offsets = self._encode_text(value, want_offsets, **opts)
            return Encoded(ids, offsets, None)
        ids, offsets, words = [], [] if want_offsets else None, [] if want_words else None
        for w, word in enumerate(value):
            enc = self._encode_split_word(word, want_offsets, opts)
            ids += enc[0]
            if want_offsets:
                offsets += enc[1]
            if want_words:
                words += [w] * len(enc[0])
        return Encoded(ids, offsets, words)

    def _encode_split_word(self, word: str, want_offsets: bool, opts: dict):
        return self._encode_text(word, want_offsets, **opts)

    def _post_process_offsets(self, ids: list[int], offsets: list, **opts) -> list:
        """One sequence's offsets after truncation, before special tokens are added (the Rust
        post-processor's offset step). Unchanged here; ``RobertaTokenizer`` trims spaces."""
        return offsets

    def _template(self, pair: bool) -> list:
        """Layout with special tokens: a list of ``Seq`` and ``Special`` items."""
        raise NotImplementedError

    def num_special_tokens_to_add(self, pair: bool = False) -> int:
        return sum(1 for item in self._template(pair) if isinstance(item, Special))

    def _assemble(self, ids0, ids1, offs0, offs1, add_special_tokens: bool, words0=None, words1=None) -> dict:
        pair = ids1 is not None
        if add_special_tokens:
            layout = self._template(pair)
        elif self.flavour == "fast":  # without special tokens the Rust post-processor still gives each sequence
            layout = [item for item in self._template(pair) if isinstance(item, Seq)]  # its template type id
        else:  # Python: 0
            layout = [Seq(0, 0), Seq(1, 0)][: 2 if pair else 1]
        ids, types, special, offsets, words, seqs = [], [], [], [], [], []
        for item in layout:
            if isinstance(item, Seq):
                seq, offs, wds = (ids0, offs0, words0) if item.index == 0 else (ids1, offs1, words1)
                ids += seq
                types += [item.type_id] * len(seq)
                special += [0] * len(seq)
                if offs is not None:
                    offsets += offs
                words += wds if wds is not None else [None] * len(seq)
                seqs += [item.index] * len(seq)
            else:
                ids.append(self.convert_tokens_to_ids(item.token))
                types.append(item.type_id)
                special.append(1)
                offsets.append((0, 0))
                words.append(None)
                seqs.append(None)
        return {"input_ids": ids, "token_type_ids": types, "special_tokens_mask": special, "offset_mapping": offsets,
                "_words": words, "_sequence_ids": seqs}  # fmt: skip

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
    def _truncate_fast_rows(self, a: Encoded, b, strategy, max_length, stride, add_special_tokens):
        """The Rust ``truncate_encodings`` + ``Encoding::truncate`` with ``stride``: the kept windows of each
        sequence (the first is the main one), combined as ``Encoding::merge_with`` orders overflows:
        main, then each overflow of A with B's main and each of B's overflows, then A's main with B's overflows."""
        n_special = self.num_special_tokens_to_add(b is not None) if add_special_tokens else 0
        effective = max_length - self.num_special_tokens_to_add(False)  # Rust with_truncation (usize: < 0 wraps)
        if 0 <= effective < stride:
            raise TokenizerError(
                f"stride={stride} is greater than the effective max length of {effective} (= max_length {max_length} "
                "- the special tokens of one sequence); use a smaller stride or a larger max_length (the Rust "
                "tokenizer refuses it too)"
            )
        keep0, keep1 = _truncate_fast(len(a.ids), None if b is None else len(b.ids), strategy, max_length, n_special)
        wa = self._windows(a, keep0, stride)
        wb = None if b is None else self._windows(b, keep1, stride)
        if wb is None:
            return [(w, None) for w in wa]
        rows = [(wa[0], wb[0])]
        for x in wa[1:]:
            rows.append((x, wb[0]))
            rows += [(x, y) for y in wb[1:]]
        rows += [(wa[0], y) for y in wb[1:]]
        return rows

    def _windows(self, seq: Encoded, keep: int, stride: int) -> list:
        """``Encoding::truncate(keep, stride, side)``: the kept part, then the overflowing windows."""
        n = len(seq.ids)
        if keep >= n:
            return [seq]
        if keep == 0:
            return [seq.cut(0, 0), seq]
        if stride >= keep:
            raise TokenizerError(f"stride={stride} must be strictly less than the {keep} tokens kept of a sequence "
                                 "(max_length minus the special tokens, shared by a pair); use a smaller stride "
                                 "(the Rust tokenizer panics here)")  # fmt: skip
        step, ranges = keep - stride, []
        if self.truncation_side == "right":
            for start in range(0, n, step):
                stop = min(start + keep, n)
                ranges.append((start, stop))
                if stop == n:
                    break
        else:
            for stop in range(n, 0, -step):
                start = max(stop - keep, 0)
                ranges.append((start, stop))
                if start == 0:
                    break
        return [seq.cut(s, e) for s, e in ranges]

    def _truncate_slow_row(self, a: Encoded, b, strategy, max_length, stride, add_special_tokens):
        """transformers' ``truncate_sequences``: the kept sequences and the overflowing ids (the removed ones
        plus ``stride`` kept ones next to them; none for a pair under longest_first)."""
        n_special = self.num_special_tokens_to_add(b is not None) if add_special_tokens else 0
        n0, n1 = len(a.ids), None if b is None else len(b.ids)
        keep0, keep1 = _truncate_slow(n0, n1, strategy, max_length, n_special)
        left = self.truncation_side == "left"

        def cut(seq, keep):
            if seq is None or keep >= len(seq.ids):
                return seq
            return seq.cut(len(seq.ids) - keep, len(seq.ids)) if left else seq.cut(0, keep)

        overflow = []
        for seq, keep in ((a, keep0), (b, keep1)):
            if seq is not None and keep < len(seq.ids) and (strategy != "longest_first" or b is None):
                window = min(len(seq.ids), stride + len(seq.ids) - keep)
                overflow = seq.ids[:window] if left else seq.ids[len(seq.ids) - window :]
        return cut(a, keep0), cut(b, keep1), overflow

    # ------------------------------------------------------------------------------------------ call
    def __call__(self, text=None, text_pair=None, add_special_tokens: bool = True, padding=False, truncation=None,
                 max_length=None, stride: int = 0, is_split_into_words: bool = False, pad_to_multiple_of=None,
                 padding_side=None, return_tensors=None, return_token_type_ids=None, return_attention_mask=None,
                 return_overflowing_tokens: bool = False, return_special_tokens_mask: bool = False,
                 return_offsets_mapping: bool = False, return_length: bool = False, verbose: bool = True,
                 **kwargs) -> BatchEncoding:  # fmt: skip
        """Encode one text, a pair, a batch of texts, of pairs (``text_pair=`` or ``(text, pair)`` tuples), or
        pre-split words (``is_split_into_words=True``), as transformers' ``__call__``."""
        call_args = {k: v for k, v in locals().items() if k not in ("self", "kwargs", "__class__")}
        want_words = bool(kwargs.pop("_want_words", False))  # internal: word_ids() re-runs the call with it
        opts = self._call_opts(kwargs)
        for name, value in (("add_special_tokens", add_special_tokens), ("return_special_tokens_mask",
                            return_special_tokens_mask), ("return_offsets_mapping", return_offsets_mapping),
                            ("return_token_type_ids", return_token_type_ids), ("return_length", return_length),
                            ("return_overflowing_tokens", return_overflowing_tokens),
                            ("is_split_into_words", is_split_into_words),
                            ("return_attention_mask", return_attention_mask), ("verbose", verbose)):  # fmt: skip
            if not isinstance(value, bool) and not (value is None and name.startswith("return_")):
                raise TokenizerError(f"{name}={value!r} must be True or False")
        batched, texts, pairs = self._inputs(text, text_pair, is_split_into_words)
        if return_offsets_mapping and not self.supports_offsets:
            raise NotImplementedError(
                "return_offset_mapping is not available when using Python tokenizers. To use this feature, "
                "change your tokenizer to one deriving from transformers.PreTrainedTokenizerFast "
                f"(refimpl: {type(self).__name__} reproduces the Python tokenizer; use BertTokenizer)"
            )
        if return_tensors not in (None, "np"):
            raise TokenizerError(f"return_tensors={return_tensors!r} is not supported; use 'np' or None")
        _check_option("max_length", max_length, 0)
        _check_option("stride", stride, 0, allow_none=False)
        _check_option("pad_to_multiple_of", pad_to_multiple_of, 1)
        if padding_side is not None:
            check_side("padding_side", padding_side, " (call option)")
        check_side("truncation_side", self.truncation_side, " (the tokenizer's attribute)")
        check_side("padding_side", self.padding_side, " (the tokenizer's attribute)")
        padding, truncation, max_length = self._strategies(padding, truncation, max_length, pad_to_multiple_of)
        fast = self.flavour == "fast"
        if not fast and return_overflowing_tokens and truncation == "longest_first" and any(p is not None for p in pairs):
            raise TokenizerError(
                "Not possible to return overflowing tokens for pair of sequences with the `longest_first`. Please "
                "select another truncation strategy than `longest_first`, for instance `only_second` or `only_first`."
            )
        if not fast and return_overflowing_tokens and max_length is None:
            raise TokenizerError("return_overflowing_tokens=True needs max_length= (transformers: a TypeError "
                                 "computing num_truncated_tokens)")
        if not fast and return_token_type_ids and not add_special_tokens:
            raise TokenizerError(
                "Asking to return token_type_ids while setting add_special_tokens to False results in an undefined "
                "behavior. Please set add_special_tokens to True or set return_token_type_ids to None."
            )
        want_offsets = return_offsets_mapping or want_words

        rows, sample_of_row, is_main = [], [], []
        for i, t in enumerate(texts):
            a = self._encode_sequence(t, want_offsets, want_words, is_split_into_words, opts)
            b = None if pairs[i] is None else self._encode_sequence(pairs[i], want_offsets, want_words,
                                                                    is_split_into_words, opts)  # fmt: skip
            truncating = truncation != "do_not_truncate" and max_length is not None
            overflow = None
            if not truncating:
                parts = [(a, b)]
            elif fast:
                parts = self._truncate_fast_rows(a, b, truncation, max_length, stride, add_special_tokens)
                if not return_overflowing_tokens:
                    parts = parts[:1]
            else:
                n_special = self.num_special_tokens_to_add(b is not None) if add_special_tokens else 0
                total = len(a.ids) + (0 if b is None else len(b.ids)) + n_special  # before truncation
                a, b, overflow = self._truncate_slow_row(a, b, truncation, max_length, stride, add_special_tokens)
                parts = [(a, b)]
            for x, y in parts:
                offs0, offs1 = x.offsets, None if y is None else y.offsets
                if want_offsets:  # the Rust post-processor runs after truncation, on each sequence
                    offs0 = self._post_process_offsets(x.ids, offs0, **opts)
                    offs1 = None if y is None else self._post_process_offsets(y.ids, offs1, **opts)
                row = self._assemble(x.ids, None if y is None else y.ids, offs0, offs1, add_special_tokens,
                                     x.words, None if y is None else y.words)  # fmt: skip
                if return_overflowing_tokens and not fast:
                    if overflow is None:  # not truncating: nothing overflows
                        n_special = self.num_special_tokens_to_add(b is not None) if add_special_tokens else 0
                        total, overflow = len(a.ids) + (0 if b is None else len(b.ids)) + n_special, []
                    row["overflowing_tokens"], row["num_truncated_tokens"] = overflow, total - max_length
                is_main.append(len(sample_of_row) == 0 or sample_of_row[-1] != i)
                rows.append(row)
                sample_of_row.append(i)
        for row in rows:
            row["attention_mask"] = [1] * len(row["input_ids"])
            row["length"] = len(row["input_ids"])  # slow batches: before padding (transformers pads afterwards)
        if padding != "do_not_pad" and rows:
            # the Rust BatchLongest: the longest main row (an overflow row can be longer: it is left as it is)
            mains = [r for r, m in zip(rows, is_main) if m]
            target = max(len(r["input_ids"]) for r in mains) if padding == "longest" else max_length
            if pad_to_multiple_of is not None and target % pad_to_multiple_of:
                target = (target // pad_to_multiple_of + 1) * pad_to_multiple_of
            self._check_padded_size(len(rows), target, max(len(r["input_ids"]) for r in rows))
            side = padding_side if padding_side is not None else self.padding_side
            for row in rows:
                if not fast and not batched and not row["input_ids"]:
                    continue  # transformers' slow pad() returns an empty single example unpadded
                _pad_row(row, target, side, self.pad_token_id, self.pad_token_type_id)
                if fast or not batched:
                    row["length"] = len(row["input_ids"])

        if return_token_type_ids is None:
            return_token_type_ids = "token_type_ids" in self.model_input_names
        if return_attention_mask is None:
            return_attention_mask = "attention_mask" in self.model_input_names
        keys = ["overflowing_tokens", "num_truncated_tokens"] if return_overflowing_tokens and not fast else []
        keys += ["input_ids"]
        keys += ["token_type_ids"] if return_token_type_ids else []
        keys += ["attention_mask"] if return_attention_mask else []
        keys += ["special_tokens_mask"] if return_special_tokens_mask else []
        keys += ["offset_mapping"] if return_offsets_mapping else []
        keys += ["length"] if return_length else []
        unbatch = not batched and not (fast and return_overflowing_tokens)
        out = BatchEncoding()
        columns = {key: [row[key] for row in rows] for key in keys}
        if return_overflowing_tokens and fast:
            columns["overflow_to_sample_mapping"] = sample_of_row
        for key, column in columns.items():
            if return_tensors == "np":
                out[key] = _as_array(key, column)  # a single example keeps its batch axis, as in transformers
            elif unbatch and fast and key == "length":
                out[key] = column  # transformers' fast _encode_plus unbatches list values only: [6] stays
            else:
                out[key] = column[0] if unbatch else column
        out._rows = [{"words": r["_words"], "sequence_ids": r["_sequence_ids"]} for r in rows] if want_words else None
        out._tokenizer, out._call_args = self, {**call_args, **opts}
        return out

    def _inputs(self, text, text_pair, split: bool):
        """(batched, texts, pairs) from the input shapes transformers accepts; pairs[i] is None for a single text.

        Not split: a str, or a batch (list/tuple) of str and (text, pair) 2-tuples/2-lists. Split: a list of
        str words, or a batch of such lists and of (words, pair words) 2-lists."""
        if text is None:
            raise InputTypeError("text must be a str (or a list of str for a batch), got NoneType None")
        if split:
            if not isinstance(text, (list, tuple)):
                _check_text(text, "text")
                raise InputTypeError(f"is_split_into_words=True takes a list of words (or a batch of such lists), "
                                     f"got str {text!r:.60}")  # fmt: skip
            batched = len(text) > 0 and isinstance(text[0], (list, tuple))
        else:
            batched = isinstance(text, (list, tuple))
        texts = list(text) if batched else [text]
        if text_pair is not None:
            pair_batched = isinstance(text_pair, (list, tuple)) and (
                not split or (len(text_pair) > 0 and isinstance(text_pair[0], (list, tuple))))
            if batched != pair_batched:
                raise InputTypeError(
                    f"text is a {type(text).__name__} but text_pair is a {type(text_pair).__name__}: "
                    "pass two str, or two lists of str of the same length"
                )
            pairs = list(text_pair) if batched else [text_pair]
            if len(pairs) != len(texts):
                raise InputError(f"batch length mismatch: {len(texts)} texts but {len(pairs)} text_pairs")
        else:
            pairs = [None] * len(texts)
            for i, t in enumerate(texts):  # a batch of (text, pair) tuples: transformers' _batch_encode_plus
                is_pair = isinstance(t, (list, tuple)) and (not split or (len(t) > 0 and isinstance(t[0], (list, tuple))))
                if batched and is_pair:
                    if len(t) != 2:
                        raise InputTypeError(f"text[{i}] is a {type(t).__name__} of {len(t)} items: a (text, pair) entry of a "
                                             "batch holds two; pre-split words need is_split_into_words=True")  # fmt: skip
                    texts[i], pairs[i] = t
        for name, values in (("text", texts), ("text_pair", pairs)):
            for i, t in enumerate(values):
                if t is None and name == "text_pair":
                    continue
                where = f"{name}[{i}]" if batched else name
                if not split:
                    _check_text(t, where)
                elif not (isinstance(t, (list, tuple)) and all(isinstance(w, str) for w in t)) or (
                        self.flavour == "slow" and not t):  # the Python get_input_ids refuses an empty list
                    raise InputTypeError(f"{where} must be a list of str words (is_split_into_words=True), got "
                                         f"{type(t).__name__} {t!r:.60}")  # fmt: skip
        if self.flavour == "fast" and not batched and pairs[0] is not None and not pairs[0]:  # "" or []
            pairs = [None]  # transformers' fast _encode_plus tests `if text_pair`: an empty pair is no pair
        return batched, texts, pairs

    def pad(self, encoded_inputs, padding=True, max_length=None, pad_to_multiple_of=None, padding_side=None,
            return_attention_mask=None, return_tensors=None, verbose: bool = True) -> BatchEncoding:  # fmt: skip
        """transformers' ``pad``: pad one encoding, a dict of lists, or a list of encodings (dicts) to the
        longest (``padding=True``) or to ``max_length`` (``padding="max_length"``); ``token_type_ids`` with
        ``pad_token_type_id``, ``special_tokens_mask`` with 1, ``attention_mask`` added (0 on the padding)."""
        if isinstance(encoded_inputs, (list, tuple)) and encoded_inputs and isinstance(encoded_inputs[0], dict):
            encoded_inputs = {key: [example[key] for example in encoded_inputs] for key in encoded_inputs[0]}
        if not isinstance(encoded_inputs, dict) or self.model_input_names[0] not in encoded_inputs:
            keys = list(encoded_inputs) if isinstance(encoded_inputs, dict) else type(encoded_inputs).__name__
            raise InputError("You should supply an encoding or a list of encodings to this method that includes "
                             f"{self.model_input_names[0]}, but you provided {keys}")  # fmt: skip
        _check_option("max_length", max_length, 0)
        _check_option("pad_to_multiple_of", pad_to_multiple_of, 1)
        if padding_side is not None:
            check_side("padding_side", padding_side, " (pad option)")
        if return_tensors not in (None, "np"):
            raise TokenizerError(f"return_tensors={return_tensors!r} is not supported; use 'np' or None")
        data = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in encoded_inputs.items()}
        required = data[self.model_input_names[0]]
        if return_attention_mask is None:
            return_attention_mask = "attention_mask" in self.model_input_names
        if not required:
            if return_attention_mask:
                data["attention_mask"] = []
            return BatchEncoding(data)
        padding, _, max_length = self._strategies(padding, False, max_length, None)
        batched = isinstance(required[0], (list, tuple))
        rows = [{k: list(data[k][i]) if batched else list(data[k]) for k in data}
                for i in range(len(required) if batched else 1)]  # fmt: skip
        target = max_length
        if padding == "longest":
            target = max(len(r[self.model_input_names[0]]) for r in rows)
        side = padding_side if padding_side is not None else self.padding_side
        for row in rows:
            ids = row[self.model_input_names[0]]
            length = target if target is not None else len(ids)
            if pad_to_multiple_of is not None and length % pad_to_multiple_of:
                length = (length // pad_to_multiple_of + 1) * pad_to_multiple_of
            if return_attention_mask and "attention_mask" not in row:
                row["attention_mask"] = [1] * len(ids)
            n = length - len(ids) if padding != "do_not_pad" else 0
            if n <= 0:
                continue
            self._check_padded_size(len(rows), length, len(ids))
            fills = {self.model_input_names[0]: self.pad_token_id, "token_type_ids": self.pad_token_type_id,
                     "special_tokens_mask": 1, "attention_mask": 0}  # fmt: skip
            for key, fill in fills.items():
                if key in row and (key != "attention_mask" or return_attention_mask):
                    row[key] = row[key] + [fill] * n if side == "right" else [fill] * n + row[key]
        out = BatchEncoding()
        for key in rows[0]:
            column = [r[key] for r in rows]
            if return_tensors == "np":
                out[key] = _as_array(key, column) if batched else np.array(column[0], dtype=np.int64)
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

    def _word_rows(self, call_args: dict) -> list:
        """The word / sequence index of each token of each row, by re-running the call with word tracking
        (the ids path does not track words; the same call gives the same rows)."""
        if not self.supports_word_ids:
            raise TokenizerError(
                "word_ids() is not available when using non-fast tokenizers (e.g. instance of a `XxxFast` class) "
                f"(refimpl: {type(self).__name__} reproduces a Python tokenizer; use BertTokenizer)"
            )
        return self(**call_args, _want_words=True)._rows

    # ---------------------------------------------------------------------------------------- decode
    def decode(self, token_ids, skip_special_tokens: bool = False, clean_up_tokenization_spaces=None,
               **kwargs) -> str:  # fmt: skip
        """Ids -> text, as transformers decodes with this tokenizer's flavour.

        Every id must be one this tokenizer knows (0 <= id < len(tokenizer), added tokens included):
        another raises TokenizerError naming it and the vocabulary size. transformers differs by class
        (fast tokenizers drop an unknown id silently, slow BERT gives [UNK], slow RoBERTa a TypeError,
        BertGeneration an IndexError; docs/tokenizers.md): a dropped id is a silent wrong answer."""
        unknown = sorted(set(kwargs) - ({"spaces_between_special_tokens"} if self.flavour == "slow" else set()))
        if unknown:
            raise TokenizerError(f"unsupported decode options {unknown} for {type(self).__name__}; decode takes "
                                 "token_ids, skip_special_tokens and clean_up_tokenization_spaces"
                                 + (" and spaces_between_special_tokens" if self.flavour == "slow" else ""))
        for name, value in (("skip_special_tokens", skip_special_tokens),
                            ("clean_up_tokenization_spaces", clean_up_tokenization_spaces)):
            if not isinstance(value, bool) and not (value is None and name.startswith("clean")):
                raise TokenizerError(f"{name}={value!r} must be True or False")
        ids = _to_id_list(token_ids)
        self._check_known_ids(ids)
        text = self._decode(ids, skip_special_tokens, **kwargs)
        clean = self.clean_up_tokenization_spaces if clean_up_tokenization_spaces is None else clean_up_tokenization_spaces
        return clean_up_tokenization(text) if clean else text

    def batch_decode(self, sequences, skip_special_tokens=False, clean_up_tokenization_spaces=None, **kwargs) -> list[str]:
        if isinstance(sequences, np.ndarray):
            sequences = sequences.tolist()
        return [self.decode(s, skip_special_tokens, clean_up_tokenization_spaces, **kwargs) for s in sequences]

    def _decode(self, ids: list[int], skip_special_tokens: bool, spaces_between_special_tokens: bool = True) -> str:
        """transformers' slow ``_decode``: tokens (unknown ids -> unk), specials skipped, then
        ``convert_tokens_to_string`` on the runs between added tokens (non-special added tokens, and additional
        special tokens outside the vocabulary, decoded on their own, joined by spaces)."""
        specials = set(self.all_special_tokens)
        special_ids = set(self.all_special_ids) if skip_special_tokens else set()
        tokens = [self._id_to_token(i) for i in ids if i not in special_ids]
        added = {t for t in self.added_tokens if t not in specials} | {
            t for t in self.additional_special_tokens if self.convert_tokens_to_ids(t) >= self.vocab_size}
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
        return (" " if spaces_between_special_tokens else "").join(parts)

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
        if (directory / "added_tokens.json").is_file():
            added = read_json(directory / "added_tokens.json", "added tokens file")
            if not isinstance(added, dict) or not all(_is_count(v) for v in added.values()):
                raise TokenizerError(f"{directory / 'added_tokens.json'} must map tokens to integer ids; re-export it")
            decoder = dict(config.get("added_tokens_decoder") or {})
            for token, index in added.items():
                decoder.setdefault(str(index), {"content": token, "special": False})
            config["added_tokens_decoder"] = decoder
        check_options(config, f"{str(directory)!r} (tokenizer_config.json / special_tokens_map.json)")
        check_options(kwargs, "the from_pretrained keywords")
        config.update(kwargs)
        return directory, config

    def save_pretrained(self, save_directory, **kwargs) -> tuple[str, ...]:
        """Write the vocabulary files, tokenizer_config.json, special_tokens_map.json and added_tokens.json
        (transformers' layout: transformers loads them back to the same tokenizer)."""
        if kwargs:
            raise TokenizerError(f"unsupported save_pretrained options {sorted(kwargs)}")
        directory = Path(save_directory)
        directory.mkdir(parents=True, exist_ok=True)
        decoder = {str(i): {"content": t, "lstrip": t in getattr(self, "_lstrip", ()), "normalized": not self._added_special[t],
                            "rstrip": False, "single_word": False, "special": self._added_special[t]}
                   for t, i in sorted(self.added_tokens.items(), key=lambda kv: kv[1])}  # fmt: skip
        config = {
            "added_tokens_decoder": decoder,
            **self._init_config(),
            **self.special_tokens,
            "model_max_length": self.model_max_length,
            "clean_up_tokenization_spaces": self.clean_up_tokenization_spaces,
            "tokenizer_class": self.config_class_name,
            "padding_side": self.padding_side,
            "truncation_side": self.truncation_side,
        }
        if tuple(self.model_input_names) != tuple(type(self).model_input_names):
            config["model_input_names"] = list(self.model_input_names)
        if self.additional_special_tokens:
            config["additional_special_tokens"] = list(self.additional_special_tokens)
        files = [str(f) for f in self._save_vocabulary(directory)]
        contents = [("tokenizer_config.json", config), ("special_tokens_map.json", self.special_tokens_map)]
        added = {t: i for t, i in self.added_tokens.items() if i >= self.vocab_size}
        if added:
            contents.append(("added_tokens.json", added))
        for name, content in contents:
            with open(directory / name, "w", encoding="utf-8") as f:
                json.dump(content, f, indent=2, ensure_ascii=False)
            files.append(str(directory / name))
        return tuple(files)


def _as_array(key: str, column: list):
    if len({len(c) if isinstance(c, list) else -1 for c in column}) > 1:
        raise InputError(
            "Unable to create tensor, you should probably activate truncation and/or padding with "
            f"'padding=True' 'truncation=True' to have batched tensors with the same length "
            f"(lengths of {key!r}: {[len(c) if isinstance(c, list) else c for c in column]})"
        )
    arr = np.array(column, dtype=np.int64)
    if key == "offset_mapping":
        arr = arr.reshape(len(column), len(column[0]) if column else 0, 2)  # an empty batch: (0, 0, 2)
    return arr


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
    for key in ("_words", "_sequence_ids"):
        row[key] = row[key] + [None] * n if side == "right" else [None] * n + row[key]
    row["offset_mapping"] = (  # returned only when asked for; padded even when the row is empty
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

