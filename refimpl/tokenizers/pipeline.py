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

A pre-tokenizer maps a list of words to a finer one, a word being its chars and, per char, the index of the
normalized char it stands for (``Metaspace`` replaces spaces and prepends a char, which takes the first char's
index). :class:`Unigram` is the Rust Unigram model (Viterbi over the pieces' scores).
"""

from __future__ import annotations

import unicodedata

import regex

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


def _split_pieces(matches, behavior: str):
    """Rust ``SplitDelimiterBehavior`` over [(start, end, is_match)] covering a word -> [(start, end)], empty ones
    dropped."""
    out: list[list[int]] = []
    if behavior == "Removed":
        out = [[a, b] for a, b, m in matches if not m]
    elif behavior == "Isolated":
        out = [[a, b] for a, b, _ in matches]
    elif behavior == "MergedWithPrevious":
        prev = False
        for a, b, m in matches:
            if m and not prev and out:
                out[-1][1] = b
            else:
                out.append([a, b])
            prev = m
    elif behavior == "MergedWithNext":
        prev = False
        for a, b, m in reversed(matches):
            if m and not prev and out:
                out[-1][0] = a
            else:
                out.append([a, b])
            prev = m
        out.reverse()
    elif behavior == "Contiguous":
        prev = False
        for a, b, m in matches:
            if m == prev and out:
                out[-1][1] = b
            else:
                out.append([a, b])
            prev = m
    else:
        raise KeyError(behavior)
    return [(a, b) for a, b in out if a != b]


def _matches(finder, text: str, invert: bool = False):
    """[(start, end, is_match)] covering ``text``: the non-empty matches of ``finder(text)`` (an iterator of
    spans) and the gaps between them, as the Rust ``Pattern::find_matches``."""
    out, pos = [], 0
    for a, b in finder(text):
        if a == b:
            continue
        if pos != a:
            out.append((pos, a, invert))
        out.append((a, b, not invert))
        pos = b
    if pos != len(text) or not out:
        out.append((pos, len(text), invert))
    return out


def _string_finder(pattern: str):
    def find(text):
        pos = 0
        while pattern:
            i = text.find(pattern, pos)
            if i < 0:
                return
            yield i, i + len(pattern)
            pos = i + len(pattern)
    return find


METASPACE = "\u2581"


def pre_tokenizer_step(kind: str, opts: dict, words: dict):
    """One pre-tokenizer as ``words -> words``, a word being ``(text, source)``: its chars and, per char, the
    index of the normalized char it stands for; ``words`` holds the regexes of the word pre-tokenizers."""
    if kind in words:
        return _on_spans(_regex_words(words[kind]))
    if kind == "Punctuation":
        return _on_spans(_isolate(_is_punctuation, False))
    if kind == "Digits":
        return _on_spans(_isolate(_is_digit, not opts.get("individual_digits", False)))
    if kind == "Split":
        pat = opts["pattern"]
        if "Regex" in pat:
            rx = regex.compile(pat["Regex"])
            finder = lambda t: (m.span() for m in rx.finditer(t))  # noqa: E731
        else:
            finder = _string_finder(pat["String"])
        behavior, invert = opts.get("behavior", "Isolated"), bool(opts.get("invert", False))

        def split(ws):
            return [(w[a:b], src[a:b]) for w, src in ws for a, b in _split_pieces(_matches(finder, w, invert), behavior)]
        return split
    if kind == "Metaspace":
        rep = opts.get("replacement", METASPACE)
        scheme = opts.get("prepend_scheme", "always" if opts.get("add_prefix_space", True) else "never")
        do_split = opts.get("split", True)
        finder = _string_finder(rep)

        def meta(ws, at_origin):
            out = []
            for w, src in ws:
                w = w.replace(" ", rep)
                if w and not w.startswith(rep) and (scheme == "always" or (scheme == "first" and at_origin(src[0]))):
                    w, src = rep + w, [src[0]] + list(src)  # the Rust prepend: the new char takes the first's span
                if do_split:
                    out += [(w[a:b], src[a:b]) for a, b in _split_pieces(_matches(finder, w), "MergedWithNext")]
                else:
                    out.append((w, src))
            return out
        meta.needs_origin = True
        return meta
    raise KeyError(kind)


def _on_spans(split):
    def step(ws):
        return [(w[a:b], src[a:b]) for w, src in ws for a, b in split(w, [(0, len(w))])]
    return step


class PreTokenizerSequence:
    """A list of (type, options) pre-tokenizers, each splitting the words of the one before."""

    def __init__(self, steps, words: dict):
        self.steps = [pre_tokenizer_step(kind, opts, words) for kind, opts in steps]
        self.needs_origin = any(getattr(s, "needs_origin", False) for s in self.steps)

    def words(self, text: str, start: int = 0, end: int | None = None, at_origin=lambda i: False):
        """[(word, source)]: each word's chars and, per char, its index in ``text``; ``at_origin(i)``: whether
        char ``i`` of ``text`` is at offset 0 of the input (Metaspace's prepend_scheme "first")."""
        end = len(text) if end is None else end
        ws = [(text[start:end], range(start, end))] if end > start else []
        for step in self.steps:
            ws = step(ws, at_origin) if getattr(step, "needs_origin", False) else step(ws)
        return ws

    def findall(self, text: str) -> list[str]:
        return [w for w, _ in self.words(text, at_origin=lambda i: i == 0)]


# ------------------------------------------------------------------------------------------------- models


class Unigram:
    """The Rust ``tokenizers`` Unigram model (``encode_optimized``): the Viterbi best segmentation of a word over
    the pieces' log-probabilities; a char no piece starts with becomes an unknown node scored ``min score - 10``,
    and consecutive unknown nodes fuse into one token (``fuse_unk``). A token is ``(text, start, end)``: an unknown
    token keeps its text (its id is ``unk_id``), as the Rust model returns it.

        >>> Unigram([("<unk>", 0.0), ("a", -1.0), ("b", -2.0), ("ab", -2.5)], 0)("abxyab")
        [('ab', 0, 2), ('xy', 2, 4), ('ab', 4, 6)]
    """

    K_UNK_PENALTY = 10.0

    def __init__(self, pieces, unk_id: int, fuse_unk: bool = True):
        self.score = {}
        for piece, score in pieces:  # a later duplicate wins, as the Rust token_to_ids map
            self.score[piece] = float(score)
        self.ids = {piece: i for i, (piece, _) in enumerate(pieces)}
        self.max_len = max((len(p) for p in self.score), default=0)
        self.unk_score = min((float(s) for _, s in pieces), default=0.0) - self.K_UNK_PENALTY
        self.unk_id, self.fuse_unk = unk_id, fuse_unk

    def __call__(self, word: str) -> list[tuple[str, int, int]]:
        n, score_of, unk_id = len(word), self.score, self.unk_id
        best = [None] * (n + 1)  # best[end] = (score, start, is_unk)
        best[0] = (0.0, 0, False)
        for s in range(n):
            base = best[s][0]
            single = False
            for length in range(1, min(self.max_len, n - s) + 1):
                piece = word[s:s + length]
                score = score_of.get(piece)
                if score is None:
                    continue
                cand = base + score
                if best[s + length] is None or cand > best[s + length][0]:
                    best[s + length] = (cand, s, self.ids[piece] == unk_id)
                if length == 1:
                    single = True
            if not single:
                cand = base + self.unk_score
                if best[s + 1] is None or cand > best[s + 1][0]:
                    best[s + 1] = (cand, s, True)
        out, end, unk_end = [], n, None
        while end > 0:
            _, start, is_unk = best[end]
            if self.fuse_unk and is_unk:
                unk_end = end if unk_end is None else unk_end
            else:
                if unk_end is not None:
                    out.append((word[end:unk_end], end, unk_end))
                    unk_end = None
                out.append((word[start:end], start, end))
            end = start
        if unk_end is not None:
            out.append((word[0:unk_end], 0, unk_end))
        out.reverse()
        return out
