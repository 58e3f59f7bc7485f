"""BERT WordPiece tokenizers: ``BertTokenizer`` (= transformers' Rust-backed ``BertTokenizerFast``) and
``BertTokenizerLegacy`` (= transformers 4.57.6's pure-Python ``BertTokenizer``).

Both: special tokens kept whole -> normalization -> split into words -> greedy WordPiece::

    >>> tok = BertTokenizer.from_pretrained(fetch("all-MiniLM-L6-v2"))
    >>> tok.tokenize("unaffable [SEP] Héllo!")
    ['una', '##ffa', '##ble', '[SEP]', 'hello', '!']

They differ where transformers' two implementations differ; every difference is listed in
docs/tokenizers.md (Unicode data version, NFC, unassigned code points, never_split, type ids of pairs
without special tokens, truncation rules, decoding).
"""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import TokenizerError
import regex

from .base import Encoded, Seq, Special, TokenizerBase, TokenizerFileNotFoundError, check_options, read_json
from .normalization import _FAST_WORD_RE, FastNormalizer, LegacyBasicTokenizer
from .pipeline import NormalizerSequence, PreTokenizerSequence, Unigram
from .roberta import RUST_WHITESPACE
from .wordpiece import WordPiece

BERT_SPECIAL_TOKENS = {
    "unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]", "cls_token": "[CLS]", "mask_token": "[MASK]",
}  # fmt: skip


def load_vocab_txt(path) -> dict[str, int]:
    """vocab.txt -> {token: line number}; a later duplicate line wins, as in transformers.

    Lines end at ``\\n`` only (a token may contain other whitespace)."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise TokenizerFileNotFoundError(f"vocabulary file {str(path)!r} does not exist") from None
    except UnicodeDecodeError as e:
        raise TokenizerError(f"vocabulary file {str(path)!r} is not UTF-8 ({e}); re-save it as UTF-8") from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not lines:
        raise TokenizerError(f"vocabulary file {str(path)!r} is empty; it needs one token per line")
    return {token: i for i, token in enumerate(lines)}


def load_tokenizer_json(path) -> dict:
    """The parts of a ``tokenizer.json`` (WordPiece model) refimpl uses, as constructor arguments."""
    data = read_json(Path(path), "tokenizer file")
    model = (data.get("model") if isinstance(data, dict) else None) or {}
    if isinstance(model, dict) and model.get("type") == "Unigram":
        unigram = _unigram_of(f"tokenizer file {str(path)!r}", model)
        model = {"type": "WordPiece", "vocab": {p: i for i, (p, _) in enumerate(unigram["pieces"])}}
    else:
        unigram = None
    if not isinstance(model, dict) or model.get("type") != "WordPiece" or not isinstance(model.get("vocab"), dict):
        raise TokenizerError(
            f"tokenizer file {str(path)!r} does not hold a WordPiece model (model.type="
            f"{model.get('type') if isinstance(model, dict) else model!r}); "
            "BertTokenizer needs a WordPiece tokenizer.json or a vocab.txt"
        )
    bad = next(((k, v) for k, v in model["vocab"].items() if isinstance(v, bool) or not isinstance(v, int) or v < 0), None)
    if bad is not None:
        raise TokenizerError(f"tokenizer file {str(path)!r}: vocabulary entry {bad[0]!r}: {bad[1]!r} must map the token "
                             "to an integer id >= 0; re-export the file")
    for section in ("normalizer", "decoder"):
        if data.get(section) is not None and not isinstance(data[section], dict):
            raise TokenizerError(f"tokenizer file {str(path)!r}: {section!r} must be an object or null")
    added_tokens = data.get("added_tokens") or []
    if not isinstance(added_tokens, list) or not all(
            isinstance(a, dict) and isinstance(a.get("content"), str) and isinstance(a.get("id"), int)
            and not isinstance(a.get("id"), bool) and a["id"] >= 0 for a in added_tokens):
        raise TokenizerError(f"tokenizer file {str(path)!r}: 'added_tokens' must be a list of "
                             "{\"content\": str, \"id\": int >= 0} objects; re-export the file")
    out = {"vocab": {str(k): int(v) for k, v in model["vocab"].items()}}
    if unigram is not None:
        out["unigram"] = unigram
    out["max_input_chars_per_word"] = model.get("max_input_chars_per_word", 100)
    out["wordpiece_prefix"] = model.get("continuing_subword_prefix", "##")
    where = f"tokenizer file {str(path)!r}"
    norm = data.get("normalizer")
    if norm is None or norm.get("type") not in SUPPORTED_COMPONENTS["normalizer"]:
        _unsupported(where, "normalizer", norm)
    if norm["type"] != "BertNormalizer":  # kept as the file has it (BertTokenizerFast replaces a BertNormalizer only)
        out["normalizer_steps"] = _steps(where, "normalizer", norm, "normalizers")
    for field, option in (("clean_text", "clean_text"), ("handle_chinese_chars", "tokenize_chinese_chars"),
                          ("lowercase", "do_lower_case"), ("strip_accents", "strip_accents")):
        value = norm.get(field, True)
        if norm["type"] == "BertNormalizer" and not isinstance(value, bool) and not (field == "strip_accents" and value is None):
            # the Rust library refuses such a file; transformers' options would replace the value unread
            raise TokenizerError(f"{where}: the normalizer's {option}={value!r} (its {field!r} field) must be a JSON "
                                 "boolean (true/false, unquoted); re-export the file")
    out["clean_text"] = norm.get("clean_text", True)
    # transformers' BertTokenizerFast replaces the file's lowercase / strip_accents / handle_chinese_chars with its
    # own options (tokenizer_config.json, keywords, else its defaults True / None / True) whenever they differ, so
    # the file's values never win: they are not read here (from_pretrained supplies the class defaults)
    pre = data.get("pre_tokenizer")
    if isinstance(pre, dict) and pre.get("type") in ("Sequence", "Punctuation", "Digits", "Split", "Metaspace"):
        out["pre_tokenizer_steps"] = _steps(where, "pre_tokenizer", pre, "pretokenizers")
    else:
        out["pre_tokenizer"] = _pre_tokenizer_kind(where, pre)
    out["template"] = _template_of(where, data.get("post_processor"))
    dec = data.get("decoder")
    if dec is None or dec.get("type") not in SUPPORTED_COMPONENTS["decoder"]:
        _unsupported(where, "decoder", dec)
    if dec["type"] == "Metaspace":
        out["decoder_metaspace"] = _metaspace_options(where, "decoder", dec)
    elif dec.get("prefix", "##") != out["wordpiece_prefix"]:
        raise TokenizerError(f"{where}: the WordPiece decoder's prefix {dec.get('prefix')!r} differs from the model's "
                             f"continuing_subword_prefix {out['wordpiece_prefix']!r}; refimpl supports one prefix")
    out["decoder_cleanup"] = dec.get("cleanup", True)
    out["tokenizer_json"] = data  # written back by save_pretrained
    for added in added_tokens:
        out["vocab"].setdefault(added["content"], added["id"])
    check_options({k: v for k, v in out.items() if k not in ("vocab", "template", "tokenizer_json", "normalizer_steps",
                                                            "pre_tokenizer_steps", "decoder_metaspace", "unigram")}, f"tokenizer file {str(path)!r}")
    if not isinstance(out["max_input_chars_per_word"], int):
        raise TokenizerError(f"tokenizer file {str(path)!r}: max_input_chars_per_word must be an integer")
    return out


#: What each component type of a tokenizer.json is to refimpl's BertTokenizer: the supported ones are read;
#: every other type (or a supported type inside a Sequence) is refused by name, never tokenized as BERT's.
SUPPORTED_COMPONENTS = {
    "normalizer": ("BertNormalizer", "Lowercase", "NFD", "NFC", "NFKD", "NFKC", "StripAccents", "Strip", "Replace",
                   "Sequence"),
    "pre_tokenizer": ("BertPreTokenizer", "Whitespace", "WhitespaceSplit", "Punctuation", "Digits", "Split", "Metaspace",
                      "Sequence"),
    "post_processor": ("TemplateProcessing", "BertProcessing", None),
    "decoder": ("WordPiece", "Metaspace"),
    "model": ("WordPiece", "Unigram"),
}


def _unsupported(where: str, section: str, component):
    kind = component.get("type") if isinstance(component, dict) else component
    raise TokenizerError(
        f"{where}: {section} {kind!r} is not supported by refimpl's BertTokenizer (it reads "
        f"{[k for k in SUPPORTED_COMPONENTS[section] if k]}{' or none' if None in SUPPORTED_COMPONENTS[section] else ''}); "
        "tokenizing with BERT's instead would give other ids. Use a tokenizer.json with those components, or "
        "a vocab.txt (BERT's pipeline)"
    )


def _steps(where: str, section: str, component, key: str) -> list:
    """A normalizer / pre-tokenizer (a Sequence flattened) -> [(type, options)], each type supported and each
    option one refimpl implements, else a TokenizerError naming it."""
    if not isinstance(component, dict) or component.get("type") not in SUPPORTED_COMPONENTS[section]:
        _unsupported(where, section, component)
    kind = component["type"]
    if kind == "Sequence":
        parts = component.get(key)
        if not isinstance(parts, list):
            raise TokenizerError(f"{where}: {section} Sequence needs a list {key!r}; re-export the file")
        return [step for part in parts for step in _steps(where, section, part, key)]
    if kind == "Replace" and not (isinstance(component.get("pattern"), dict) and set(component["pattern"]) == {"String"}
                                  and isinstance(component.get("content"), str)):  # fmt: skip
        raise TokenizerError(f"{where}: normalizer Replace with pattern {component.get('pattern')!r} is not supported "
                             "by refimpl's BertTokenizer (it reads a {'String': ...} pattern, not a Regex); use a "
                             "string pattern")
    if kind == "Punctuation" and component.get("behavior", "Isolated") != "Isolated":
        raise TokenizerError(f"{where}: pre_tokenizer Punctuation with behavior={component.get('behavior')!r} is not "
                             "supported by refimpl's BertTokenizer (it reads 'Isolated'); use behavior 'Isolated'")
    if kind == "Split":
        pattern = component.get("pattern")
        if not (isinstance(pattern, dict) and len(pattern) == 1 and isinstance(next(iter(pattern.values())), str)
                and next(iter(pattern)) in ("String", "Regex")):
            raise TokenizerError(f"{where}: pre_tokenizer Split with pattern {pattern!r} is not supported by refimpl's "
                                 "BertTokenizer (it reads {'String': ...} or {'Regex': ...}); re-export the file")
        if "Regex" in pattern:
            try:
                regex.compile(pattern["Regex"])
            except regex.error as e:
                raise TokenizerError(f"{where}: pre_tokenizer Split's Regex {pattern['Regex']!r} does not compile "
                                     f"with the regex module ({e}); refimpl cannot read it") from None
        if component.get("behavior") not in SPLIT_BEHAVIORS:
            raise TokenizerError(f"{where}: pre_tokenizer Split with behavior={component.get('behavior')!r} is not "
                                 f"supported by refimpl's BertTokenizer (it reads {list(SPLIT_BEHAVIORS)})")
        if not isinstance(component.get("invert", False), bool):
            raise TokenizerError(f"{where}: pre_tokenizer Split's invert must be a JSON boolean")
    if kind == "Metaspace":
        _metaspace_options(where, "pre_tokenizer", component)
    return [(kind, {k: v for k, v in component.items() if k != "type"})]


def _unigram_of(where: str, model: dict) -> dict:
    """A Unigram model -> {"pieces": [(piece, score)], "unk_id": int}; byte_fallback and a missing unk_id refused."""
    vocab = model.get("vocab")
    if not isinstance(vocab, list) or not all(isinstance(e, (list, tuple)) and len(e) == 2 and isinstance(e[0], str)
                                              and isinstance(e[1], (int, float)) and not isinstance(e[1], bool)
                                              for e in vocab):  # fmt: skip
        raise TokenizerError(f"{where}: the Unigram model's vocab must be a list of [piece, score] pairs; re-export "
                             "the file")
    if model.get("byte_fallback", False):
        raise TokenizerError(f"{where}: model Unigram with byte_fallback=True is not supported by refimpl's "
                             "BertTokenizer (it reads byte_fallback=false); use a file without byte fallback")
    unk_id = model.get("unk_id")
    if isinstance(unk_id, bool) or not isinstance(unk_id, int) or not 0 <= unk_id < len(vocab):
        raise TokenizerError(f"{where}: model Unigram with unk_id={unk_id!r} is not supported by refimpl's "
                             f"BertTokenizer (it needs the index of the unknown piece, 0..{len(vocab) - 1})")
    return {"pieces": [(p, float(sc)) for p, sc in vocab], "unk_id": unk_id}


SPLIT_BEHAVIORS = ("Removed", "Isolated", "MergedWithPrevious", "MergedWithNext", "Contiguous")


def _metaspace_options(where: str, section: str, component) -> dict:
    rep = component.get("replacement", "\u2581")
    scheme = component.get("prepend_scheme", "always" if component.get("add_prefix_space", True) else "never")
    if not (isinstance(rep, str) and len(rep) == 1) or scheme not in ("always", "first", "never") or not isinstance(
            component.get("split", True), bool):
        raise TokenizerError(f"{where}: {section} Metaspace with replacement={rep!r}, prepend_scheme={scheme!r}, "
                             f"split={component.get('split')!r} is not supported by refimpl's BertTokenizer (it reads "
                             "one replacement char, prepend_scheme always/first/never, a boolean split)")
    return {"replacement": rep, "prepend_scheme": scheme}


def _pre_tokenizer_kind(where: str, pre) -> str:
    if not isinstance(pre, dict) or pre.get("type") not in PRE_TOKENIZER_WORDS:
        _unsupported(where, "pre_tokenizer", pre)
    return pre["type"]


def _template_of(where: str, post):
    """TemplateProcessing / BertProcessing -> {"single": [...], "pair": [...]} of Seq / Special items; None
    (no post-processor) -> no special tokens added."""
    if post is None:
        return {"single": [Seq(0, 0)], "pair": [Seq(0, 0), Seq(1, 1)]}
    if not isinstance(post, dict) or post.get("type") not in SUPPORTED_COMPONENTS["post_processor"]:
        _unsupported(where, "post_processor", post)
    try:
        if post["type"] == "BertProcessing":
            (sep, _), (cls, _) = post["sep"], post["cls"]
            return {"single": [Special(cls, 0), Seq(0, 0), Special(sep, 0)],
                    "pair": [Special(cls, 0), Seq(0, 0), Special(sep, 0), Seq(1, 1), Special(sep, 1)]}  # fmt: skip
        out = {}
        for key in ("single", "pair"):
            items = []
            for piece in post[key]:
                if "Sequence" in piece:
                    items.append(Seq({"A": 0, "B": 1}[piece["Sequence"]["id"]], int(piece["Sequence"]["type_id"])))
                else:
                    token = piece["SpecialToken"]["id"]
                    spec = post.get("special_tokens", {}).get(token, {"tokens": [token]})
                    if list(spec.get("tokens", [token])) != [token]:
                        raise TokenizerError(f"{where}: TemplateProcessing special token {token!r} expands to "
                                             f"{spec.get('tokens')!r}; refimpl supports one token per entry")
                    items.append(Special(token, int(piece["SpecialToken"]["type_id"])))
            out[key] = items
        return out
    except (KeyError, TypeError, ValueError) as e:
        if isinstance(e, TokenizerError):
            raise
        raise TokenizerError(f"{where}: post_processor {post.get('type')!r} is malformed ({type(e).__name__}: {e}); "
                             "re-export the file") from None


def _rust_wordpiece_cleanup(token: str) -> str:
    """The Rust WordPiece decoder's per-token ``cleanup`` (it also turns " do not" into " don't")."""
    for old, new in ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"),
                     (" 'm", "'m"), (" do not", " don't"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re")):  # fmt: skip
        token = token.replace(old, new)
    return token


#: The words of each supported pre-tokenizer as one regex (findall: the words; finditer: their spans).
#: Whitespace is the Rust ``\w+|[^\w\s]+`` (onig); WhitespaceSplit splits on Rust ``char::is_whitespace``.
PRE_TOKENIZER_WORDS = {
    "BertPreTokenizer": _FAST_WORD_RE,
    "Whitespace": regex.compile(r"\w+|[^\w\s]+"),
    "WhitespaceSplit": regex.compile("[^" + "".join(regex.escape(c) for c in sorted(RUST_WHITESPACE)) + "]+"),
}


class _BertBase(TokenizerBase):
    default_special_tokens = BERT_SPECIAL_TOKENS
    vocab_file_names = ("vocab.txt",)

    def __init__(self, vocab_file=None, do_lower_case=True, do_basic_tokenize=True, never_split=None,
                 tokenize_chinese_chars=True, strip_accents=None, max_input_chars_per_word=100, *, vocab=None,
                 wordpiece_prefix="##", clean_text=True, **kwargs):  # fmt: skip
        if vocab is None:
            if vocab_file is None:
                raise TokenizerError(f"{type(self).__name__} needs vocab_file (a vocab.txt path) or vocab (a dict)")
            vocab = load_vocab_txt(vocab_file)
        super().__init__(**kwargs)
        self.vocab = dict(vocab)
        self.ids_to_tokens = {i: t for t, i in self.vocab.items()}
        self.do_lower_case = bool(do_lower_case)
        self.do_basic_tokenize = bool(do_basic_tokenize)
        self.never_split = list(never_split or [])
        self.tokenize_chinese_chars = bool(tokenize_chinese_chars)
        self.strip_accents = strip_accents
        self.clean_text = bool(clean_text)
        self.max_input_chars_per_word = int(max_input_chars_per_word)
        self.wordpiece_prefix = wordpiece_prefix
        if self.__dict__.get("_unigram") is None and (self.unk_token is None or self.unk_token not in self.vocab):
            raise TokenizerError(
                f"unk_token {self.unk_token!r} is not in the vocabulary ({len(self.vocab)} tokens): WordPiece needs it "
                "there (the Rust model fails with 'Missing [UNK] token from the vocabulary'); add it to vocab.txt or "
                "pass the right unk_token="
            )
        if self.__dict__.get("_unigram") is not None:  # a tokenizer.json Unigram model
            self._split_word = Unigram(self._unigram["pieces"], self._unigram["unk_id"])
            self._unk_id = self._unigram["unk_id"]
        else:
            self._split_word = WordPiece(self.vocab, self.unk_token, self.max_input_chars_per_word, wordpiece_prefix)
            self._unk_id = self.vocab[self.unk_token]
        self._wp_cache: dict[str, list] = {}  # word -> [(piece, start, end)]
        self._ids_cache: dict[str, list] = {}  # word -> piece ids
        self._init_added_tokens()  # special tokens not in vocab.txt get the next ids, as in transformers

    @classmethod
    def from_pretrained(cls, directory, **kwargs):
        """Load from a directory with ``vocab.txt`` and/or ``tokenizer.json`` (+ ``tokenizer_config.json``,
        ``special_tokens_map.json``); options in the config, then ``kwargs``, override tokenizer.json."""
        directory, config = cls._read_config(directory, kwargs)
        if (directory / "tokenizer.json").is_file() and cls.prefer_tokenizer_json and not config.get("from_slow"):
            from_json = load_tokenizer_json(directory / "tokenizer.json")
            # transformers' fast tokenizer built from a tokenizer.json takes the base default (False); built from
            # vocab.txt alone it is converted from the Python class and takes its default (True)
            from_json["clean_up_tokenization_spaces"] = False
            from_json.update({"do_lower_case": True, "strip_accents": None, "tokenize_chinese_chars": True})
            from_json.update(config)
            return cls(**from_json)
        if (directory / "vocab.txt").is_file():
            return cls(directory / "vocab.txt", **config)
        if (directory / "tokenizer.json").is_file():
            from_json = load_tokenizer_json(directory / "tokenizer.json")
            from_json.update(config)
            return cls(**from_json)
        raise TokenizerFileNotFoundError(
            f"no vocab.txt or tokenizer.json in {str(directory)!r}; a BERT tokenizer needs one of them"
        )

    def _template(self, pair: bool) -> list:
        cls, sep = self.cls_token, self.sep_token
        if pair:
            return [Special(cls, 0), Seq(0, 0), Special(sep, 0), Seq(1, 1), Special(sep, 1)]
        return [Special(cls, 0), Seq(0, 0), Special(sep, 0)]

    def _wordpiece(self, word: str) -> list:
        pieces = self._wp_cache.get(word)
        if pieces is None:
            pieces = self._split_word(word)
            if len(self._wp_cache) < 500_000:
                self._wp_cache[word] = pieces
        return pieces

    def _word_ids(self, word: str) -> list[int]:
        """Ids of ``word``'s WordPiece pieces, cached (the encode path without offsets)."""
        vocab = self.vocab
        unk = self._unk_id  # WordPiece: pieces and [UNK] are in vocab; Unigram: an unknown token keeps its text
        ids = [vocab.get(piece, unk) for piece, _, _ in self._split_word(word)]
        if len(self._ids_cache) < 500_000:
            self._ids_cache[word] = ids
        return ids

    def _split_special(self, text: str):
        """(start, end, is_special) segments of ``text``."""
        if self._special_re is None:
            return [(0, len(text), False)] if text else []
        out, pos = [], 0
        for m in self._special_re.finditer(text):
            if m.start() > pos:
                out.append((pos, m.start(), False))
            out.append((m.start(), m.end(), True))
            pos = m.end()
        if pos < len(text):
            out.append((pos, len(text), False))
        return out

    def _init_config(self) -> dict:
        return {
            "do_lower_case": self.do_lower_case,
            "do_basic_tokenize": self.do_basic_tokenize,
            "never_split": self.never_split or None,
            "tokenize_chinese_chars": self.tokenize_chinese_chars,
            "strip_accents": self.strip_accents,
        }

    def _save_vocabulary(self, directory: Path):
        path = directory / "vocab.txt"
        tokens = [t for t, _ in sorted(self.vocab.items(), key=lambda kv: kv[1])]
        path.write_text("".join(t + "\n" for t in tokens), encoding="utf-8")
        return [path]


class BertTokenizer(_BertBase):
    """WordPiece BERT tokenizer matching transformers' ``BertTokenizerFast`` (Rust ``tokenizers``).

    Options: ``do_lower_case``, ``strip_accents`` (None: follow do_lower_case), ``tokenize_chinese_chars``,
    ``clean_text``, ``max_input_chars_per_word`` (longer words -> ``[UNK]``), special tokens, and the
    loading options ``model_max_length``, ``padding_side``, ``truncation_side``,
    ``clean_up_tokenization_spaces`` (default False, as the fast tokenizer). ``do_basic_tokenize`` and
    ``never_split`` are accepted and ignored, as ``BertTokenizerFast`` ignores them.

    ``return_offsets_mapping=True`` gives character offsets into the input text:

        >>> tok("Héllo world", return_offsets_mapping=True)["offset_mapping"]
        [(0, 0), (0, 5), (6, 11), (0, 0)]
    """

    flavour = "fast"
    config_class_name = "BertTokenizer"
    prefer_tokenizer_json = True

    default_clean_up = True  # from vocab.txt alone (from_pretrained with a tokenizer.json: False, see there)

    def __init__(self, *args, decoder_cleanup=True, decoder_metaspace=None, pre_tokenizer="BertPreTokenizer", template=None,
                 tokenizer_json=None, normalizer_steps=None, pre_tokenizer_steps=None, unigram=None, **kwargs):  # fmt: skip
        self._normalizer = None
        self._unigram = unigram  # {"pieces": [(piece, score)], "unk_id"}: a Unigram model instead of WordPiece
        self._template_json = template
        self._tokenizer_json = tokenizer_json
        super().__init__(*args, **kwargs)
        self.decoder_cleanup = bool(decoder_cleanup)
        self.decoder_metaspace = decoder_metaspace  # tokenizer.json's Metaspace decoder options, else WordPiece's
        if pre_tokenizer not in PRE_TOKENIZER_WORDS:
            raise TokenizerError(f"pre_tokenizer={pre_tokenizer!r}; BertTokenizer has {sorted(PRE_TOKENIZER_WORDS)}")
        self.pre_tokenizer = pre_tokenizer
        self._word_re = PRE_TOKENIZER_WORDS[pre_tokenizer]
        self._findall = self._word_re.findall
        self._words = lambda text, a, b, at_origin: [(text[s:e], range(s, e)) for s, e in (
            m.span() for m in self._word_re.finditer(text, a, b))]
        self._needs_origin = False
        if pre_tokenizer_steps is not None:  # a tokenizer.json Sequence / Punctuation / Digits / Split / Metaspace
            self.pre_tokenizer = pre_tokenizer_steps
            words = PreTokenizerSequence(pre_tokenizer_steps, PRE_TOKENIZER_WORDS)
            self._findall, self._words, self._needs_origin = words.findall, words.words, words.needs_origin
        self._normalizer = FastNormalizer(self.clean_text, self.tokenize_chinese_chars, self.strip_accents,
                                          self.do_lower_case)  # fmt: skip
        if normalizer_steps is not None:  # a tokenizer.json normalizer other than BertNormalizer
            self._normalizer = NormalizerSequence(normalizer_steps)
        self._refresh_added()  # normalized added tokens are matched by their normalized content

    supports_word_ids = True

    def _raw_added_tokens(self) -> list[str]:
        """Special added tokens are matched in the raw text; the others (``normalized``) in the normalized
        text, by their normalized content, as the Rust AddedVocabulary does."""
        return [t for t in self.added_tokens if self._added_special[t]]

    def _refresh_added(self):
        super()._refresh_added()
        normalizer = self.__dict__.get("_normalizer")
        self._normalized_added = {}
        for t in self.added_tokens:
            if not self._added_special[t]:
                self._normalized_added.setdefault(normalizer.normalize(t) if normalizer else t, self.added_tokens[t])
        keys = sorted((k for k in self._normalized_added if k), key=len, reverse=True)
        self._normalized_re = regex.compile("|".join(map(regex.escape, keys))) if keys else None

    def _tokenize_with_offsets(self, text: str, want_offsets: bool):
        tokens, offsets, _, _ = self._tokenize_full(text, want_offsets)
        return tokens, offsets

    def _encode_words(self, text: str) -> Encoded:
        _, offsets, words, ids = self._tokenize_full(text, True)
        return Encoded(ids, offsets, words)

    def _encode_text(self, text: str, want_offsets: bool):
        """Without offsets, the steps of :meth:`_tokenize_full` straight to ids, through a word -> ids
        cache (tests compare both paths with transformers)."""
        if want_offsets or self._normalized_re is not None or self._needs_origin:
            _, offsets, _, ids = self._tokenize_full(text, want_offsets)
            return ids, offsets
        ids: list[int] = []
        ids_cache, word_ids, normalize = self._ids_cache, self._word_ids, self._normalizer.normalize
        for start, end, special in self._split_special(text):
            if special:
                ids.append(self.added_tokens[text[start:end]])
                continue
            for word in self._findall(normalize(text[start:end])):
                cached = ids_cache.get(word)
                ids += word_ids(word) if cached is None else cached
        return ids, None

    def _tokenize_full(self, text: str, want_offsets: bool):
        """Tokens, offsets (or None), the word index and the id of each token: special tokens split off the raw text,
        then per segment: normalize, split off the normalized added tokens, pre-tokenize, WordPiece. Each
        added token and each pre-tokenizer word is one word (``word_ids()``)."""
        tokens: list[str] = []
        offsets: list[tuple[int, int]] | None = [] if want_offsets else None
        words: list[int] = []
        ids: list[int] = []
        for start, end, special in self._split_special(text):
            if special:
                tokens.append(text[start:end])
                ids.append(self.added_tokens[text[start:end]])
                words.append(words[-1] + 1 if words else 0)
                if want_offsets:
                    offsets.append((start, end))
                continue
            segment = text[start:end]
            if want_offsets or self._needs_origin:  # each normalized char's source span: [align[i], align_end[i])
                if isinstance(self._normalizer, NormalizerSequence):
                    norm, align, align_end = self._normalizer.normalize_spans(segment)
                else:
                    norm, align = self._normalizer.normalize_aligned(segment)
                    align_end = [a + 1 for a in align]
            else:
                norm, align = self._normalizer.normalize(segment), None
            pieces, pos = [], 0  # (start, end, is_added) in the normalized segment
            if self._normalized_re is not None:
                for m in self._normalized_re.finditer(norm):
                    pieces += [(pos, m.start(), False), (m.start(), m.end(), True)]
                    pos = m.end()
            pieces.append((pos, len(norm), False))
            for ns, ne, added in pieces:
                if added:
                    tokens.append(norm[ns:ne])
                    ids.append(self._normalized_added[norm[ns:ne]])
                    words.append(words[-1] + 1 if words else 0)
                    if want_offsets:
                        offsets.append((start + align[ns], start + align_end[ne - 1]))
                    continue
                at_origin = (lambda i: start + align[i] == 0) if align is not None else None
                for w, src in self._words(norm, ns, ne, at_origin):
                    word = words[-1] + 1 if words else 0
                    for piece, ps, pe in self._wordpiece(w):
                        tokens.append(piece)
                        ids.append(self.vocab.get(piece, self._unk_id))
                        words.append(word)
                        if want_offsets:
                            offsets.append((start + align[src[ps]], start + align_end[src[pe - 1]]))
        return tokens, offsets, words, ids

    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        """The Rust WordPiece decoder (``BertTokenizerFast.convert_tokens_to_string``): ``##`` removed from
        continuation pieces, other pieces prefixed with a space; per-token cleanup when the decoder has it."""
        if self.decoder_metaspace is not None:  # the Rust Metaspace decoder: the replacement -> " ", dropped in the
            rep, keep_first = self.decoder_metaspace["replacement"], self.decoder_metaspace["prepend_scheme"] == "never"
            return "".join(t.replace(rep, "" if i == 0 and not keep_first else " ")  # first token unless "never"
                           for i, t in enumerate(tokens))
        out = []
        for token in tokens:
            if out:
                if token.startswith(self.wordpiece_prefix):
                    token = token.replace(self.wordpiece_prefix, "", 1)
                else:
                    token = " " + token
            out.append(_rust_wordpiece_cleanup(token) if self.decoder_cleanup else token)
        return "".join(out)

    def _decode(self, ids: list[int], skip_special_tokens: bool) -> str:
        """Rust decode: tokens of the ids (added tokens included), special added tokens skipped when asked,
        then the decoder over all of them."""
        special = {i for t, i in self.added_tokens.items() if self._added_special[t]} if skip_special_tokens else set()
        return self.convert_tokens_to_string([self.ids_to_tokens[i] for i in ids if i not in special])

    def _save_vocabulary(self, directory: Path):
        """vocab.txt, and the tokenizer.json it was loaded from (its pipeline; added tokens brought up to date)."""
        files = super()._save_vocabulary(directory)
        if self._tokenizer_json is not None:
            import json

            data = dict(self._tokenizer_json)
            listed = {a["content"] for a in data.get("added_tokens") or []}
            data["added_tokens"] = list(data.get("added_tokens") or []) + [
                {"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
                 "normalized": not self._added_special[t], "special": self._added_special[t]}
                for t, i in sorted(self.added_tokens.items(), key=lambda kv: kv[1]) if t not in listed]  # fmt: skip
            (directory / "tokenizer.json").write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
            files.append(directory / "tokenizer.json")
        return files

    def _template(self, pair: bool) -> list:
        if self._template_json is not None:  # tokenizer.json's post-processor
            return self._template_json["pair" if pair else "single"]
        return super()._template(pair)

    def _init_config(self) -> dict:
        return {**super()._init_config(), "clean_text": self.clean_text}


class BertTokenizerLegacy(_BertBase):
    """WordPiece BERT tokenizer matching transformers 4.57.6's pure-Python ``BertTokenizer``.

    Same options as :class:`BertTokenizer`, plus ``do_basic_tokenize`` (False: WordPiece on
    whitespace-split text only) and ``never_split`` (words kept whole, never lowercased or split).
    Uses the running Python's ``unicodedata`` (as transformers' Python tokenizer does), applies NFC,
    has no offsets (``return_offsets_mapping=True`` raises NotImplementedError, as transformers does),
    and ``clean_up_tokenization_spaces`` defaults to True.
    """

    flavour = "slow"
    config_class_name = "BertTokenizer"
    prefer_tokenizer_json = False
    supports_offsets = False
    default_clean_up = True

    def __init__(self, *args, **kwargs):
        kwargs.pop("decoder_cleanup", None), kwargs.pop("tokenizer_json", None)
        pre, template = kwargs.pop("pre_tokenizer", "BertPreTokenizer"), kwargs.pop("template", None)
        for name in ("normalizer_steps", "pre_tokenizer_steps", "decoder_metaspace", "unigram"):
            if kwargs.get(name) is not None:
                raise TokenizerError(f"BertTokenizerLegacy (transformers' Python BertTokenizer) has BERT's pipeline "
                                     f"only; this tokenizer.json has {name.rsplit('_', 1)[0]} {kwargs[name]!r:.80}: load it with "
                                     "BertTokenizer")
            kwargs.pop(name, None)
        super().__init__(*args, **kwargs)
        if pre != "BertPreTokenizer" or (template is not None and template != {
                "single": super()._template(False), "pair": super()._template(True)}):  # fmt: skip
            raise TokenizerError(f"BertTokenizerLegacy (transformers' Python BertTokenizer) has BERT's pipeline only; "
                                 f"this tokenizer.json has pre_tokenizer {pre!r} and post-processor {template!r:.80}: "
                                 "load it with BertTokenizer")
        self._basic = LegacyBasicTokenizer(self.do_lower_case, self.never_split, self.tokenize_chinese_chars,
                                           self.strip_accents)  # fmt: skip
        self._lower = {}
        self._refresh_added()

    def _refresh_added(self):
        super()._refresh_added()
        # transformers' lowercasing regex: special tokens and non-special added tokens kept as written (the
        # first alternative wins, not the longest)
        keep = list(self.all_special_tokens) + [t for t in self.added_tokens if not self._added_special[t]
                                                 and t not in self.all_special_tokens]  # fmt: skip
        self._keep_case_re = re.compile("|".join(map(re.escape, keep))) if keep else None

    def _added_content(self, content: str, special: bool) -> str:
        """transformers lowercases a non-special added token when the tokenizer lowercases."""
        return content.lower() if self.do_lower_case and not special else content

    def _lowercase_outside_specials(self, text: str) -> str:
        """transformers' ``tokenize`` pre-pass: lowercase char by char, special tokens untouched."""
        table = self._lower
        for c in set(text) - table.keys():
            table[c] = c.lower()
        if self._keep_case_re is None:
            return "".join(table[c] for c in text)
        out, pos = [], 0
        for m in self._keep_case_re.finditer(text):
            out.append("".join(table[c] for c in text[pos : m.start()]))
            out.append(m.group())
            pos = m.end()
        out.append("".join(table[c] for c in text[pos:]))
        return "".join(out)

    def _tokenize_with_offsets(self, text: str, want_offsets: bool):
        if self.do_lower_case and self.do_basic_tokenize:  # transformers reads do_lower_case off the
            text = self._lowercase_outside_specials(text)  # BasicTokenizer: without one, nothing is lowercased
        tokens: list[str] = []
        never = set(self.never_split)
        for start, end, special in self._split_special(text):
            piece = text[start:end]
            if special:
                tokens.append(piece)
            elif self.do_basic_tokenize:
                for word in self._basic.tokenize(piece, never_split=self.all_special_tokens):
                    if word in never:
                        tokens.append(word)
                    else:
                        tokens.extend(p for p, _, _ in self._wordpiece(word))
            else:
                for word in piece.split():
                    tokens.extend(p for p, _, _ in self._wordpiece(word))
        return tokens, None

    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        """transformers' slow rule: join with spaces, glue ``##`` pieces, strip."""
        return " ".join(tokens).replace(" ##", "").strip()
