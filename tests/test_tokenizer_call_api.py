"""Issue 14: the rest of transformers' tokenizer call API, against transformers 4.57.6 run in the test.

Loading what transformers' save_pretrained wrote (fast and slow, every class), options that used to be dropped
(trim_offsets, truncation_side / padding_side), defaults (clean_up_tokenization_spaces), stride and overflowing
tokens (every strategy, side, single and pair, both flavours), is_split_into_words with word_ids(), batches of
(text, pair) tuples, add_prefix_space at call time, return_length, pad(), add_tokens / add_special_tokens,
save_pretrained both ways, decode options on every class. Expected values come from transformers."""

from __future__ import annotations

import io
import json
import logging

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from refimpl.errors import TokenizerError
from refimpl.tokenizers import (AutoTokenizer, BertGenerationTokenizer, BertTokenizer, BertTokenizerLegacy,
                                RobertaTokenizer)  # fmt: skip

from tokenizer_strategies import text

transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")
spm = pytest.importorskip("sentencepiece")
transformers.logging.set_verbosity_error()
logging.getLogger("refimpl.tokenizers").setLevel(logging.CRITICAL)
pytestmark = pytest.mark.parity
SETTINGS = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
BERT_SPECIALS = ("[CLS]", "[SEP]", "[PAD]", "[MASK]", "[UNK]")
ROBERTA_SPECIALS = ("<s>", "</s>", "<unk>", "<pad>", "<mask>")
CORPUS = ["The quick brown fox jumps over the lazy dog. It's 3.14 o'clock, isn't it?",
          "Ünïcödé text: naïve café, straße, ΟΔΟΣ, русский язык, 中文字符, 日本語のテキスト, 한국어 🙂👍🏽",
          "def f(x):\n    return x ** 2  # comment\n\t tabs and  double  spaces"] * 40  # fmt: skip


def plain(out):
    """A tokenizer output as plain lists (tuples for offsets), or "raised" when the call raises (a Rust panic
    included: it is a BaseException)."""
    if isinstance(out, BaseException):
        return "raised"

    def conv(k, v):
        if isinstance(v, np.ndarray):
            return v.tolist()
        if k == "offset_mapping":
            return [[tuple(o) for o in r] for r in v] if v and isinstance(v[0], list) else [tuple(o) for o in v]
        return v

    return {k: conv(k, v) for k, v in out.items()}


def call(tok, *args, **kwargs):
    try:
        return plain(tok(*args, **kwargs))
    except BaseException as e:  # noqa: BLE001 - pyo3's PanicException is a BaseException
        if isinstance(e, (KeyboardInterrupt, SystemExit)):
            raise
        return "raised"


@pytest.fixture(scope="module")
def bpe_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("roberta_api")
    trainer = tokenizers.ByteLevelBPETokenizer()
    trainer.train_from_iterator(CORPUS, vocab_size=400, min_frequency=2, special_tokens=list(ROBERTA_SPECIALS))
    trainer.save_model(str(d))
    (d / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "RobertaTokenizer", "model_max_length": 64}))
    return d


@pytest.fixture(scope="module")
def spm_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("bertgen_api")
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(CORPUS), model_writer=model, vocab_size=90, pad_id=3,
                                   character_coverage=1.0, minloglevel=2)  # fmt: skip
    (d / "spiece.model").write_bytes(model.getvalue())
    return d


@pytest.fixture(scope="module")
def bert_pairs(minilm_dir):
    return {"fast": (BertTokenizer.from_pretrained(minilm_dir), transformers.BertTokenizerFast.from_pretrained(minilm_dir)),
            "slow": (BertTokenizerLegacy.from_pretrained(minilm_dir), transformers.BertTokenizer.from_pretrained(minilm_dir))}


# ------------------------------------------------------------------------------ 1. loading what transformers wrote
REF_CLASSES = {"BertTokenizerFast": BertTokenizer, "BertTokenizer": BertTokenizerLegacy,
               "RobertaTokenizerFast": RobertaTokenizer, "RobertaTokenizer": RobertaTokenizer,
               "BertGenerationTokenizer": BertGenerationTokenizer}  # fmt: skip


def _source(name, minilm_dir, bpe_dir, spm_dir):
    return minilm_dir if name.startswith("Bert") and "Generation" not in name else bpe_dir if "Roberta" in name else spm_dir


@pytest.mark.parametrize("ref_name", list(REF_CLASSES))
@pytest.mark.parametrize("edit", ["untouched", "options"])
def test_load_what_transformers_saved(ref_name, edit, minilm_dir, bpe_dir, spm_dir, tmp_path):
    ref_cls = getattr(transformers, ref_name)
    kw = {} if edit == "untouched" else {"model_max_length": 40, "padding_side": "left", "truncation_side": "left"}
    ref = ref_cls.from_pretrained(_source(ref_name, minilm_dir, bpe_dir, spm_dir), **kw)
    if edit == "options":
        ref.add_special_tokens({"additional_special_tokens": ["<extra_1>", "[NEW]"]})
        ref.add_tokens(["newword"])
    ref.save_pretrained(tmp_path)
    ours = REF_CLASSES[ref_name].from_pretrained(tmp_path)
    auto = AutoTokenizer.from_pretrained(tmp_path)
    assert type(auto) is (BertTokenizer if ref_name == "BertTokenizer" else REF_CLASSES[ref_name])
    # compared with the transformers class refimpl's class follows (RobertaTokenizer: the Python one)
    again = (transformers.RobertaTokenizer if "Roberta" in ref_name else ref_cls).from_pretrained(tmp_path)
    for s in ["Hello [SEP] world <extra_1>x newwordy [NEW]", "naïve café </s> <mask> 中文", ""]:
        for args in ((s,), (s, "a pair [NEW]"), ([s, "b"],)):
            kwargs = dict(padding=True, truncation=True, max_length=12, return_special_tokens_mask=True)
            assert call(ours, *args, **kwargs) == call(again, *args, **kwargs), (ref_name, args)
        ids = again(s)["input_ids"]
        for skip in (False, True):
            assert ours.decode(ids, skip_special_tokens=skip) == again.decode(ids, skip_special_tokens=skip)
    assert ours.additional_special_tokens_ids == again.additional_special_tokens_ids
    assert len(ours) == len(again) and ours.model_max_length == again.model_max_length
    assert ours.clean_up_tokenization_spaces == again.clean_up_tokenization_spaces


def test_recorded_and_refused_loading_keys(minilm_dir):
    for cls in (BertTokenizer, BertTokenizerLegacy):
        tok = cls.from_pretrained(minilm_dir, verbose=False, stride=3, max_length=9, my_note="kept")
        assert tok.init_kwargs["my_note"] == "kept" and tok.init_kwargs["stride"] == 3
        assert tok("a b c d e f g h i j k")["input_ids"] == cls.from_pretrained(minilm_dir)("a b c d e f g h i j k")["input_ids"]
        with pytest.raises(TokenizerError, match=r"split_special_tokens=True is not supported"):
            cls.from_pretrained(minilm_dir, split_special_tokens=True)
        with pytest.raises(TokenizerError, match=r"'tokenize' conflicts with the method"):
            cls.from_pretrained(minilm_dir, tokenize=1)
        with pytest.raises(AttributeError):  # transformers refuses it too
            transformers.BertTokenizer.from_pretrained(minilm_dir, tokenize=1)


# ------------------------------------------------------------------------------ 2. options no longer dropped
@pytest.mark.parametrize("side", ["truncation_side", "padding_side"])
def test_sides_validated_at_load_and_call(minilm_dir, bpe_dir, side):
    with pytest.raises(ValueError):
        transformers.BertTokenizerFast.from_pretrained(minilm_dir, **{side: "unauthorized"})
    for load, d in ((BertTokenizer.from_pretrained, minilm_dir), (BertTokenizerLegacy.from_pretrained, minilm_dir),
                    (RobertaTokenizer.from_pretrained, bpe_dir)):  # fmt: skip
        with pytest.raises(TokenizerError, match=rf"{side}='unauthorized'.* must be 'left' or 'right'"):
            load(d, **{side: "unauthorized"})
        tok = load(d)
        setattr(tok, side, "middle")
        with pytest.raises(TokenizerError, match=rf"{side}='middle' \(the tokenizer's attribute\)"):
            tok("a b c", truncation=True, max_length=3)


@settings(SETTINGS, max_examples=150)
@given(s=text(ROBERTA_SPECIALS, 8), b=text(ROBERTA_SPECIALS, 4), prefix=st.booleans())
def test_roberta_trim_offsets_false(bpe_dir, s, b, prefix):
    """trim_offsets=False: RobertaTokenizerFast(trim_offsets=False)'s offsets, wherever its ids equal the Python
    class's (docs/tokenizers.md)."""
    kw = {"trim_offsets": False, "add_prefix_space": prefix}
    ours, fast = _roberta(bpe_dir, **kw), _roberta_fast(bpe_dir, **kw)
    slow = _roberta_slow(bpe_dir, add_prefix_space=prefix)
    for args in ((s,), (s, b)):
        expected = call(fast, *args, return_offsets_mapping=True)
        if expected != "raised" and expected["input_ids"] == slow(*args)["input_ids"]:
            assert call(ours, *args, return_offsets_mapping=True) == expected


_CACHE = {}


def _cached(key, make):
    if key not in _CACHE:
        _CACHE[key] = make()
    return _CACHE[key]


def _roberta(d, **kw):
    return _cached(("ours", str(d), tuple(sorted(kw.items()))), lambda: RobertaTokenizer.from_pretrained(d, **kw))


def _roberta_fast(d, **kw):
    return _cached(("fast", str(d), tuple(sorted(kw.items()))), lambda: transformers.RobertaTokenizerFast.from_pretrained(d, **kw))


def _roberta_slow(d, **kw):
    return _cached(("slow", str(d), tuple(sorted(kw.items()))), lambda: transformers.RobertaTokenizer.from_pretrained(d, **kw))


def test_trim_offsets_example(bpe_dir):
    ours = RobertaTokenizer.from_pretrained(bpe_dir, trim_offsets=False)
    ref = transformers.RobertaTokenizerFast.from_pretrained(bpe_dir, trim_offsets=False)
    assert call(ours, "hello hello", return_offsets_mapping=True) == call(ref, "hello hello", return_offsets_mapping=True)


# ------------------------------------------------------------------------------ 3. defaults
def test_clean_up_defaults_follow_transformers(minilm_dir, bpe_dir, spm_dir, tmp_path):
    (tmp_path / "vocab.txt").write_bytes((minilm_dir / "vocab.txt").read_bytes())
    vocab = tmp_path / "vocab.txt"
    cases = [(BertTokenizer(vocab), transformers.BertTokenizerFast(str(vocab))),
             (BertTokenizerLegacy(vocab), transformers.BertTokenizer(str(vocab))),
             (BertTokenizer.from_pretrained(tmp_path), transformers.BertTokenizerFast.from_pretrained(tmp_path)),
             (BertTokenizer.from_pretrained(minilm_dir), transformers.BertTokenizerFast.from_pretrained(minilm_dir)),
             (RobertaTokenizer.from_pretrained(bpe_dir), transformers.RobertaTokenizerFast.from_pretrained(bpe_dir)),
             (BertGenerationTokenizer.from_pretrained(spm_dir), transformers.BertGenerationTokenizer.from_pretrained(spm_dir))]  # fmt: skip
    for ours, ref in cases:
        assert ours.clean_up_tokenization_spaces == ref.clean_up_tokenization_spaces, type(ref).__name__
        ids = ref("I don't know , right ?")["input_ids"]
        assert ours.decode(ids) == ref.decode(ids)
    assert cases[0][0].decode(cases[0][1]("don't")["input_ids"], skip_special_tokens=True) == "don't"


# ------------------------------------------------------------------------------ 4. the call API
TRUNCATION = st.sampled_from([True, "longest_first", "only_first", "only_second"])


@settings(SETTINGS, max_examples=250)
@given(a=text(BERT_SPECIALS, 6), b=text(BERT_SPECIALS, 5), truncation=TRUNCATION, max_length=st.integers(0, 14),
       stride=st.integers(0, 4), side=st.sampled_from(["right", "left"]), pair=st.booleans(),
       add_special_tokens=st.booleans(), batch=st.booleans(), padding=st.sampled_from([False, True]))  # fmt: skip
def test_stride_and_overflow_bert(bert_pairs, a, b, truncation, max_length, stride, side, pair, add_special_tokens,
                                  batch, padding):
    """Every truncation strategy and side, single and pair, batched or not: fast rows + overflow_to_sample_mapping
    (Rust Encoding::truncate windows), slow overflowing_tokens / num_truncated_tokens."""
    for flavour, (ours, ref) in bert_pairs.items():
        ours.truncation_side = ref.truncation_side = side
        try:
            args = ([a, b[::-1]], [b, a]) if batch and pair else ([a, b],) if batch else (a, b) if pair else (a,)
            kw = dict(truncation=truncation, max_length=max_length, stride=stride, return_overflowing_tokens=True,
                      add_special_tokens=add_special_tokens, return_special_tokens_mask=True, padding=padding,
                      return_length=True)  # fmt: skip
            if flavour == "fast":
                kw["return_offsets_mapping"] = True
            assert call(ours, *args, **kw) == call(ref, *args, **kw), flavour
            kw.pop("return_overflowing_tokens")
            assert call(ours, *args, **kw) == call(ref, *args, **kw), flavour
        finally:
            ours.truncation_side = ref.truncation_side = "right"


@settings(SETTINGS, max_examples=100)
@given(a=text(ROBERTA_SPECIALS, 6), b=text(ROBERTA_SPECIALS, 5), truncation=TRUNCATION, max_length=st.integers(0, 14),
       stride=st.integers(0, 4), pair=st.booleans())  # fmt: skip
def test_stride_and_overflow_slow_classes(bpe_dir, spm_dir, a, b, truncation, max_length, stride, pair):
    for ours, ref in ((_roberta(bpe_dir), _roberta_slow(bpe_dir)), _bertgen(spm_dir)):
        args = (a, b) if pair else (a,)
        kw = dict(truncation=truncation, max_length=max_length, stride=stride, return_overflowing_tokens=True)
        assert call(ours, *args, **kw) == call(ref, *args, **kw)


def _bertgen(d):
    return _cached(("bertgen", str(d)), lambda: (BertGenerationTokenizer.from_pretrained(d),
                                                  transformers.BertGenerationTokenizer.from_pretrained(d)))


WORD_LISTS = st.lists(st.one_of(text(BERT_SPECIALS, 2), st.sampled_from(["hello", "wor ld!", "naïve", "[SEP]", ""])),
                      max_size=6)  # fmt: skip


@settings(SETTINGS, max_examples=200)
@given(words=WORD_LISTS, pair_words=st.one_of(st.none(), WORD_LISTS), batch=st.booleans(),
       max_length=st.sampled_from([None, 6]))  # fmt: skip
def test_is_split_into_words(bert_pairs, bpe_dir, words, pair_words, batch, max_length):
    kw = dict(is_split_into_words=True, truncation=max_length is not None, max_length=max_length, padding=batch)
    args = ([words, words[::-1]],) if batch else (words,)
    if pair_words is not None:
        args += ([pair_words, pair_words],) if batch else (pair_words,)
    for flavour, (ours, ref) in bert_pairs.items():
        extra = {"return_offsets_mapping": True} if flavour == "fast" else {}
        expected = call(ref, *args, **kw, **extra)
        assert call(ours, *args, **kw, **extra) == expected, flavour
        if flavour == "fast" and expected != "raised":
            enc, ref_enc = ours(*args, **kw), ref(*args, **kw)
            for i in range(2 if batch else 1):
                assert enc.word_ids(i) == ref_enc.word_ids(i)
                assert enc.sequence_ids(i) == ref_enc.sequence_ids(i)
    ours, ref = _roberta(bpe_dir), _roberta_slow(bpe_dir)
    assert call(ours, *args, **kw) == call(ref, *args, **kw)


@settings(SETTINGS, max_examples=150)
@given(s=text(BERT_SPECIALS, 8))
def test_word_ids_of_text(bert_pairs, s):
    ours, ref = bert_pairs["fast"]
    for args in ((s,), (s, s[::-1])):
        assert ours(*args).word_ids() == ref(*args).word_ids()
        assert ours(*args).sequence_ids() == ref(*args).sequence_ids()
    with pytest.raises(TokenizerError, match="word_ids\\(\\) is not available when using non-fast tokenizers"):
        bert_pairs["slow"][0](s).word_ids()


def test_batch_of_pair_tuples_and_return_length(bert_pairs, bpe_dir, spm_dir):
    batch = [("a b c", "d e"), ["hello world", "x"], "single text"]
    for ours, ref in [*bert_pairs.values(), (_roberta(bpe_dir), _roberta_slow(bpe_dir)), _bertgen(spm_dir)]:
        for kw in ({}, {"padding": True, "return_length": True}, {"return_length": True}):
            assert call(ours, batch, **kw) == call(ref, batch, **kw)
        assert call(ours, "a b", return_length=True, padding="max_length", max_length=6) == \
            call(ref, "a b", return_length=True, padding="max_length", max_length=6)  # fmt: skip
        assert call(ours, ["a", "b c d"], return_length=True, return_tensors="np", padding=True) == \
            call(ref, ["a", "b c d"], return_length=True, return_tensors="np", padding=True)  # fmt: skip
    with pytest.raises(TypeError, match="text\\[0\\] is a tuple of 3 items"):
        bert_pairs["fast"][0]([("a", "b", "c")])


@settings(SETTINGS, max_examples=100)
@given(s=text(ROBERTA_SPECIALS, 6), prefix=st.booleans())
def test_roberta_add_prefix_space_at_call(bpe_dir, s, prefix):
    ours, ref = _roberta(bpe_dir), _roberta_slow(bpe_dir)
    assert call(ours, s, add_prefix_space=prefix) == call(ref, s, add_prefix_space=prefix)
    assert ours.tokenize(s, add_prefix_space=prefix) == ref.tokenize(s, add_prefix_space=prefix)
    with pytest.raises(TokenizerError, match="unsupported tokenizer call options \\['add_prefix_space'\\]"):
        _bert_fast_only()("x", add_prefix_space=True)


def _bert_fast_only():
    from refimpl.registry import fetch

    return _cached(("bert",), lambda: BertTokenizer.from_pretrained(fetch("all-MiniLM-L6-v2")))


def test_convert_tokens_to_string_and_special_ids(bert_pairs, bpe_dir, spm_dir):
    tokens = ["un", "##aff", "##able", "don", "'", "t", "do", "not", "[SEP]", "##x", "."]
    for ours, ref in bert_pairs.values():
        assert ours.convert_tokens_to_string(tokens) == ref.convert_tokens_to_string(tokens)
        assert ours.additional_special_tokens_ids == ref.additional_special_tokens_ids == []
    for ours, ref in ((_roberta(bpe_dir), _roberta_slow(bpe_dir)), _bertgen(spm_dir)):
        toks = ref.tokenize("naïve café fox")
        assert ours.convert_tokens_to_string(toks) == ref.convert_tokens_to_string(toks)


@pytest.mark.parametrize("padding", [True, "longest", "max_length", False])
@pytest.mark.parametrize("side", ["left", "right"])
def test_pad(bert_pairs, bpe_dir, padding, side):
    for ours, ref in [*bert_pairs.values(), (_roberta(bpe_dir), _roberta_slow(bpe_dir))]:
        enc = [ref(s, return_special_tokens_mask=True) for s in ("a b c d", "e", "")]
        enc = [{k: v for k, v in e.items()} for e in enc]
        for inputs in (enc, enc[0], {k: [e[k] for e in enc] for k in enc[0]}):
            for kw in ({}, {"pad_to_multiple_of": 4}, {"return_attention_mask": False}, {"return_tensors": "np"}):
                if kw.get("return_tensors") and padding in (False, "max_length") and inputs is not enc[0]:
                    continue  # ragged rows (transformers: a list of arrays; refimpl: an error)
                kw = dict(padding=padding, max_length=7, padding_side=side, **kw)
                expected = plain(ref.pad(json.loads(json.dumps(inputs)), **kw))
                assert plain(ours.pad(json.loads(json.dumps(inputs)), **kw)) == expected, (type(ref).__name__, kw)


def _added(tok):
    tok.add_tokens(["newword", "HeLLo", "[new]", "café"])
    tok.add_special_tokens({"additional_special_tokens": ["<extra>", "[X2]"]})
    return tok


@settings(SETTINGS, max_examples=150)
@given(s=st.lists(st.one_of(text(BERT_SPECIALS, 3), st.sampled_from(["newword", "NEWWORD", "HeLLo", "hello", "[new]",
                  "[NEW]", "café", "<extra>", "x<extra>y", "[X2]", "newwordy"])), max_size=6).map(" ".join))  # fmt: skip
def test_added_tokens(minilm_dir, bpe_dir, spm_dir, s):
    pairs = _cached(("added", str(minilm_dir)), lambda: [
        (_added(BertTokenizer.from_pretrained(minilm_dir)), _added(transformers.BertTokenizerFast.from_pretrained(minilm_dir))),
        (_added(BertTokenizerLegacy.from_pretrained(minilm_dir)), _added(transformers.BertTokenizer.from_pretrained(minilm_dir))),
        (_added(RobertaTokenizer.from_pretrained(bpe_dir)), _added(transformers.RobertaTokenizer.from_pretrained(bpe_dir))),
        (_added(BertGenerationTokenizer.from_pretrained(spm_dir)), _added(transformers.BertGenerationTokenizer.from_pretrained(spm_dir)))])  # fmt: skip
    for ours, ref in pairs:
        name = type(ref).__name__
        assert len(ours) == len(ref), name
        assert ours.tokenize(s) == ref.tokenize(s), name
        assert call(ours, s) == call(ref, s), name
        ids = ref(s)["input_ids"]
        for skip in (False, True):
            assert ours.decode(ids, skip_special_tokens=skip) == ref.decode(ids, skip_special_tokens=skip), name
        assert ours.additional_special_tokens_ids == ref.additional_special_tokens_ids


def test_add_tokens_counts(minilm_dir):
    for ours, ref in ((BertTokenizer.from_pretrained(minilm_dir), transformers.BertTokenizerFast.from_pretrained(minilm_dir)),
                      (BertTokenizerLegacy.from_pretrained(minilm_dir), transformers.BertTokenizer.from_pretrained(minilm_dir))):  # fmt: skip
        for new in (["hello", "HeLLo", "newword", "[NEW]"], ["newword"], "another"):
            assert ours.add_tokens(new) == ref.add_tokens(new)
        assert ours.add_special_tokens({"additional_special_tokens": ["<e>"]}) == \
            ref.add_special_tokens({"additional_special_tokens": ["<e>"]})  # fmt: skip
        assert ours.get_added_vocab() == ref.get_added_vocab()


@pytest.mark.parametrize("which", ["bert_fast", "bert_slow", "roberta", "bertgen"])
def test_save_pretrained_both_ways(minilm_dir, bpe_dir, spm_dir, tmp_path, which):
    ours_cls, ref_cls, d = {"bert_fast": (BertTokenizer, transformers.BertTokenizerFast, minilm_dir),
                            "bert_slow": (BertTokenizerLegacy, transformers.BertTokenizer, minilm_dir),
                            "roberta": (RobertaTokenizer, transformers.RobertaTokenizer, bpe_dir),
                            "bertgen": (BertGenerationTokenizer, transformers.BertGenerationTokenizer, spm_dir)}[which]  # fmt: skip
    ours = _added(ours_cls.from_pretrained(d, model_max_length=33, padding_side="left"))
    ours.save_pretrained(tmp_path / "ours")
    theirs = ref_cls.from_pretrained(tmp_path / "ours")
    again = ours_cls.from_pretrained(tmp_path / "ours")
    s = "Hello newword <extra> HeLLo café [X2] x [new]"
    for tok in (theirs, again):
        assert call(tok, s, "pair", padding="max_length", max_length=24) == \
            call(ours, s, "pair", padding="max_length", max_length=24)  # fmt: skip
        assert tok.model_max_length == 33 and tok.padding_side == "left"
        assert tok.decode(ours(s)["input_ids"]) == ours.decode(ours(s)["input_ids"])
    theirs.save_pretrained(tmp_path / "theirs")
    back = ours_cls.from_pretrained(tmp_path / "theirs")
    assert call(back, s, "pair") == call(theirs, s, "pair")


@pytest.mark.parametrize("which", ["bert_fast", "bert_slow", "roberta", "bertgen"])
def test_decode_options_every_class(minilm_dir, bpe_dir, spm_dir, which):
    ours, ref = {"bert_fast": lambda: (BertTokenizer.from_pretrained(minilm_dir), transformers.BertTokenizerFast.from_pretrained(minilm_dir)),
                 "bert_slow": lambda: (BertTokenizerLegacy.from_pretrained(minilm_dir), transformers.BertTokenizer.from_pretrained(minilm_dir)),
                 "roberta": lambda: (_roberta(bpe_dir), _roberta_slow(bpe_dir)),
                 "bertgen": lambda: _bertgen(spm_dir)}[which]()  # fmt: skip
    batch = ref(["I don't know , right ?", "naïve café </s> [SEP] 中文 ."], padding=True)["input_ids"]
    for skip in (False, True):
        for clean in (None, False, True):
            assert ours.batch_decode(batch, skip_special_tokens=skip, clean_up_tokenization_spaces=clean) == \
                ref.batch_decode(batch, skip_special_tokens=skip, clean_up_tokenization_spaces=clean)  # fmt: skip
            assert ours.batch_decode(np.array(batch), skip_special_tokens=skip) == ref.batch_decode(batch, skip_special_tokens=skip)
    with pytest.raises(TokenizerError, match="unsupported decode options"):
        ours.decode(batch[0], no_such_option=True)
