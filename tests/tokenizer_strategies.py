"""Hypothesis strategies for tokenizer parity tests: text drawn from the whole of Unicode.

A text is a concatenation of fragments, each drawn from one of: any scalar value (every script, symbols,
unassigned and private-use code points, controls, format chars), combining-mark clusters, whitespace of
every kind and runs of it, emoji ZWJ/flag/skin-tone sequences, ASCII words and punctuation, very long
words, special-token strings, CJK. Lone surrogates are excluded (str.encode cannot carry them into the Rust library).
"""

from __future__ import annotations

from hypothesis import strategies as st

ANY_CHAR = st.characters(exclude_categories=("Cs",))
COMBINING = st.characters(categories=("Mn", "Mc", "Me"))
WHITESPACE = st.sampled_from(
    list("\t\n\x0b\x0c\r \x1c\x1d\x1e\x1f\x85\xa0\u1680\u180e\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007"
         "\u2008\u2009\u200a\u200b\u2028\u2029\u202f\u205f\u3000\ufeff")
)  # fmt: skip
CONTROL_FORMAT = st.characters(categories=("Cc", "Cf", "Co", "Cn"))
EMOJI = st.sampled_from(
    ["\U0001F600", "\U0001F44D\U0001F3FD", "\U0001F468\u200D\U0001F469\u200D\U0001F467", "\U0001F1EB\U0001F1F7",
     "\u2764\ufe0f", "\U0001F3F3\ufe0f\u200d\U0001F308", "#\ufe0f\u20e3", "\U0001FAE0"]
)  # fmt: skip
WORDS = st.sampled_from(
    ["the", "unaffable", "Héllo", "naïve", "ÅNGSTRÖM", "ΟΔΟΣ", "İstanbul", "straße", "don't", "it's", "U.S.A.",
     "3.14", "e-mail", "中文字", "日本語", "한국어", "русский", "עברית", "العربية", "हिन्दी", "ไทย", "ǅ", "ﬁ",
     "Ⅻ", "①", "x²", "...", "--", "$100", "@user", "#tag", "<b>", "a/b"]
)  # fmt: skip


def text(special_tokens=(), max_fragments=12):
    fragments = [
        st.text(ANY_CHAR, max_size=6),
        st.tuples(ST_LETTER, st.lists(COMBINING, max_size=3)).map(lambda t: t[0] + "".join(t[1])),
        WHITESPACE,
        st.text(st.sampled_from(" \t\n\r\xa0\u3000"), min_size=2, max_size=5),  # whitespace runs
        CONTROL_FORMAT,
        EMOJI,
        WORDS,
        WORDS.map(lambda w: " " + w),
        st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=8),
        st.integers(95, 130).map(lambda n: "ab" * (n // 2) + "c" * (n % 2)),  # around max_input_chars_per_word
        st.text(st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF), max_size=3),
    ]
    if special_tokens:
        fragments.append(st.sampled_from(list(special_tokens)))
        fragments.append(st.sampled_from(list(special_tokens)).map(lambda s: s.lower()))
    return st.lists(st.one_of(fragments), max_size=max_fragments).map("".join)


ST_LETTER = st.characters(categories=("Lu", "Ll", "Lo"))
