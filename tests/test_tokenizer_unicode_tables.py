"""The Unicode tables of refimpl's fast-flavour WordPiece, checked against the Rust `tokenizers` library.

transformers' fast BERT tokenizer runs the Rust crate's own Unicode data (the `unicode_categories` and
`unicode-normalization-alignments` crates and the Rust standard library's `to_lowercase`/`is_whitespace`),
which is *not* the data of Python's `unicodedata`. refimpl therefore ships those tables, derived from
the library itself, in `refimpl/tokenizers/_fast_tables.py`.

This test derives them again, code point by code point (all 1,112,064 scalar values), and compares.
To regenerate after a `tokenizers` upgrade::

    /work/venv/bin/python tests/test_tokenizer_unicode_tables.py   # rewrites refimpl/tokenizers/_fast_tables.py
"""

from __future__ import annotations

import sys
import unicodedata
from pathlib import Path

import pytest

TABLES_FILE = Path(__file__).resolve().parent.parent / "refimpl" / "tokenizers" / "_fast_tables.py"
SEP = "|"  # untouched by every BertNormalizer step and by the chinese-char rule


def _scalars():
    return [chr(c) for c in range(0x110000) if not 0xD800 <= c < 0xE000 and chr(c) != SEP]


def _per_char(normalizer, chars):
    """{char: normalized string} for every char the normalizer changes, each normalized in isolation."""
    out = {}
    for i in range(0, len(chars), 20000):
        chunk = chars[i : i + 20000]
        parts = normalizer.normalize_str(SEP.join(chunk)).split(SEP)
        assert len(parts) == len(chunk)
        out.update((c, p) for c, p in zip(chunk, parts) if p != c)
    return out


def _ranges(codepoints):
    """Sorted code points -> [(first, last), ...]."""
    out = []
    for cp in sorted(codepoints):
        if out and out[-1][1] == cp - 1:
            out[-1][1] = cp
        else:
            out.append([cp, cp])
    return [tuple(r) for r in out]


def hangul_nfd(char: str) -> str:
    from refimpl.tokenizers.normalization import hangul_decompose

    return hangul_decompose(char)


def derive_tables() -> dict:
    """Ask the Rust library, char by char, what each BertNormalizer / BertPreTokenizer step does."""
    from tokenizers import normalizers, pre_tokenizers

    chars = _scalars()
    bert = normalizers.BertNormalizer
    clean = _per_char(bert(clean_text=True, handle_chinese_chars=False, strip_accents=False, lowercase=False), chars)
    strip = _per_char(bert(clean_text=False, handle_chinese_chars=False, strip_accents=True, lowercase=False), chars)
    lower = _per_char(bert(clean_text=False, handle_chinese_chars=False, strip_accents=False, lowercase=True), chars)
    chinese = _per_char(bert(clean_text=False, handle_chinese_chars=True, strip_accents=False, lowercase=False), chars)
    assert set(clean.values()) <= {"", " "}
    assert all(v == f" {c} " for c, v in chinese.items())

    for norm in (bert(), bert(lowercase=False)):
        assert norm.normalize_str(SEP) == SEP
    chars = chars + [SEP]
    # BertPreTokenizer: which chars are dropped (whitespace) and which stand alone (punctuation)
    pre = pre_tokenizers.BertPreTokenizer()
    split_ws, punct = set(), set()
    for i in range(0, len(chars), 20000):
        chunk = chars[i : i + 20000]
        text = "".join("a" + c for c in chunk) + "a"
        for piece, (start, end) in pre.pre_tokenize_str(text):
            if piece != "a" and not piece.startswith("a") and end - start == 1:
                punct.add(text[start])
        covered = set()
        for _, (start, end) in pre.pre_tokenize_str(text):
            covered.update(range(start, end))
        split_ws.update(text[j] for j in range(1, len(text), 2) if j not in covered)
    # canonical combining class of the chars NFD + accent stripping leaves in place, as the Rust NFD sees it:
    # a mark x is a non-starter for Rust iff it moves in front of U+0345 (ccc 240) in NFD("\u0345" + x).
    nfd = normalizers.NFD()
    ccc = {}
    for c in chars:
        if unicodedata.combining(c) and (c == "\u0345" or nfd.normalize_str("\u0345" + c) == c + "\u0345"):
            ccc[c] = unicodedata.combining(c)
    decomposition = {c: d for c, d in _per_char(nfd, chars[:-1]).items() if not 0xAC00 <= ord(c) <= 0xD7A3}
    # accent stripping == NFD, then drop the chars that strip to nothing (how refimpl's aligned path does it)
    stripped_away = {c for c, v in strip.items() if v == ""}
    for c in chars[:-1]:
        if not 0xAC00 <= ord(c) <= 0xD7A3:
            assert "".join(x for x in decomposition.get(c, c) if x not in stripped_away) == strip.get(c, c), hex(ord(c))
    # Hangul syllables decompose algorithmically (Unicode ch. 3.12); refimpl computes them, so check, then drop
    for cp in range(0xAC00, 0xD7A4):
        assert strip[chr(cp)] == hangul_nfd(chr(cp)), hex(cp)
        del strip[chr(cp)]
    return {
        "REMOVED": _ranges(ord(c) for c, v in clean.items() if v == ""),
        "WHITESPACE": _ranges(ord(c) for c, v in clean.items() if v == " "),
        "CHINESE": _ranges(ord(c) for c in chinese),
        "SPLIT_WHITESPACE": _ranges(ord(c) for c in split_ws),
        "PUNCTUATION": _ranges(ord(c) for c in punct),
        "STRIP_REMOVED": _ranges(ord(c) for c, v in strip.items() if v == ""),
        "STRIP_MAP": {ord(c): v for c, v in strip.items() if v != ""},
        "LOWER_MAP": {ord(c): v for c, v in lower.items()},
        "NFD_CCC": {ord(c): v for c, v in ccc.items()},
        "NFD_MAP": {ord(c): v for c, v in decomposition.items()},
    }


def render(tables: dict) -> str:
    import tokenizers

    lines = [
        '"""Unicode tables of the Rust `tokenizers` library (BertNormalizer, BertPreTokenizer), as data.',
        "",
        f"GENERATED by tests/test_tokenizer_unicode_tables.py from tokenizers {tokenizers.__version__}; do not edit.",
        "Ranges are inclusive (first, last) code point pairs; maps are code point -> replacement string.",
        '"""',
        "",
        f"TOKENIZERS_VERSION = {tokenizers.__version__!r}",
    ]
    for name, value in tables.items():
        if isinstance(value, list):
            body = ", ".join(f"(0x{a:X}, 0x{b:X})" for a, b in value)
            lines.append(f"{name} = ({body},)")
        else:
            body = ", ".join(f"0x{k:X}: {v!r}" for k, v in sorted(value.items()))
            lines.append(f"{name} = {{{body}}}")
    return "\n".join(lines) + "\n"


@pytest.mark.parity
@pytest.mark.slow
def test_fast_tables_match_rust_tokenizers():
    pytest.importorskip("tokenizers")
    from refimpl.tokenizers import _fast_tables as committed

    derived = derive_tables()
    for name, value in derived.items():
        got = getattr(committed, name)
        expected = tuple(value) if isinstance(value, list) else value
        assert got == expected, (
            f"{name} differs from what tokenizers derives; regenerate with "
            "`python tests/test_tokenizer_unicode_tables.py` and review the diff"
        )


def _runs(mask) -> tuple:
    """Inclusive (first, last) runs of True in a boolean array."""
    import numpy as np

    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return tuple((int(a), int(b) - 1) for a, b in zip(edges[::2], edges[1::2]))


def _merged(ranges) -> tuple:
    out = []
    for a, b in sorted(ranges):
        if out and a <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return tuple(out)


def test_flag_table_matches_range_tables():
    """normalization._FAST_FLAGS (one byte per code point, what map_char reads) holds exactly the ranges of
    _fast_tables, bit by bit."""
    import numpy as np

    from refimpl.tokenizers import _fast_tables as T
    from refimpl.tokenizers import normalization as N

    flags = np.frombuffer(bytes(N._FAST_FLAGS), dtype=np.uint8)
    assert flags.shape == (0x110000,)
    for bit, ranges in ((N.F_REMOVED, T.REMOVED), (N.F_WHITESPACE, T.WHITESPACE), (N.F_CHINESE, T.CHINESE),
                        (N.F_STRIP_REMOVED, T.STRIP_REMOVED)):  # fmt: skip
        assert _runs(flags & bit != 0) == _merged(ranges), bit


if __name__ == "__main__":
    sys.path.insert(0, str(TABLES_FILE.parent.parent.parent))
    TABLES_FILE.write_text(render(derive_tables()), encoding="utf-8")
    print(f"wrote {TABLES_FILE}", file=sys.stderr)
