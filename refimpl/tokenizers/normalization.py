"""BERT text normalization and pre-tokenization, in the two flavours transformers 4.57.6 ships.

* **fast** (``BertTokenizer``): what the Rust ``tokenizers`` library's ``BertNormalizer`` +
  ``BertPreTokenizer`` do, with the Rust library's own Unicode data (``_fast_tables``, derived from it
  code point by code point). Steps, each per character except the NFD reordering:
  clean text (drop NUL, U+FFFD, Cc/Cf/Co/Cs but keep ``\\t\\n\\r``; whitespace -> ``" "``) ->
  CJK chars -> ``" c "`` -> [strip accents: NFD, drop Mn] -> [lowercase, char by char] ->
  split on whitespace, isolate punctuation.
* **legacy** (``BertTokenizerLegacy``): transformers' pure-Python ``BasicTokenizer`` with Python's
  ``unicodedata``: clean text (also drops unassigned code points), CJK spacing, **NFC**, split on
  whitespace, lowercase the whole word then strip accents, split punctuation.

Example (uncased, both flavours)::

    "Héllo, WORLD!"  ->  ["hello", ",", "world", "!"]

All functions are pure; the per-character tables are memoised lazily (a character is looked up once).
"""

from __future__ import annotations

import bisect
import re
import unicodedata

import numpy as np

from . import _fast_tables as T

# ----------------------------------------------------------------------------------------------- shared


def hangul_decompose(char: str) -> str:
    """Canonical decomposition of a precomposed Hangul syllable (Unicode ch. 3.12); other chars unchanged.

    >>> [hex(ord(c)) for c in hangul_decompose("\\uAC01")]   # 각 -> ᄀ ᅡ ᆨ
    ['0x1100', '0x1161', '0x11a8']
    """
    s = ord(char) - 0xAC00
    if not 0 <= s < 11172:
        return char
    lead, vowel, tail = 0x1100 + s // 588, 0x1161 + (s % 588) // 28, s % 28
    return chr(lead) + chr(vowel) + (chr(0x11A7 + tail) if tail else "")


def _in_ranges(cp: int, ranges: tuple, starts: list) -> bool:
    i = bisect.bisect_right(starts, cp) - 1
    return i >= 0 and ranges[i][0] <= cp <= ranges[i][1]


class _Ranges:
    """Membership in a tuple of inclusive (first, last) code point ranges."""

    def __init__(self, ranges: tuple):
        self.ranges = ranges
        self.starts = [a for a, _ in ranges]

    def __contains__(self, char: str) -> bool:
        return _in_ranges(ord(char), self.ranges, self.starts)

    def regex_class(self) -> str:
        """The ranges as the body of a ``re`` character class."""
        return "".join(
            re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in self.ranges
        )


def _flag_table(*ranges_and_bits) -> bytearray:
    """One byte per code point (U+0000..U+10FFFF), OR-ing ``bit`` over each of its ``ranges``: a membership
    test is then one index instead of a bisect (``map_char`` runs once per new code point per tokenizer)."""
    flags = np.zeros(0x110000, dtype=np.uint8)
    for ranges, bit in ranges_and_bits:
        for first, last in ranges:
            flags[first : last + 1] |= bit
    return bytearray(flags.tobytes())


_REMOVED = _Ranges(T.REMOVED)
_WHITESPACE = _Ranges(T.WHITESPACE)
_CHINESE_FAST = _Ranges(T.CHINESE)
_STRIP_REMOVED = _Ranges(T.STRIP_REMOVED)
_SPLIT_WHITESPACE = _Ranges(T.SPLIT_WHITESPACE)
_PUNCTUATION_FAST = _Ranges(T.PUNCTUATION)
F_REMOVED, F_WHITESPACE, F_CHINESE, F_STRIP_REMOVED = 1, 2, 4, 8
_FAST_FLAGS = _flag_table((T.REMOVED, F_REMOVED), (T.WHITESPACE, F_WHITESPACE), (T.CHINESE, F_CHINESE),
                          (T.STRIP_REMOVED, F_STRIP_REMOVED))  # fmt: skip

#: CJK blocks of the legacy (Python) BasicTokenizer. The Rust list differs in one block start:
#: Python has U+2B820..U+2CEAF, Rust U+2B920..U+2CEAF (U+2B820..U+2B91F are plain letters for Rust).
CHINESE_RANGES_LEGACY = (
    (0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF), (0x2F800, 0x2FA1F),
)  # fmt: skip
_CHINESE_LEGACY = _Ranges(CHINESE_RANGES_LEGACY)


# ------------------------------------------------------------------------------------------ fast flavour


class _LazyTable(dict):
    """A ``str.translate`` table filled on first sight of each code point."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def __missing__(self, cp):
        value = self[cp] = self.fn(chr(cp))
        return value


class FastNormalizer:
    """The Rust ``BertNormalizer`` (clean_text, handle_chinese_chars, strip_accents, lowercase).

    ``strip_accents=None`` follows ``lowercase``, as in the Rust library (and original BERT).

    >>> FastNormalizer(lowercase=True).normalize("Ångström 中文")
    'angstrom  中  文 '
    """

    def __init__(self, clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=True):
        self.clean_text = bool(clean_text)
        self.handle_chinese_chars = bool(handle_chinese_chars)
        self.strip_accents = bool(lowercase if strip_accents is None else strip_accents)
        self.lowercase = bool(lowercase)
        self._table = _LazyTable(self.map_char)  # code point -> map_char(chr(code point)), filled on first sight
        # the only non-local step: NFD's canonical reordering of marks (only visible if one survives)
        survivors = [c for c in T.NFD_CCC if chr(c) not in _STRIP_REMOVED]
        self._reorder = (
            re.compile("[" + "".join(re.escape(chr(c)) for c in survivors) + "]")
            if self.strip_accents
            else None
        )

    def map_char(self, char: str) -> str:
        """What one character becomes (``""`` when dropped), ignoring NFD reordering across characters."""
        cp = ord(char)
        flags = _FAST_FLAGS[cp]
        if self.clean_text:
            if flags & F_REMOVED:
                return ""
            if flags & F_WHITESPACE:
                return " "
        # padding a CJK character does not end its normalization: accent stripping (NFD) and lowercasing
        # still apply, as in the Rust normalizer (U+F981, a compatibility ideograph, becomes " 女 ")
        chinese = self.handle_chinese_chars and flags & F_CHINESE
        out = char
        if self.strip_accents:
            if 0xAC00 <= cp <= 0xD7A3:
                out = hangul_decompose(char)
            elif flags & F_STRIP_REMOVED:
                out = ""
            else:
                out = T.STRIP_MAP.get(cp, char)
        if self.lowercase:
            out = T.LOWER_MAP.get(cp, out) if out == char else "".join(T.LOWER_MAP.get(ord(c), c) for c in out)
        return f" {out} " if chinese else out

    def _mapped(self, cp: int) -> str:
        return self._table[cp]

    def normalize(self, text: str) -> str:
        """Normalized text (no alignment)."""
        out = text.translate(self._table)
        if self._reorder is not None and self._reorder.search(out):
            return "".join(self.normalize_aligned(text)[0])
        return out

    def normalize_aligned(self, text: str) -> tuple[str, list[int]]:
        """Normalized text and, for each of its characters, the index of the source character.

        With accent stripping this runs NFD for real (decompose, reorder the marks, then drop Mn), because
        a reordered mark's alignment follows the Rust library's bookkeeping: each decomposition's first char
        "replaces" a source char and the rest are "inserted"; after the reordering, the k-th replacing char
        takes the k-th source char and an inserted one the source of the replacing char before it.
        """
        if self._reorder is None:
            chars: list[str] = []
            align: list[int] = []
            for i, c in enumerate(text):
                m = self._mapped(ord(c))
                chars.extend(m)
                align.extend([i] * len(m))
            return "".join(chars), align
        pre = FastNormalizer(self.clean_text, self.handle_chinese_chars, False, False)
        # NFD: each char of the cleaned text decomposes into a head (replacing it) and inserted tails
        items: list[tuple[str, bool]] = []  # (char, is_head)
        pre_align: list[int] = []  # source index of each cleaned char
        for i, c in enumerate(text):
            for d in pre._mapped(ord(c)):
                pre_align.append(i)
                cp = ord(d)
                dec = hangul_decompose(d) if 0xAC00 <= cp <= 0xD7A3 else T.NFD_MAP.get(cp, d)
                items.append((dec[0], True))
                items.extend((t, False) for t in dec[1:])
        _canonical_reorder(items)
        # the Rust transform walks the reordered chars: a head takes the next cleaned char's alignment, a
        # tail the previous head's (heads keep their order; a tail never moves before its own head)
        chars, align, n_heads = [], [], 0
        for c, head in items:
            if head:
                n_heads += 1
            chars.append(c)
            align.append(pre_align[n_heads - 1])
        keep = [k for k, c in enumerate(chars) if c not in _STRIP_REMOVED]
        out, out_align = [], []
        for k in keep:
            low = T.LOWER_MAP.get(ord(chars[k]), chars[k]) if self.lowercase else chars[k]
            out.append(low)
            out_align.extend([align[k]] * len(low))
        return "".join(out), out_align


def _canonical_reorder(items: list) -> None:
    """NFD's canonical ordering, in place: stable-sort each run of non-starters by combining class
    (the Rust library's classes, ``NFD_CCC``). ``items`` are ``(char, ...)`` tuples; the rest travels along."""
    ccc = T.NFD_CCC
    i, n = 0, len(items)
    while i < n:
        if ord(items[i][0]) in ccc:
            j = i
            while j < n and ord(items[j][0]) in ccc:
                j += 1
            if j - i > 1:
                items[i:j] = sorted(items[i:j], key=lambda item: ccc[ord(item[0])])
            i = j
        else:
            i += 1


_FAST_WORD_RE = re.compile(
    f"[{_PUNCTUATION_FAST.regex_class()}]|[^{_PUNCTUATION_FAST.regex_class()}{_SPLIT_WHITESPACE.regex_class()}]+"
)


def fast_pre_tokenize_words(normalized: str) -> list[str]:
    """The words of :func:`fast_pre_tokenize` as strings (no spans: the encode path without offsets).

    >>> fast_pre_tokenize_words("hi, there")
    ['hi', ',', 'there']
    """
    return _FAST_WORD_RE.findall(normalized)


def fast_pre_tokenize(normalized: str) -> list[tuple[int, int]]:
    """Rust ``BertPreTokenizer``: (start, end) of each word; whitespace splits, each punctuation char stands alone.

    >>> fast_pre_tokenize("hi, there")
    [(0, 2), (2, 3), (4, 9)]
    """
    return [m.span() for m in _FAST_WORD_RE.finditer(normalized)]


# ---------------------------------------------------------------------------------------- legacy flavour


def legacy_is_whitespace(char: str) -> bool:
    """transformers' ``_is_whitespace``: space, tab, newline, carriage return, or category Zs."""
    return char in " \t\n\r" or unicodedata.category(char) == "Zs"


def legacy_is_control(char: str) -> bool:
    """transformers' ``_is_control``: any category C* (Cc, Cf, Cn, Co, Cs) except tab, newline, return."""
    return char not in "\t\n\r" and unicodedata.category(char).startswith("C")


def legacy_is_punctuation(char: str) -> bool:
    """transformers' ``_is_punctuation``: all non-alphanumeric ASCII printables, and every category P*."""
    cp = ord(char)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(char).startswith("P")


def _legacy_clean_char(char: str) -> str:
    if char in "\x00\ufffd" or legacy_is_control(char):
        return ""
    return " " if legacy_is_whitespace(char) else char


def _legacy_strip_accents(word: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", word) if unicodedata.category(c) != "Mn")


class LegacyBasicTokenizer:
    """transformers 4.57.6 ``BasicTokenizer`` (Python ``unicodedata``; the version of the running Python).

    >>> LegacyBasicTokenizer(do_lower_case=True).tokenize("Héllo, WORLD!")
    ['hello', ',', 'world', '!']
    """

    def __init__(self, do_lower_case=True, never_split=(), tokenize_chinese_chars=True, strip_accents=None):
        self.do_lower_case = do_lower_case
        self.never_split = set(never_split or ())
        self.tokenize_chinese_chars = tokenize_chinese_chars
        self.strip_accents = strip_accents
        self._clean = _LazyTable(_legacy_clean_char)
        self._chinese = _LazyTable(lambda c: f" {c} " if c in _CHINESE_LEGACY else c)
        self._punct: dict[str, bool] = {}

    def _split_on_punc(self, word: str) -> list[str]:
        punct = self._punct
        out: list[str] = []
        start = 0
        for i, c in enumerate(word):
            p = punct.get(c)
            if p is None:
                p = punct[c] = legacy_is_punctuation(c)
            if p:
                if start < i:
                    out.append(word[start:i])
                out.append(c)
                start = i + 1
        if start < len(word):
            out.append(word[start:])
        return out

    def tokenize(self, text: str, never_split=()) -> list[str]:
        never = self.never_split.union(never_split) if never_split else self.never_split
        text = text.translate(self._clean)
        if self.tokenize_chinese_chars:
            text = text.translate(self._chinese)
        out: list[str] = []
        for word in unicodedata.normalize("NFC", text).split():
            if word in never:
                out.append(word)
                continue
            if self.do_lower_case:
                word = word.lower()
                if self.strip_accents is not False:
                    word = _legacy_strip_accents(word)
            elif self.strip_accents:
                word = _legacy_strip_accents(word)
            out.extend([word] if word in never else self._split_on_punc(word))
        # split again: stripping can empty a word; a piece never contains whitespace otherwise
        return " ".join(out).split()
