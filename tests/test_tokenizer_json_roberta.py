"""Issue 14: RoBERTa's tokenizer.json as ``RobertaTokenizerFast.save_pretrained`` writes it (ByteLevel pre-tokenizer,
BPE model, RobertaProcessing, ByteLevel decoder), read by ``refimpl.RobertaTokenizer`` / ``AutoTokenizer`` from a
folder with only tokenizer.json (+ tokenizer_config.json), against ``RobertaTokenizerFast`` loading the same folder.
Loaded that way, refimpl follows the Rust pipeline (the prefix space goes on each segment between added tokens
that does not start with " "; Rust truncation and decode). Anything else in the file is refused by name."""

from __future__ import annotations

import json
import logging
import shutil

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from refimpl.errors import TokenizerError
from refimpl.tokenizers import AutoTokenizer, RobertaTokenizer

transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")
from tokenizers import decoders, normalizers, pre_tokenizers, processors  # noqa: E402

transformers.logging.set_verbosity_error()
logging.getLogger("refimpl.tokenizers").setLevel(logging.CRITICAL)
pytestmark = pytest.mark.parity
SETTINGS = settings(deadline=None, max_examples=80, suppress_health_check=[HealthCheck.too_slow,
                                                                           HealthCheck.function_scoped_fixture])
SPECIALS = ("<s>", "</s>", "<unk>", "<pad>", "<mask>")
CORPUS = [
    "The quick brown fox jumps over the lazy dog. It's 3.14 o'clock, isn't it?",
    "Ünïcödé text: naïve café, straße, ΟΔΟΣ, русский язык, 中文字符, 한국어 🙂👍🏽",
    "def f(x):\n    return x ** 2  # comment\n\t tabs and  double  spaces",
] * 50
# text below U+0300 (the onig and regex-module Unicode tables agree there), special tokens, emoji, whitespace
LATIN = st.text(st.characters(max_codepoint=0x2FF, exclude_categories=("Cs",)), max_size=8)
TEXT = st.lists(st.one_of(LATIN, st.sampled_from(SPECIALS), st.sampled_from([" ", "  ", "\n", "\t ", " <mask>", "é🙂",
                                                                               " the", "fox"])),
                max_size=8).map("".join)  # fmt: skip


def _tokens(tok, s):
    """``tokenize``, with a swallowed-whitespace ``<mask>`` shown bare: the Rust token holds the whitespace that
    ``lstrip`` took (``' <mask>'``), refimpl shows the token (same id; docs/tokenizers.md)."""
    return [t.lstrip() if t.lstrip() == "<mask>" else t for t in tok.tokenize(s)]


@pytest.fixture(scope="module")
def json_dir(tmp_path_factory):
    """A byte-level BPE trained by the tokenizers library, saved by RobertaTokenizerFast; the folder then keeps
    only tokenizer.json + tokenizer_config.json."""
    from tokenizers import ByteLevelBPETokenizer

    root = tmp_path_factory.mktemp("roberta_json")
    trainer = ByteLevelBPETokenizer()
    trainer.train_from_iterator(CORPUS, vocab_size=400, min_frequency=2, special_tokens=list(SPECIALS))
    trainer.save_model(str(root))
    transformers.RobertaTokenizerFast.from_pretrained(str(root)).save_pretrained(str(root / "saved"))
    d = root / "only_json"
    d.mkdir()
    shutil.copy(root / "saved" / "tokenizer.json", d / "tokenizer.json")
    (d / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "RobertaTokenizer"}))
    return d


def _edit(json_dir, tmp_path, name, edit, config=True):
    tok = tokenizers.Tokenizer.from_file(str(json_dir / "tokenizer.json"))
    edit(tok)
    d = tmp_path / name
    d.mkdir()
    tok.save(str(d / "tokenizer.json"))
    if config:
        shutil.copy(json_dir / "tokenizer_config.json", d / "tokenizer_config.json")
    return d


@pytest.fixture(scope="module")
def pairs(json_dir, tmp_path_factory):
    no_regex = _edit(json_dir, tmp_path_factory.mktemp("noregex"), "no_regex",
                     lambda t: setattr(t, "pre_tokenizer", pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)))
    out = {}
    for d, tag in ((json_dir, "regex"), (no_regex, "no_regex")):
        for aps in (False, True):
            for trim in (True, False):
                kw = {"add_prefix_space": aps, "trim_offsets": trim}
                out[(tag, aps, trim)] = (RobertaTokenizer.from_pretrained(d, **kw),
                                         transformers.RobertaTokenizerFast.from_pretrained(d, **kw))  # fmt: skip
    return out


def test_loads_as_roberta_and_agrees_on_examples(json_dir):
    ours, ref = AutoTokenizer.from_pretrained(json_dir), transformers.AutoTokenizer.from_pretrained(json_dir)
    assert isinstance(ours, RobertaTokenizer) and isinstance(ref, transformers.RobertaTokenizerFast)
    for s in ["The <mask> fox", "The   <mask>fox</s>", "<s>x</s></s>y", "naïve café 🙂"]:
        assert _tokens(ours, s) == _tokens(ref, s)
        assert dict(ours(s, "a dog", return_offsets_mapping=True)) == dict(ref(s, "a dog", return_offsets_mapping=True))
    # without tokenizer_config.json, AutoTokenizer goes by the model type (BPE)
    bare = json_dir.parent / "bare"
    bare.mkdir()
    shutil.copy(json_dir / "tokenizer.json", bare / "tokenizer.json")
    assert isinstance(AutoTokenizer.from_pretrained(bare), RobertaTokenizer)
    # the prefix space goes on every segment between added tokens (Rust ByteLevel), not only the text's start
    ours, ref = RobertaTokenizer.from_pretrained(json_dir, add_prefix_space=True), \
        transformers.RobertaTokenizerFast.from_pretrained(json_dir, add_prefix_space=True)
    assert ours.tokenize("a</s>b") == ref.tokenize("a</s>b") == ["Ġ", "a", "</s>", "Ġ", "b"]


@SETTINGS
@given(s=TEXT, b=TEXT)
def test_ids_offsets_special_tokens_and_decode(pairs, s, b):
    kw = dict(return_offsets_mapping=True, return_special_tokens_mask=True, return_token_type_ids=True)
    for name, (ours, ref) in pairs.items():
        assert _tokens(ours, s) == _tokens(ref, s), name
        for args in ((s,), (s, b)):
            assert dict(ours(*args, **kw)) == dict(ref(*args, **kw)), name
        assert dict(ours(s, b, add_special_tokens=False, return_token_type_ids=True)) == dict(
            ref(s, b, add_special_tokens=False, return_token_type_ids=True)), name
        ids = ref(s, b)["input_ids"]
        for skip in (False, True):
            assert ours.decode(ids, skip_special_tokens=skip) == ref.decode(ids, skip_special_tokens=skip), name


@settings(SETTINGS, max_examples=40)
@given(a=TEXT, b=TEXT, truncation=st.sampled_from([True, "only_first", "only_second"]), max_length=st.integers(4, 16),
       padding=st.sampled_from([False, True, "max_length"]))  # fmt: skip
def test_truncation_and_padding_follow_rust(pairs, a, b, truncation, max_length, padding):
    ours, ref = pairs[("regex", False, True)]
    kw = dict(truncation=truncation, max_length=max_length, padding=padding, return_offsets_mapping=True)
    try:
        expected = dict(ref([a, b], [b, a], **kw))
    except Exception:  # noqa: BLE001 - Rust refuses (sequence too short to truncate): so must refimpl
        with pytest.raises(Exception):
            ours([a, b], [b, a], **kw)
        return
    assert dict(ours([a, b], [b, a], **kw)) == expected


def test_save_round_trip(json_dir, tmp_path):
    ours = RobertaTokenizer.from_pretrained(json_dir)
    ours.add_tokens(["newword"])
    ours.save_pretrained(tmp_path)
    back, again = transformers.AutoTokenizer.from_pretrained(tmp_path), RobertaTokenizer.from_pretrained(tmp_path)
    for s in ["a newword <mask> b", "naïve</s> x"]:
        assert back(s, "b")["input_ids"] == again(s, "b")["input_ids"] == ours(s, "b")["input_ids"]


UNSUPPORTED = {
    "normalizer 'NFC'": lambda t: setattr(t, "normalizer", normalizers.NFC()),
    "pre_tokenizer 'Metaspace'": lambda t: setattr(t, "pre_tokenizer", pre_tokenizers.Metaspace()),
    "post_processor 'TemplateProcessing'": lambda t: setattr(t, "post_processor", processors.TemplateProcessing(
        single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 1)])),
    "post_processor 'ByteLevel'": lambda t: setattr(t, "post_processor", processors.ByteLevel()),
    "decoder 'BPEDecoder'": lambda t: setattr(t, "decoder", decoders.BPEDecoder()),
}  # fmt: skip


@pytest.mark.parametrize("what", list(UNSUPPORTED))
def test_unsupported_component_refused_by_name(json_dir, tmp_path, what):
    d = _edit(json_dir, tmp_path, "x", UNSUPPORTED[what])
    with pytest.raises(TokenizerError, match=rf"{what} is not supported by refimpl's RobertaTokenizer"):
        AutoTokenizer.from_pretrained(d)


@pytest.mark.parametrize("key, value", [("dropout", 0.1), ("continuing_subword_prefix", "##"),
                                        ("end_of_word_suffix", "</w>"), ("byte_fallback", True),
                                        ("ignore_merges", True)])  # fmt: skip
def test_bpe_options_refused(json_dir, tmp_path, key, value):
    data = json.loads((json_dir / "tokenizer.json").read_text())
    data["model"][key] = value
    (tmp_path / "tokenizer.json").write_text(json.dumps(data))
    with pytest.raises(TokenizerError, match=rf"model 'BPE' with {key}={value!r} \(refimpl: .* only\) is not supported"):
        RobertaTokenizer.from_pretrained(tmp_path)
