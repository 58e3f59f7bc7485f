"""tokenizer.json normalizers and pre-tokenizers beyond BERT's own, composed as the Rust library composes them.

A normalizer maps text to (normalized text, alignment): for each normalized character, the half-open span
``[start, end)`` of source characters it came from, as the Rust ``NormalizedString`` aligns them (a composed
``é`` from ``e`` + U+0301 gets the ``e``'s span only; both chars of a decomposed ``é`` get its span). Each
step below returns, per output character, the span of *its input* characters; :class:`NormalizerSequence`
composes the spans, so offsets come out in source characters.

    >>> NormalizerSequence([("NFC", {}), ("Lowercase", {})]).normalize_spans("E\\u0301t\\u00c9")
    ('été', [0, 2, 3], [1, 3, 4])

Unicode data: ``Lowercase`` and ``StripAccents`` use the Rust library's tables (``_fast_tables``, derived from
``tokenizers`` itself); ``NFD``/``NFC``/``NFKD``/``NFKC`` use Python's ``unicodedata`` (its Unicode version may
differ from the Rust crate's outside long-assigned characters; docs/tokenizers.md). The span of a character
is computed per cluster (a starter and its marks, grown while normalizing it apart would differ).

A pre-tokenizer maps (text, list of word spans) to a finer list of word spans.
"""

from __future__ import annotations

import unicodedata

from . import _fast_tables as T
from .normalization import _PUNCTUATION_FAST, _STRIP_REMOVED, FastNormalizer
from .roberta import RUST_WHITESPACE

# -------------------------------------------------------------------------------------------- normalizers


def _per_char(text: str, fn) -> tuple[str, list[tuple[int, int]]]:
    """Each input char i becomes ``fn(c)`` (maybe "" or several chars), each with span (i, i + 1)."""
    out, spans = [], []
    for i, c in enumerate(text):
        m = fn(c)
        out.append(m)
        spans.extend([(i, i + 1)] * len(m))
    return "".join(out), spans


def _unicode_form(form: str, text: str) -> tuple[str, list[tuple[int, int]]]:
    """unicodedata.normalize(form) cluster by cluster (a cluster: a starter and the following marks, grown while
    normalizing it apart from the next would give another result)."""
    starts = [i for i, c in enumerate(text) if i == 0 or unicodedata.combining(c) == 0] + [len(text)]
    out, spans, k = [], [], 0
    while k < len(starts) - 1:
        a, b = starts[k], starts[k + 1]
        k += 1
        while k < len(starts) - 1 and unicodedata.normalize(form, text[a:starts[k + 1]]) != (
                unicodedata.normalize(form, text[a:b]) + unicodedata.normalize(form, text[b:starts[k + 1]])):
            b = starts[k + 1]
            k += 1
        piece = unicodedata.normalize(form, text[a:b])
        out.append(piece)
        per_char = [unicodedata.normalize(form, c) for c in text[a:b]]
        if "".join(per_char) == piece:  # decompositions: every char from one source char (the Rust "inserted"
            spans.extend((a + i, a + i + 1) for i, d in enumerate(per_char) for _ in d)  # chars take its span)
        else:  # compositions: the k-th char takes the k-th source char (the Rust transform drops the rest)
            spans.extend((a + min(k, b - a - 1), a + min(k, b - a - 1) + 1) for k in range(len(piece)))
    return "".join(out), spans


def _strip(text: str, left: bool, right: bool) -> tuple[str, list[tuple[int, int]]]:
    a, b = 0, len(text)
    while left and a < b and text[a] in RUST_WHITESPACE:
        a += 1
    while right and b > a and text[b - 1] in RUST_WHITESPACE:
        b -= 1
    return text[a:b], [(i, i + 1) for i in range(a, b)]


def _replace(text: str, pattern: str, content: str) -> tuple[str, list[tuple[int, int]]]:
    """Every non-overlapping occurrence of ``pattern`` (left to right) becomes ``content``; each new char spans
    the whole occurrence."""
    out, spans, pos = [], [], 0
    while pattern:
        i = text.find(pattern, pos)
        if i < 0:
            break
        out.append(text[pos:i])
        spans.extend((j, j + 1) for j in range(pos, i))
        out.append(content)
        spans.extend([(i, i + len(pattern))] * len(content))
        pos = i + len(pattern)
    out.append(text[pos:])
    spans.extend((j, j + 1) for j in range(pos, len(text)))
    return "".join(out), spans


def _lower(c: str) -> str:
    return T.LOWER_MAP.get(ord(c), c)


def _no_mark(c: str) -> str:
    return "" if c in _STRIP_REMOVED else c


def normalizer_step(kind: str, opts: dict):
    """One normalizer as ``text -> (text, spans)``."""
    if kind == "Lowercase":
        return lambda t: _per_char(t, _lower)
    if kind == "StripAccents":
        return lambda t: _per_char(t, _no_mark)
    if kind in ("NFD", "NFC", "NFKD", "NFKC"):
        return lambda t: _unicode_form(kind, t)
    if kind == "Strip":
        left, right = bool(opts.get("strip_left", True)), bool(opts.get("strip_right", True))
        return lambda t: _strip(t, left, right)
    if kind == "Replace":
        pattern, content = opts["pattern"]["String"], opts["content"]
        return lambda t: _replace(t, pattern, content)
    if kind == "BertNormalizer":  # inside a Sequence: the file's options (transformers replaces them only on
        norm = FastNormalizer(opts.get("clean_text", True), opts.get("handle_chinese_chars", True),  # a top-level
                              opts.get("strip_accents"), opts.get("lowercase", True))  # BertNormalizer)
        def bert(t):
            out, align = norm.normalize_aligned(t)
            return out, [(a, a + 1) for a in align]
        return bert
    raise KeyError(kind)


class NormalizerSequence:
    """A list of (type, options) normalizers applied in order (a single one is a Sequence of one)."""

    def __init__(self, steps):
        self.steps = [normalizer_step(kind, opts) for kind, opts in steps]

    def normalize_spans(self, text: str) -> tuple[str, list[int], list[int]]:
        """Normalized text, and per character the start and end (exclusive) of its source span."""
        starts, ends = list(range(len(text))), list(range(1, len(text) + 1))
        for step in self.steps:
            text, spans = step(text)
            starts, ends = [starts[a] for a, _ in spans], [ends[b - 1] for _, b in spans]
        return text, starts, ends

    def normalize(self, text: str) -> str:
        for step in self.steps:
            text = step(text)[0]
        return text


# ----------------------------------------------------------------------------------------- pre-tokenizers


def _regex_words(pattern):
    def split(text, spans):
        return [m.span() for a, b in spans for m in pattern.finditer(text, a, b)]
    return split


def _isolate(predicate, contiguous: bool):
    """Rust ``split(predicate, Isolated / Contiguous)``: each matching char (or run of them, ``contiguous``) is a
    word, and so is each run of the other chars."""
    def split(text, spans):
        out = []
        for a, b in spans:
            i = a
            while i < b:
                j, hit = i + 1, predicate(text[i])
                if contiguous or not hit:
                    while j < b and predicate(text[j]) == hit:
                        j += 1
                out.append((i, j))
                i = j
        return out
    return split


def _is_digit(c: str) -> bool:  # Rust char::is_numeric: Nd, Nl, No
    return unicodedata.category(c) in ("Nd", "Nl", "No")


def _is_punctuation(c: str) -> bool:  # Rust tokenizers' is_punc (the BertPreTokenizer's set)
    return c in _PUNCTUATION_FAST


def pre_tokenizer_step(kind: str, opts: dict, words: dict):
    """One pre-tokenizer as ``(text, spans) -> spans``; ``words`` holds the regexes of the word pre-tokenizers."""
    if kind in words:
        return _regex_words(words[kind])
    if kind == "Punctuation":
        return _isolate(_is_punctuation, False)
    if kind == "Digits":
        return _isolate(_is_digit, not opts.get("individual_digits", False))
    raise KeyError(kind)


class PreTokenizerSequence:
    """A list of (type, options) pre-tokenizers, each splitting the words of the one before."""

    def __init__(self, steps, words: dict):
        self.steps = [pre_tokenizer_step(kind, opts, words) for kind, opts in steps]

    def spans(self, text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
        spans = [(start, len(text) if end is None else end)]
        for step in self.steps:
            spans = step(text, spans)
        return spans

    def findall(self, text: str) -> list[str]:
        return [text[a:b] for a, b in self.spans(text)]

