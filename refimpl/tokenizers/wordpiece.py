"""Greedy longest-match-first WordPiece (identical in transformers' Python and Rust BERT tokenizers).

A word is cut from the left: the longest prefix in the vocabulary is taken, then the longest
``##``-prefixed continuation of the rest, and so on. If some remainder has no match at all, or the word
has more than ``max_input_chars_per_word`` characters, the whole word becomes the unknown token.

    >>> vocab = {"un": 0, "##aff": 1, "##able": 2, "[UNK]": 3}
    >>> wordpiece("unaffable", vocab, "[UNK]")
    [('un', 0, 2), ('##aff', 2, 5), ('##able', 5, 9)]
    >>> wordpiece("unaffablex", vocab, "[UNK]")
    [('[UNK]', 0, 10)]
"""

from __future__ import annotations


def wordpiece(
    word: str,
    vocab,
    unk_token: str,
    max_input_chars_per_word: int = 100,
    prefix: str = "##",
    max_piece_chars: int | None = None,
) -> list[tuple[str, int, int]]:
    """Split ``word`` into ``(piece, start, end)`` with character offsets into ``word``.

    ``max_piece_chars`` (the longest vocabulary entry, in characters, prefix included) only bounds the
    search; it never changes the result.
    """
    n = len(word)
    if n > max_input_chars_per_word:
        return [(unk_token, 0, n)]
    limit = max_piece_chars if max_piece_chars is not None else n + len(prefix)
    pieces = []
    start = 0
    while start < n:
        end = min(n, start + limit)
        while end > start:
            piece = word[start:end] if start == 0 else prefix + word[start:end]
            if piece in vocab:
                break
            end -= 1
        else:
            return [(unk_token, 0, n)]
        pieces.append((piece, start, end))
        start = end
    return pieces


class WordPiece:
    """:func:`wordpiece` with the vocabulary prepared once: continuation pieces are looked up without their
    prefix (no string concatenation per candidate), and the longest candidate tried at a position is the
    longest vocabulary piece starting with the character there (so a Greek letter or a digit is not
    tried at ten lengths). These bounds only skip lookups that cannot succeed: same results as
    :func:`wordpiece` (``tests/test_tokenizer_bert.py::test_wordpiece_class_equals_function``).

    >>> WordPiece({"un": 0, "##aff": 1, "##able": 2, "[UNK]": 3}, "[UNK]")("unaffable")
    [('un', 0, 2), ('##aff', 2, 5), ('##able', 5, 9)]
    """

    def __init__(self, vocab, unk_token: str, max_input_chars_per_word: int = 100, prefix: str = "##"):
        self.vocab = vocab
        self.unk_token = unk_token
        self.max_input_chars_per_word = max_input_chars_per_word
        self.prefix = prefix
        self.continuations = {t[len(prefix) :] for t in vocab if t.startswith(prefix)}
        self.longest_first: dict[str, int] = {}  # first char -> longest vocabulary entry starting with it
        for t in vocab:
            if t and len(t) > self.longest_first.get(t[0], 0):
                self.longest_first[t[0]] = len(t)
        self.longest_continuation: dict[str, int] = {}
        for t in self.continuations:
            if t and len(t) > self.longest_continuation.get(t[0], 0):
                self.longest_continuation[t[0]] = len(t)

    def __call__(self, word: str) -> list[tuple[str, int, int]]:
        n = len(word)
        if n > self.max_input_chars_per_word:
            return [(self.unk_token, 0, n)]
        if n == 0:
            return []
        vocab, continuations, prefix = self.vocab, self.continuations, self.prefix
        # the first piece: the longest prefix of the word in the vocabulary
        end = min(n, self.longest_first.get(word[0], 0))
        while end > 0 and word[:end] not in vocab:
            end -= 1
        if end == 0:
            return [(self.unk_token, 0, n)]
        pieces = [(word[:end], 0, end)]
        start, longest = end, self.longest_continuation
        while start < n:  # then the longest continuation of the rest, and so on
            end = min(n, start + longest.get(word[start], 0))
            while end > start and word[start:end] not in continuations:
                end -= 1
            if end == start:
                return [(self.unk_token, 0, n)]
            pieces.append((prefix + word[start:end], start, end))
            start = end
        return pieces
