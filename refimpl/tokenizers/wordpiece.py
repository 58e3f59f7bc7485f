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
