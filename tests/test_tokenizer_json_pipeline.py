"""Issue 14: a tokenizer.json is read component by component; BertTokenizer against BertTokenizerFast loading
the same file (built in the test with the `tokenizers` library from MiniLM's vocabulary, or a Unigram vocabulary made here).
Supported: the normalizers and pre-tokenizers of docs/tokenizers.md (Split and Metaspace included), WordPiece and
Unigram models, TemplateProcessing / BertProcessing / none, the WordPiece and Metaspace decoders; anything else is
refused by name. transformers' precedence: the BertTokenizerFast options
(tokenizer_config.json, keywords, else its defaults) replace the file's lowercase / strip_accents."""

from __future__ import annotations

import json
import logging

import pytest
from hypothesis import HealthCheck, given, settings

from refimpl.errors import TokenizerError
from refimpl.registry import fetch
from refimpl.tokenizers import AutoTokenizer, BertTokenizer

from tokenizer_strategies import text

transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")
from tokenizers import decoders, models, normalizers, pre_tokenizers, processors  # noqa: E402

transformers.logging.set_verbosity_error()
logging.getLogger("refimpl.tokenizers").setLevel(logging.CRITICAL)
pytestmark = pytest.mark.parity
SETTINGS = settings(deadline=None, max_examples=120, suppress_health_check=[HealthCheck.too_slow,
                                                                            HealthCheck.function_scoped_fixture])
SPECIALS = ("[CLS]", "[SEP]", "[PAD]", "[MASK]", "[UNK]")


def _variant(minilm_dir, tmp_path, name, edit, config=None):
    """MiniLM's tokenizer.json with one component replaced (and optionally a tokenizer_config.json)."""
    tok = tokenizers.Tokenizer.from_file(str(minilm_dir / "tokenizer.json"))
    edit(tok)
    d = tmp_path / name
    d.mkdir()
    tok.save(str(d / "tokenizer.json"))
    (d / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "BertTokenizer", **(config or {})}))
    return d


SUPPORTED = {
    "whitespace": lambda t: setattr(t, "pre_tokenizer", pre_tokenizers.Whitespace()),
    "whitespace_split": lambda t: setattr(t, "pre_tokenizer", pre_tokenizers.WhitespaceSplit()),
    "bert_processing": lambda t: setattr(t, "post_processor", processors.BertProcessing(("[SEP]", 102), ("[CLS]", 101))),
    "template": lambda t: setattr(t, "post_processor", processors.TemplateProcessing(
        single="[CLS] $A [SEP] [MASK]", pair="[CLS] $A:1 [SEP]:1 $B:0 [SEP]:0",
        special_tokens=[("[CLS]", 101), ("[SEP]", 102), ("[MASK]", 103)])),
    "no_post_processor": lambda t: setattr(t, "post_processor", None),
    "cased_file": lambda t: setattr(t, "normalizer", normalizers.BertNormalizer(lowercase=False)),
    "no_cleanup_decoder": lambda t: setattr(t, "decoder", decoders.WordPiece(cleanup=False)),
}


@pytest.fixture(scope="module")
def variants(minilm_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("tokjson")
    out = {}
    for name, edit in SUPPORTED.items():
        d = _variant(minilm_dir, root, name, edit)
        out[name] = (BertTokenizer.from_pretrained(d), transformers.BertTokenizerFast.from_pretrained(d))
    d = _variant(minilm_dir, root, "cased_by_config", SUPPORTED["cased_file"], {"do_lower_case": False,
                                                                              "strip_accents": True})
    out["cased_by_config"] = (BertTokenizer.from_pretrained(d), transformers.BertTokenizerFast.from_pretrained(d))
    return out


def test_whitespace_is_not_berts(variants):
    ours, ref = variants["whitespace"]
    # MiniLM's vocabulary has no "##!!" (the vocabulary did); BERT's pre-tokenizer gives 7 tokens
    assert ours.tokenize("...?!!!") == ref.tokenize("...?!!!") == ["...", "##?", "##!", "##!", "##!"]
    assert BertTokenizer.from_pretrained(fetch("all-MiniLM-L6-v2")).tokenize("...?!!!") == list("...?!!!")


@SETTINGS
@given(s=text(SPECIALS, 8), b=text(SPECIALS, 4))
def test_each_supported_component(variants, s, b):
    for name, (ours, ref) in variants.items():
        if name.startswith("whitespace") and any(ord(c) > 0x2FF for c in s + b):
            continue  # Whitespace's \w: onig's Unicode tables vs the regex module's; ASCII/Latin checked here
        assert ours.tokenize(s) == ref.tokenize(s), name
        for args in ((s,), (s, b)):
            kw = dict(return_offsets_mapping=True, return_special_tokens_mask=True)
            assert dict(ours(*args, **kw)) == {k: v for k, v in ref(*args, **kw).items()}, name
            assert ours(*args).word_ids() == ref(*args).word_ids(), name
        ids = ref(s, b)["input_ids"]
        assert ours.decode(ids) == ref.decode(ids), name


@pytest.mark.parametrize("name", ["whitespace", "template", "no_post_processor"])
def test_save_keeps_the_pipeline(variants, tmp_path, name):
    ours, ref = variants[name]
    ours.save_pretrained(tmp_path)
    back, again = transformers.BertTokenizerFast.from_pretrained(tmp_path), BertTokenizer.from_pretrained(tmp_path)
    for s in ["...?!!! a", "Héllo, WORLD [SEP] x"]:
        assert back(s, "b")["input_ids"] == again(s, "b")["input_ids"] == ref(s, "b")["input_ids"]


UNSUPPORTED = {
    "Prepend": ("normalizer", lambda t: setattr(t, "normalizer", normalizers.Sequence([normalizers.NFD(), normalizers.Prepend("x")]))),
    "CharDelimiterSplit": ("pre_tokenizer", lambda t: setattr(t, "pre_tokenizer", pre_tokenizers.Sequence([pre_tokenizers.Digits(), pre_tokenizers.CharDelimiterSplit("a")]))),
    "UnicodeScripts": ("pre_tokenizer", lambda t: setattr(t, "pre_tokenizer", pre_tokenizers.UnicodeScripts())),
    "ByteLevel": ("pre_tokenizer", lambda t: setattr(t, "pre_tokenizer", pre_tokenizers.ByteLevel())),
    "RobertaProcessing": ("post_processor", lambda t: setattr(t, "post_processor", processors.RobertaProcessing(("[SEP]", 102), ("[CLS]", 101)))),
    "BPE": ("decoder", lambda t: setattr(t, "decoder", decoders.BPEDecoder())),
}  # fmt: skip


@pytest.mark.parametrize("kind", list(UNSUPPORTED))
def test_unsupported_component_refused_by_name(minilm_dir, tmp_path, kind):
    section, edit = UNSUPPORTED[kind]
    d = _variant(minilm_dir, tmp_path, kind, edit)
    with pytest.raises(TokenizerError, match=rf"{section} '{kind}\w*' is not supported by refimpl's BertTokenizer"):
        AutoTokenizer.from_pretrained(d)


def test_other_models_refused(minilm_dir, tmp_path):
    tok = tokenizers.Tokenizer(models.WordLevel({"[UNK]": 0, "a": 1}, unk_token="[UNK]"))
    d = tmp_path / "wordlevel"
    d.mkdir()
    tok.save(str(d / "tokenizer.json"))
    with pytest.raises(TokenizerError, match="does not hold a WordPiece model \\(model.type='WordLevel'\\)"):
        BertTokenizer.from_pretrained(d)


def test_precedence_of_config_over_the_files_normalizer(variants):
    """A file whose BertNormalizer does not lowercase still lowercases without a tokenizer_config saying so
    (BertTokenizerFast's default do_lower_case=True replaces it); a config's do_lower_case=False wins."""
    for name in ("cased_file", "cased_by_config"):
        ours, ref = variants[name]
        for s in ["Héllo WORLD", "ÅNGSTRÖM naïve"]:
            assert ours(s, return_offsets_mapping=True) == dict(ref(s, return_offsets_mapping=True)), name
    assert variants["cased_file"][0].tokenize("HELLO") == ["hello"]
    assert variants["cased_by_config"][0].tokenize("HELLO") == variants["cased_by_config"][1].tokenize("HELLO") == ["[UNK]"]


# issue 14, normalizers and pre-tokenizers beyond BERT's: each variant against BertTokenizerFast on the same file
N, P = normalizers, pre_tokenizers
MORE = {
    "lowercase": lambda t: setattr(t, "normalizer", N.Lowercase()),
    "nfd_strip_lower": lambda t: setattr(t, "normalizer", N.Sequence([N.NFD(), N.StripAccents(), N.Lowercase()])),
    "nfc": lambda t: setattr(t, "normalizer", N.NFC()),
    "nfkc_strip": lambda t: setattr(t, "normalizer", N.Sequence([N.NFKC(), N.Strip()])),
    "nfkd_replace": lambda t: setattr(t, "normalizer", N.Sequence([N.NFKD(), N.Replace("a", "ei"), N.Replace("  ", "")])),
    "strip_left": lambda t: setattr(t, "normalizer", N.Strip(left=True, right=False)),
    "bert_in_sequence": lambda t: setattr(t, "normalizer", N.Sequence([N.Replace("x", "y"), N.BertNormalizer(lowercase=False)])),
    "punctuation_digits": lambda t: setattr(t, "pre_tokenizer", P.Sequence([P.WhitespaceSplit(), P.Punctuation(), P.Digits(individual_digits=True)])),
    "digits_contiguous": lambda t: setattr(t, "pre_tokenizer", P.Sequence([P.BertPreTokenizer(), P.Digits()])),
    "punctuation_alone": lambda t: setattr(t, "pre_tokenizer", P.Punctuation()),
}  # fmt: skip
# Latin text, combining marks, compatibility characters (ﬁ ² ① Ⅻ), digits, punctuation, whitespace: where Python's
# unicodedata and the Rust crates agree
from hypothesis import strategies as st  # noqa: E402

LATIN = st.text(st.characters(max_codepoint=0x2FF, exclude_categories=("Cs",)), max_size=6)
MORE_TEXT = st.lists(st.one_of(LATIN, st.sampled_from(list(SPECIALS) + ["e\u0301", "\u0301", "ﬁ", "x²", "①", "Ⅻ", "  ",
                                                                        " 123", "a.b,c!", "Héllo", "naïve"])),
                     max_size=8).map("".join)  # fmt: skip


@pytest.fixture(scope="module")
def more_variants(minilm_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("tokjson_more")
    return {name: (BertTokenizer.from_pretrained(d := _variant(minilm_dir, root, name, edit)),
                   transformers.BertTokenizerFast.from_pretrained(d)) for name, edit in MORE.items()}


@settings(SETTINGS, max_examples=60)
@given(s=MORE_TEXT, b=MORE_TEXT)
def test_more_normalizers_and_pre_tokenizers(more_variants, s, b):
    kw = dict(return_offsets_mapping=True, return_special_tokens_mask=True)
    for name, (ours, ref) in more_variants.items():
        assert ours.tokenize(s) == ref.tokenize(s), name
        for args in ((s,), (s, b)):
            assert dict(ours(*args, **kw)) == dict(ref(*args, **kw)), name
            assert ours(*args).word_ids() == ref(*args).word_ids(), name
        ids = ref(s, b)["input_ids"]
        assert ours.decode(ids) == ref.decode(ids), name


def test_refused_options_named(minilm_dir, tmp_path):
    d = _variant(minilm_dir, tmp_path, "regex_replace", lambda t: setattr(t, "normalizer", N.Replace(tokenizers.Regex("a+"), "b")))
    with pytest.raises(TokenizerError, match="normalizer Replace with pattern .*Regex.* is not supported"):
        BertTokenizer.from_pretrained(d)
    d = _variant(minilm_dir, tmp_path, "punct_merged", lambda t: setattr(t, "pre_tokenizer", P.Punctuation("merged_with_previous")))
    with pytest.raises(TokenizerError, match="Punctuation with behavior='MergedWithPrevious' is not supported"):
        BertTokenizer.from_pretrained(d)


# issue 14: Split and Metaspace pre-tokenizers, the Metaspace decoder
def _with_metaspace_vocab(t):
    """MiniLM's WordPiece vocabulary plus a few "▁" pieces, so that Metaspace words are not all [UNK]."""
    vocab = t.get_vocab()
    extra = ["▁", "▁a", "▁the", "▁hello", "▁1", "▁é", "▁x", "▁,"]
    vocab.update({w: len(vocab) + i for i, w in enumerate(w for w in extra if w not in vocab)})
    t.model = models.WordPiece(vocab, unk_token="[UNK]")


def _meta(**kw):
    def edit(t):
        _with_metaspace_vocab(t)
        t.pre_tokenizer = P.Metaspace(**kw)
        t.decoder = decoders.Metaspace(**{k: v for k, v in kw.items() if k != "split"})
    return edit


SPLITS = {
    "split_removed": lambda t: setattr(t, "pre_tokenizer", P.Split(" ", "removed")),
    "split_isolated_regex": lambda t: setattr(t, "pre_tokenizer", P.Split(tokenizers.Regex(r"\d+|[,.!]"), "isolated")),
    "split_prev": lambda t: setattr(t, "pre_tokenizer", P.Sequence([P.WhitespaceSplit(), P.Split(tokenizers.Regex("[,.!]+"), "merged_with_previous")])),
    "split_next": lambda t: setattr(t, "pre_tokenizer", P.Split("e", "merged_with_next")),
    "split_contiguous": lambda t: setattr(t, "pre_tokenizer", P.Split(tokenizers.Regex("[ .]"), "contiguous")),
    "split_invert": lambda t: setattr(t, "pre_tokenizer", P.Split(tokenizers.Regex("[a-z]+"), "isolated", invert=True)),
    "split_invert_removed": lambda t: setattr(t, "pre_tokenizer", P.Split(tokenizers.Regex(r"[a-zA-Z0-9]+"), "removed", invert=True)),
    "metaspace": _meta(),
    "metaspace_first": _meta(prepend_scheme="first"),
    "metaspace_never": _meta(prepend_scheme="never"),
    "metaspace_nosplit": _meta(split=False),
    "metaspace_in_sequence": lambda t: (_meta(prepend_scheme="first")(t), setattr(
        t, "pre_tokenizer", P.Sequence([P.Digits(), P.Metaspace(prepend_scheme="first"), P.Punctuation()]))),
}  # fmt: skip
SPLIT_TEXT = st.lists(st.one_of(LATIN, st.sampled_from(list(SPECIALS) + [" ", "  ", "a", "the", "hello", " 123", "a.b,c!",
                                                                        "Héllo", "e e", "▁", "x,"])),
                      max_size=8).map("".join)  # fmt: skip


@pytest.fixture(scope="module")
def split_variants(minilm_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("tokjson_split")
    return {name: (BertTokenizer.from_pretrained(d := _variant(minilm_dir, root, name, edit)),
                   transformers.BertTokenizerFast.from_pretrained(d)) for name, edit in SPLITS.items()}


def test_metaspace_examples(split_variants):
    ours, ref = split_variants["metaspace"]
    for s in ["hello  the a", " a", "x [SEP] a"]:
        assert ours.tokenize(s) == ref.tokenize(s)
        assert ours(s, return_offsets_mapping=True) == dict(ref(s, return_offsets_mapping=True))
    assert ours.tokenize("hello the") == ["▁hello", "▁the"]


@settings(SETTINGS, max_examples=60)
@given(s=SPLIT_TEXT, b=SPLIT_TEXT)
def test_split_and_metaspace(split_variants, s, b):
    kw = dict(return_offsets_mapping=True, return_special_tokens_mask=True)
    for name, (ours, ref) in split_variants.items():
        assert ours.tokenize(s) == ref.tokenize(s), name
        for args in ((s,), (s, b)):
            assert dict(ours(*args, **kw)) == dict(ref(*args, **kw)), name
            assert ours(*args).word_ids() == ref(*args).word_ids(), name
        ids = ref(s, b)["input_ids"]
        assert ours(s, b)["input_ids"] == ids, name  # the path without offsets
        assert ours.decode(ids) == ref.decode(ids), name
        assert ours.decode(ids, skip_special_tokens=True) == ref.decode(ids, skip_special_tokens=True), name


# issue 14: a Unigram model (multilingual vocabularies ship that way), Viterbi over the pieces' scores
def _unigram_pieces():
    """Specials, single chars and substrings of MiniLM-like words, with scores rounded to 0.5 (ties happen)."""
    import random

    rng = random.Random(14)
    pieces = [("[PAD]", 0.0), ("[UNK]", 0.0), ("[CLS]", 0.0), ("[SEP]", 0.0), ("[MASK]", 0.0)]
    words = ["the", "hello", "world", "token", "izer", "héllo", "naïve", "café", "日本語", "テキスト", "12", "123", "ab",
             "abc", "bc", "ing", "un", "known", "qu", "ick", "fox", "a", ",", ".", "!", "e\u0301"]
    seen = {p for p, _ in pieces}
    for w in words + list("abcdefghijklmnopqrstuvwxyzé0123456789日本"):
        for piece in (w, "▁" + w, w[: len(w) // 2 + 1], "▁" + w[:2]):
            if piece not in seen:
                seen.add(piece)
                pieces.append((piece, -round(rng.uniform(1, 12) * 2) / 2))
    pieces.append(("▁", -2.0))
    return pieces


def _unigram_file(tmp_path, name, normalizer, pre, decoder, unk_id=1, byte_fallback=False):
    tok = tokenizers.Tokenizer(models.Unigram(_unigram_pieces(), unk_id=unk_id, byte_fallback=byte_fallback))
    tok.normalizer, tok.pre_tokenizer, tok.decoder = normalizer, pre, decoder
    tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
                                                       special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    tok.add_special_tokens(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
    d = tmp_path / name
    d.mkdir()
    tok.save(str(d / "tokenizer.json"))
    (d / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "BertTokenizer"}))
    return d


UNIGRAMS = {
    "unigram_metaspace": (N.Sequence([N.NFKC(), N.Lowercase()]), P.Metaspace(), decoders.Metaspace()),
    "unigram_bert_normalizer": (N.BertNormalizer(), P.Metaspace(prepend_scheme="first"), decoders.Metaspace(prepend_scheme="first")),
    "unigram_whitespace_wordpiece_decoder": (N.NFC(), P.WhitespaceSplit(), decoders.WordPiece()),
}  # fmt: skip
UNIGRAM_TEXT = st.lists(st.one_of(LATIN, st.sampled_from(list(SPECIALS) + [" ", "the", "hello", "Héllo", "naïve", "日本語",
                                                                          "テキスト", "e\u0301", "123", "abc", "xyz", "▁"])),
                        max_size=8).map("".join)  # fmt: skip


@pytest.fixture(scope="module")
def unigram_variants(tmp_path_factory):
    root = tmp_path_factory.mktemp("tokjson_unigram")
    out = {}
    for name, parts in UNIGRAMS.items():
        d = _unigram_file(root, name, *parts)
        ref = transformers.AutoTokenizer.from_pretrained(d)
        assert type(ref).__name__ == "BertTokenizerFast"  # what transformers gives for tokenizer_class BertTokenizer
        ours = AutoTokenizer.from_pretrained(d)
        assert type(ours) is BertTokenizer
        out[name] = (ours, ref)
    return out


def test_unigram_examples(unigram_variants):
    ours, ref = unigram_variants["unigram_metaspace"]
    for s in ["The hello world", "xyz [SEP] naïve", "  日本語 テキスト", "qqq"]:
        assert ours.tokenize(s) == ref.tokenize(s)
        assert ours(s, "abc", return_offsets_mapping=True) == dict(ref(s, "abc", return_offsets_mapping=True))
    # an unknown run is one token holding its text, with the [UNK] id
    assert ours.tokenize("qqq") == ref.tokenize("qqq") and ours("qqq")["input_ids"][1:-1] == ref("qqq")["input_ids"][1:-1]


@settings(SETTINGS, max_examples=60)
@given(s=UNIGRAM_TEXT, b=UNIGRAM_TEXT)
def test_unigram_model(unigram_variants, s, b):
    kw = dict(return_offsets_mapping=True, return_special_tokens_mask=True)
    for name, (ours, ref) in unigram_variants.items():
        assert ours.tokenize(s) == ref.tokenize(s), name
        for args in ((s,), (s, b)):
            assert dict(ours(*args, **kw)) == dict(ref(*args, **kw)), name
            assert ours(*args).word_ids() == ref(*args).word_ids(), name
        ids = ref(s, b)["input_ids"]
        assert ours(s, b)["input_ids"] == ids, name  # the path without offsets
        assert ours.decode(ids) == ref.decode(ids), name
        assert ours.decode(ids, skip_special_tokens=True) == ref.decode(ids, skip_special_tokens=True), name
    for ours, ref in unigram_variants.values():
        trunc = dict(truncation="longest_first", max_length=9, return_offsets_mapping=True)
        assert dict(ours(s, b, **trunc)) == dict(ref(s, b, **trunc))


def test_unigram_refused_options(tmp_path):
    d = _unigram_file(tmp_path, "byte_fallback", N.NFC(), P.Metaspace(), decoders.Metaspace(), byte_fallback=True)
    with pytest.raises(TokenizerError, match="model Unigram with byte_fallback=True is not supported"):
        BertTokenizer.from_pretrained(d)
    data = json.loads((d / "tokenizer.json").read_text())
    data["model"].update(byte_fallback=False, unk_id=None)
    (d / "tokenizer.json").write_text(json.dumps(data))
    with pytest.raises(TokenizerError, match="model Unigram with unk_id=None is not supported"):
        BertTokenizer.from_pretrained(d)
