"""BertTokenizer vs transformers' BertTokenizerFast, BertTokenizerLegacy vs transformers' BertTokenizer
(4.57.6), on generated text covering the whole of Unicode; vocabulary: the real all-MiniLM-L6-v2 one,
uncased (as shipped) and cased (do_lower_case=False). Every id, type id, mask, offset and decoded string
must be equal; pairs under every truncation strategy; batches under every padding mode."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from refimpl.errors import TokenizerError
from refimpl.registry import fetch
from refimpl.tokenizers import BertTokenizer, BertTokenizerLegacy
from refimpl.tokenizers.wordpiece import WordPiece, wordpiece

from tokenizer_strategies import text

transformers = pytest.importorskip("transformers")
transformers.logging.set_verbosity_error()
logging.getLogger("refimpl.tokenizers").setLevel(logging.CRITICAL)

pytestmark = pytest.mark.parity
SPECIALS = ("[CLS]", "[SEP]", "[PAD]", "[MASK]", "[UNK]")
SETTINGS = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
CASES = {"uncased": {}, "cased": {"do_lower_case": False}}


@pytest.fixture(scope="module", params=list(CASES))
def pair_fast(request):
    d = fetch("all-MiniLM-L6-v2")
    kw = CASES[request.param]
    return BertTokenizer.from_pretrained(d, **kw), transformers.BertTokenizerFast.from_pretrained(d, **kw)


@pytest.fixture(scope="module", params=list(CASES))
def pair_slow(request):
    d = fetch("all-MiniLM-L6-v2")
    kw = CASES[request.param]
    return BertTokenizerLegacy.from_pretrained(d, **kw), transformers.BertTokenizer.from_pretrained(d, **kw)


def _call(tok, *args, **kwargs):
    """The tokenizer's output as plain lists, or the exception's class name when it raises."""
    try:
        out = tok(*args, **kwargs)
    except Exception as e:  # noqa: BLE001 - compared across implementations
        return "raised"
    return {k: (v.tolist() if isinstance(v, np.ndarray) else [list(map(tuple, r)) for r in v]
                if k == "offset_mapping" and v and isinstance(v[0], list) else
                [tuple(o) for o in v] if k == "offset_mapping" else v)
            for k, v in out.items()}  # fmt: skip


def _check_decode(ours, ref, ids):
    for skip in (False, True):
        for clean in (None, True, False):
            assert ours.decode(ids, skip_special_tokens=skip, clean_up_tokenization_spaces=clean) == ref.decode(
                ids, skip_special_tokens=skip, clean_up_tokenization_spaces=clean
            ), (ids, skip, clean)


@settings(SETTINGS, max_examples=1000)
@given(s=text(SPECIALS))
def test_fast_single_text(pair_fast, s):
    ours, ref = pair_fast
    assert ours.tokenize(s) == ref.tokenize(s)
    kw = dict(return_offsets_mapping=True, return_special_tokens_mask=True)
    expected = _call(ref, s, **kw)
    assert _call(ours, s, **kw) == expected
    assert ours(s)["input_ids"] == expected["input_ids"]  # the encode path without offsets (word -> ids cache)
    assert _call(ours, s, add_special_tokens=False, **kw) == _call(ref, s, add_special_tokens=False, **kw)
    _check_decode(ours, ref, expected["input_ids"])


@settings(SETTINGS, max_examples=1000)
@given(s=text(SPECIALS))
def test_legacy_single_text(pair_slow, s):
    ours, ref = pair_slow
    assert ours.tokenize(s) == ref.tokenize(s)
    expected = _call(ref, s, return_special_tokens_mask=True)
    assert _call(ours, s, return_special_tokens_mask=True) == expected
    _check_decode(ours, ref, expected["input_ids"])


@SETTINGS
@given(ids=st.lists(st.one_of(st.integers(0, 30521), st.sampled_from([0, 100, 101, 102, 103, 1005, 1012, 1055]),
                              st.integers(30522, 40000)), max_size=30))  # fmt: skip
def test_decode_arbitrary_ids(pair_fast, pair_slow, ids):
    """Ids in the vocabulary decode as transformers does; an id outside it is a TokenizerError (transformers'
    fast tokenizer drops it silently, the slow one gives [UNK]: docs/tokenizers.md)."""
    for ours, ref in (pair_fast, pair_slow):
        if all(i < len(ours) for i in ids):
            _check_decode(ours, ref, ids)
        else:
            with pytest.raises(TokenizerError, match=r"cannot decode token id \d+: outside the vocabulary"):
                ours.decode(ids)
        assert ours.convert_ids_to_tokens(ids) == ref.convert_ids_to_tokens(ids)


TRUNCATION = st.sampled_from([True, "longest_first", "only_first", "only_second"])


@settings(SETTINGS, max_examples=500)
@given(a=text(SPECIALS, 6), b=text(SPECIALS, 6), truncation=TRUNCATION, max_length=st.integers(0, 30),
       add_special_tokens=st.booleans(), side=st.sampled_from(["right", "left"]))  # fmt: skip
def test_pairs_truncation(pair_fast, pair_slow, a, b, truncation, max_length, add_special_tokens, side):
    for ours, ref in (pair_fast, pair_slow):
        ours.truncation_side = ref.truncation_side = side
        kw = dict(truncation=truncation, max_length=max_length, add_special_tokens=add_special_tokens,
                  return_special_tokens_mask=True)  # fmt: skip
        if ours.supports_offsets:
            kw["return_offsets_mapping"] = True
        assert _call(ours, a, b, **kw) == _call(ref, a, b, **kw)
        assert _call(ours, a, **kw) == _call(ref, a, **kw)
        kw.pop("return_offsets_mapping", None)
        assert _call(ours, a, b, **kw) == _call(ref, a, b, **kw)
        ours.truncation_side = ref.truncation_side = "right"


@settings(SETTINGS, max_examples=300)
@given(batch=st.lists(text(SPECIALS, 5), min_size=1, max_size=4), pairs=st.booleans(),
       padding=st.sampled_from([True, "longest", "max_length", False]), multiple=st.sampled_from([None, 4, 8]),
       side=st.sampled_from(["right", "left"]), truncation=st.sampled_from([None, True, "only_first"]),
       max_length=st.sampled_from([None, 8, 16, 24]), tensors=st.sampled_from([None, "np"]))  # fmt: skip
def test_batches_padding(pair_fast, pair_slow, batch, pairs, padding, multiple, side, truncation, max_length, tensors):
    second = [s[::-1] for s in batch] if pairs else None
    for ours, ref in (pair_fast, pair_slow):
        kw = dict(padding=padding, pad_to_multiple_of=multiple, padding_side=side, truncation=truncation,
                  max_length=max_length, return_tensors=tensors, return_special_tokens_mask=True)  # fmt: skip
        if ours.supports_offsets:
            kw["return_offsets_mapping"] = True
        plain = _call(ours, batch, second, **{**kw, "return_tensors": None})
        if tensors == "np" and plain != "raised" and len({len(x) for x in plain["input_ids"]}) > 1:
            # ragged: transformers returns a list of arrays, refimpl raises (docs/tokenizers.md)
            with pytest.raises(ValueError, match="Unable to create tensor"):
                ours(batch, second, **kw)
            kw["return_tensors"] = None
        assert _call(ours, batch, second, **kw) == _call(ref, batch, second, **kw)
        got = ours.batch_decode(ours(batch, second, padding=True)["input_ids"], skip_special_tokens=True)
        assert got == ref.batch_decode(ref(batch, second, padding=True)["input_ids"], skip_special_tokens=True)


def test_worked_examples():
    d = fetch("all-MiniLM-L6-v2")
    for cls in (BertTokenizer, BertTokenizerLegacy):
        tok = cls.from_pretrained(d)
        assert tok.tokenize("unaffable [SEP] Héllo!") == ["una", "##ffa", "##ble", "[SEP]", "hello", "!"]
        assert tok("a b", "c")["token_type_ids"] == [0, 0, 0, 0, 1, 1]
    tok = BertTokenizer.from_pretrained(d)
    assert tok("Héllo world", return_offsets_mapping=True)["offset_mapping"] == [(0, 0), (0, 5), (6, 11), (0, 0)]


@pytest.mark.parametrize("text_", ["\U0001000c", "\u0378", "\u1c89", "a\u0898", "e\u0301", "A\u0301", "a\U0002b820b",
                                   "\U0001d16d\U0001d165", "\U0001e944\u0316", "x\u200by", "\U000e0001", "a\ufffdb",
                                   "\U0010fffd", "ΟΔΟΣ İ"])  # fmt: skip
def test_documented_differences(text_):
    """The inputs of docs/tokenizers.md's difference table: each flavour matches its own reference."""
    d = fetch("all-MiniLM-L6-v2")
    for kw in CASES.values():
        assert BertTokenizer.from_pretrained(d, **kw)(text_) == transformers.BertTokenizerFast.from_pretrained(
            d, **kw
        )(text_)
        assert BertTokenizerLegacy.from_pretrained(d, **kw)(text_) == transformers.BertTokenizer.from_pretrained(
            d, **kw
        )(text_)


def test_decode_difference_example():
    d = fetch("all-MiniLM-L6-v2")
    tokens = ["##a", "b", "##c", "'", "s"]
    for ours, ref, expected in ((BertTokenizer, transformers.BertTokenizerFast, "##a bc ' s"),
                                (BertTokenizerLegacy, transformers.BertTokenizer, "##a bc's")):  # fmt: skip
        o, r = ours.from_pretrained(d), ref.from_pretrained(d)
        assert o.decode(o.convert_tokens_to_ids(tokens)) == r.decode(r.convert_tokens_to_ids(tokens)) == expected


def test_never_split_and_no_basic_tokenize():
    d = fetch("all-MiniLM-L6-v2")
    for kw in ({"never_split": ["Hello!World", "[FOO]"]}, {"do_basic_tokenize": False}, {"strip_accents": False},
               {"strip_accents": True, "do_lower_case": False}, {"tokenize_chinese_chars": False}):  # fmt: skip
        ours, ref = BertTokenizerLegacy.from_pretrained(d, **kw), transformers.BertTokenizer.from_pretrained(d, **kw)
        for s in ["Hello!World [FOO] x", "Héllo wörld 中文 naïve", "ÅB [CLS]x"]:
            assert ours.tokenize(s) == ref.tokenize(s), (kw, s)
            assert ours(s, "pair")["input_ids"] == ref(s, "pair")["input_ids"]
        fast_kw = {k: v for k, v in kw.items() if k not in ("never_split", "do_basic_tokenize")}
        ours, ref = BertTokenizer.from_pretrained(d, **fast_kw), transformers.BertTokenizerFast.from_pretrained(
            d, **fast_kw
        )
        for s in ["Hello!World [FOO] x", "Héllo wörld 中文 naïve", "ÅB [CLS]x"]:
            assert ours(s, return_offsets_mapping=True) == ref(s, return_offsets_mapping=True), (kw, s)


@pytest.mark.parametrize("text_", ["È\U0001d16d", "ÈÈ\U0001d16d\u0316 b", "x\u0301\u0f73", "Å\u0316\U0001d16d",
                                   "a\u0344\u0316 中\u0301", "È\U00011c3f"])  # fmt: skip
def test_offsets_through_mark_reordering(text_):
    """NFD reorders marks that strip_accents keeps (Mc, or Mn unknown to the Rust crate): their offsets follow
    the Rust bookkeeping (found by hypothesis: "È𑰿" gave (0, 1) instead of (0, 2) with positional alignment)."""
    d = fetch("all-MiniLM-L6-v2")
    for kw in ({}, {"do_lower_case": False, "strip_accents": True}):
        ours, ref = BertTokenizer.from_pretrained(d, **kw), transformers.BertTokenizerFast.from_pretrained(d, **kw)
        assert _call(ours, text_, return_offsets_mapping=True) == _call(ref, text_, return_offsets_mapping=True)


@pytest.fixture(scope="module")
def wordpiece_splits():
    """(vocab, longest entry, {(max_chars, prefix): WordPiece}) on the real vocabulary."""
    vocab = BertTokenizer.from_pretrained(fetch("all-MiniLM-L6-v2")).vocab
    return vocab, max(map(len, vocab)), {(m, p): WordPiece(vocab, "[UNK]", m, p) for m in (5, 100) for p in ("##", "")}


@settings(SETTINGS, max_examples=1000)
@given(word=st.one_of(text(max_fragments=3), st.text(st.sampled_from("unafbleç0123456789ρηγ#"), max_size=14),
                      st.lists(st.sampled_from(["un", "##aff", "aff", "able", "##", "#", "ing", "x", "é"]), max_size=6)
                      .map("".join)), max_chars=st.sampled_from([5, 100]))  # fmt: skip
def test_wordpiece_class_equals_function(wordpiece_splits, word, max_chars):
    """WordPiece (the tokenizers' split, with precomputed bounds) == wordpiece (the reference function)."""
    vocab, longest, splits = wordpiece_splits
    for prefix in ("##", ""):
        assert splits[max_chars, prefix](word) == wordpiece(word, vocab, "[UNK]", max_chars, prefix, longest)


def test_cjk_characters_are_still_normalized_after_padding(pair_fast):
    """Every code point the normalizer pads as CJK still goes through accent stripping (NFD) and lowercasing,
    as in the Rust normalizer: U+F981 (a compatibility ideograph) is NFD-decomposed to 女 when uncased.
    Regression: the padding step used to return early, giving [UNK]. Checked for every CJK code point."""
    from refimpl.tokenizers.normalization import _FAST_FLAGS, F_CHINESE

    ours, ref = pair_fast
    cjk = [cp for cp in range(len(_FAST_FLAGS)) if _FAST_FLAGS[cp] & F_CHINESE]
    assert len(cjk) > 80_000 and 0xF981 in cjk
    text_ = " ".join(map(chr, cjk))
    assert ours(text_, return_offsets_mapping=True)["offset_mapping"] == [
        tuple(o) for o in ref(text_, return_offsets_mapping=True)["offset_mapping"]]
    assert ours(text_)["input_ids"] == ref(text_)["input_ids"]
    assert ours.tokenize("\uf981") == ref.tokenize("\uf981")
