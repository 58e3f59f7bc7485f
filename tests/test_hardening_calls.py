"""Hostile or careless calls and small files (issue 12's hardening): nothing is allocated from a claim, no
silently wrong answer, no raw Python exception — each case a refimpl error naming the value, the limit
and the fix (or the correct result)."""

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import refimpl
from refimpl.cache import KVCache
from refimpl.errors import CheckpointError, ConfigError, InputError, TokenizerError
from test_generation_properties import sources, tiny_decoder, tiny_seq2seq

WEIGHTS = Path(__file__).resolve().parent.parent / "weights"
TINY = WEIGHTS / "bert_model_absolute"  # vocab 99, max positions 64, 4 heads, 2 layers
DEEP = "[" * 100000 + "]" * 100000  # Python's json: RecursionError


@pytest.fixture(scope="module")
def model():
    return refimpl.BertModel.from_pretrained(TINY)


@pytest.fixture(scope="module")
def s2s():
    return tiny_seq2seq(0, dtype="float32", max_pos=24)


@pytest.fixture(scope="module")
def decoder():
    return tiny_decoder(0, dtype="float32")


@pytest.fixture()
def vocab_dir(tmp_path):
    d = tmp_path / "tok"
    d.mkdir()
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world", "h", "##e", "##l", "##o", "w"]
    (d / "vocab.txt").write_text("\n".join(words) + "\n")
    return d


# --- memory: nothing allocated from what a file or an option merely claims ----------------------------


def test_claimed_layers_beyond_the_checkpoint(tmp_path):
    """num_hidden_layers: 10000000 built a 160-million-entry shape table before comparing."""
    shutil.copy(TINY / "model.safetensors", tmp_path / "model.safetensors")
    cfg = json.loads((TINY / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**cfg, "num_hidden_layers": 10_000_000}))
    with pytest.raises(CheckpointError, match=r"num_hidden_layers=10000000, but the checkpoint .* holds layers 0..1 "
                                              r"\(2 layers\); fix config.json \(num_hidden_layers=2\)"):
        refimpl.BertModel.from_pretrained(tmp_path)


def test_padding_to_an_enormous_max_length(vocab_dir):
    tok = refimpl.BertTokenizer.from_pretrained(vocab_dir)  # no model_max_length: transformers' 1e30
    with pytest.raises(TokenizerError, match=r"padding 1 rows to 10000000000 tokens builds 10000000000 ids, more than "
                                             r"the 67108864 .* use padding=True"):
        tok("hello", padding="max_length", max_length=10 ** 10)
    bounded = refimpl.BertTokenizer.from_pretrained(vocab_dir, model_max_length=16)
    with pytest.raises(TokenizerError, match=r"padding to 17 tokens is more than model_max_length=16"):
        bounded("hello", padding="max_length", max_length=17)
    assert len(bounded("hello", padding="max_length", max_length=16)["input_ids"]) == 16


def test_num_beams_beyond_memory(s2s, decoder):
    src, mask = sources(0, 2, 5)
    with pytest.raises(InputError, match=r"num_beams=10000000 .* needs 20000000 rows .* GiB of memory; use at most \d+ "
                                         r"beams"):
        s2s.generate(src, attention_mask=mask, num_beams=10 ** 7, max_new_tokens=4)
    with pytest.raises(InputError, match=r"num_beams=10000000 .*more than this machine's"):
        decoder.generate(np.array([[5, 6]]), num_beams=10 ** 7, max_new_tokens=4)


# --- silent wrong answers --------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [2, -1, 0.5, np.nan])
def test_attention_mask_other_than_0_1(model, s2s, decoder, value):
    ids = np.array([[5, 6, 7]])
    mask = np.array([[1, 1, value]])
    with pytest.raises(InputError, match=r"attention_mask contains .*a mask holds only 1 \(attend\) and 0"):
        model(input_ids=ids, attention_mask=mask)
    with pytest.raises(InputError, match=r"attention_mask contains"):
        s2s.generate(ids, attention_mask=mask, max_new_tokens=2)
    with pytest.raises(InputError, match=r"attention_mask contains"):
        decoder.generate(ids, attention_mask=mask, max_new_tokens=2)


def test_boolean_and_float_masks_of_0_1_still_work(model):
    ids = np.array([[5, 6, 7]])
    want = model(input_ids=ids, attention_mask=np.array([[1, 1, 0]])).last_hidden_state
    for mask in (np.array([[True, True, False]]), np.array([[1.0, 1.0, 0.0]])):
        np.testing.assert_array_equal(model(input_ids=ids, attention_mask=mask).last_hidden_state, want)


def test_kv_cache_of_integers_is_refused(decoder):
    with pytest.raises(InputError, match="floating dtype, not int8"):
        KVCache.allocate(np, np.int8, 2, 1, 3, 4, 10)
    cache = KVCache.allocate(np, np.float64, 2, 1, 3, 4, 10)  # the model computes in float32
    with pytest.raises(InputError, match="past_key_values holds float64 keys but the model computes in float32"):
        decoder(input_ids=np.array([[5]]), past_key_values=cache)


@pytest.mark.parametrize("options, message", [
    (dict(num_beams=2, length_penalty=float("nan")), r"length_penalty=nan must be a finite number"),
    (dict(num_beams=2, length_penalty=float("inf")), r"length_penalty=inf must be a finite number"),
    (dict(eos_token_id=-1), r"eos_token_id=-1 must be a token id \(an integer >= 0\)"),
    (dict(eos_token_id=[2, -1]), r"eos_token_id=\[2, -1\] must be a token id"),
    (dict(eos_token_id=4.7), r"eos_token_id=4.7 must be a token id"),
    (dict(eos_token_id=True), r"eos_token_id=True must be a token id"),
    (dict(forced_bos_token_id=-1), r"forced_bos_token_id=-1 must be a token id"),
    (dict(forced_eos_token_id=-1), r"forced_eos_token_id=-1 must be a token id"),
    (dict(pad_token_id="0"), r"pad_token_id='0' must be a token id"),
    (dict(do_sample="no"), r"do_sample='no' must be True or False"),
    (dict(eos_token_id=37), r"eos_token_id=37 names token 37, outside the vocabulary of the decoder \(ids 0..36\)"),
    (dict(forced_eos_token_id=[2, 99]), r"forced_eos_token_id=\[2, 99\] names token 99, outside"),
    (dict(forced_bos_token_id=500), r"forced_bos_token_id=500 names token 500"),
    (dict(decoder_start_token_id=40), r"decoder_start_token_id=40 names token 40"),
    (dict(pad_token_id=37), r"pad_token_id=37 names token 37"),
])
def test_generate_options_refused(s2s, options, message):
    src, mask = sources(0, 2, 5)
    with pytest.raises(InputError, match=message):
        s2s.generate(src, attention_mask=mask, max_new_tokens=3, **options)


def test_numpy_integer_token_ids_are_accepted(s2s):
    src, mask = sources(0, 2, 5)
    want = s2s.generate(src, attention_mask=mask, max_new_tokens=3, eos_token_id=2)
    np.testing.assert_array_equal(s2s.generate(src, attention_mask=mask, max_new_tokens=3, eos_token_id=np.int64(2)), want)


def test_head_mask_holding_none(model):
    ids = np.array([[5, 6, 7]])
    with pytest.raises(InputError, match=r"head_mask must hold numbers .*got dtype object"):
        model(input_ids=ids, head_mask=[1, None, 1, 1])
    with pytest.raises(InputError, match=r"head_mask contains nan"):
        model(input_ids=ids, head_mask=[1, np.nan, 1, 1])


def test_dtype_none_means_float32(tmp_path):
    m = refimpl.BertModel.from_pretrained(TINY, dtype=None)
    assert m.dtype == np.float32
    assert refimpl.BertModel(m.config, dtype=None, seed=0).dtype == np.float32
    with pytest.raises(ConfigError, match=r"dtype=\[1\] is not a dtype"):
        refimpl.BertModel.from_pretrained(TINY, dtype=[1])


# --- strict parsing: tokenizer options of the wrong type ----------------------------------------------


@pytest.mark.parametrize("key, value, message", [
    ("do_lower_case", "false", r"do_lower_case='false' \(str\) .* must be a JSON boolean"),
    ("additional_special_tokens", "hello", r"additional_special_tokens='hello' \(str\) .* must be a list of tokens"),
    ("model_max_length", "512", r"model_max_length='512' \(str\) .* must be an integer"),
    ("unk_token", 3, r"unk_token=3 \(int\) .* must be a token"),
    ("padding_side", "middle", r"padding_side='middle' .* must be 'left' or 'right'"),
    ("never_split", "abc", r"never_split='abc' .* must be null or a list of str"),
    ("strip_accents", "yes", r"strip_accents='yes' .* must be a boolean or null"),
])
def test_tokenizer_config_values_of_the_wrong_type(vocab_dir, key, value, message):
    (vocab_dir / "tokenizer_config.json").write_text(json.dumps({key: value}))
    with pytest.raises(TokenizerError, match=message):
        refimpl.BertTokenizer.from_pretrained(vocab_dir)
    (vocab_dir / "tokenizer_config.json").unlink()
    with pytest.raises(TokenizerError, match=message.replace(r" \(str\)", "").replace(r" \(int\)", "")):
        refimpl.BertTokenizer.from_pretrained(vocab_dir, **{key: value})


def test_tokenizer_config_that_is_not_an_object(vocab_dir):
    (vocab_dir / "tokenizer_config.json").write_text("[1, 2]")
    with pytest.raises(TokenizerError, match="must hold a JSON object of options, got list"):
        refimpl.BertTokenizer.from_pretrained(vocab_dir)
    with pytest.raises(TokenizerError, match="must hold a JSON object"):
        refimpl.AutoTokenizer.from_pretrained(vocab_dir)


# --- raw exceptions become refimpl errors ----------------------------------------------------------------


@pytest.mark.parametrize("options, message", [
    (dict(pad_to_multiple_of=0, padding=True), r"pad_to_multiple_of=0 must be an integer >= 1"),
    (dict(max_length="5", truncation=True), r"max_length='5' must be an integer >= 0"),
    (dict(max_length=2.5, truncation=True), r"max_length=2.5 must be an integer"),
    (dict(add_special_tokens="no"), r"add_special_tokens='no' must be True or False"),
    (dict(padding_side="up", padding=True), r"padding_side='up'"),
])
def test_tokenizer_call_options_of_the_wrong_type(vocab_dir, options, message):
    tok = refimpl.BertTokenizer.from_pretrained(vocab_dir)
    with pytest.raises(TokenizerError, match=message):
        tok(["hello", "hello world"], **options)


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.mark.parametrize("name", ["config.json", "model.safetensors.index.json", "generation_config.json"])
def test_deeply_nested_checkpoint_json(tmp_path, name):
    shutil.copytree(TINY, tmp_path / "c")
    if name == "model.safetensors.index.json":
        (tmp_path / "c" / "model.safetensors").unlink()
    _write(tmp_path / "c" / name, DEEP)
    if name == "generation_config.json":
        dec = tiny_decoder(0, dtype="float32")
        dec.generation_config_path = tmp_path / "c" / name
        with pytest.raises(ConfigError, match="is not valid JSON .*nested too deeply"):
            dec.generate(np.array([[5, 6]]), max_new_tokens=2)
        return
    with pytest.raises((ConfigError, CheckpointError), match=r"not valid JSON .*nested too deeply"):
        refimpl.BertModel.from_pretrained(tmp_path / "c")


@pytest.mark.parametrize("name", ["tokenizer_config.json", "special_tokens_map.json", "tokenizer.json"])
def test_deeply_nested_tokenizer_json(vocab_dir, name):
    _write(vocab_dir / name, DEEP)
    with pytest.raises(TokenizerError, match="is not valid UTF-8 JSON .*nested too deeply"):
        refimpl.AutoTokenizer.from_pretrained(vocab_dir)


def test_deeply_nested_roberta_vocab(tmp_path):
    _write(tmp_path / "vocab.json", DEEP)
    _write(tmp_path / "merges.txt", "#version: 0.2\n")
    with pytest.raises(TokenizerError, match="vocabulary file .*nested too deeply"):
        refimpl.RobertaTokenizer.from_pretrained(tmp_path)


def test_tokenizer_json_of_the_wrong_shape(vocab_dir):
    (vocab_dir / "vocab.txt").unlink()
    for content, message in [
        ({"model": {"type": "WordPiece", "vocab": {"a": "x"}}}, r"vocabulary entry 'a': 'x' must map the token"),
        ({"model": {"type": "WordPiece", "vocab": {"a": 0}}, "added_tokens": [{"id": 1}]}, r"'added_tokens' must be"),
        ({"model": {"type": "WordPiece", "vocab": {"a": 0, "[UNK]": 1}}, "pre_tokenizer": {"type": "BertPreTokenizer"},
          "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": True},
          "normalizer": {"type": "BertNormalizer", "lowercase": "false"}},
         r"do_lower_case='false' .* must be a JSON boolean"),
        ({"model": ["WordPiece"]}, "does not hold a WordPiece model"),
    ]:
        (vocab_dir / "tokenizer.json").write_text(json.dumps(content))
        with pytest.raises(TokenizerError, match=message):
            refimpl.BertTokenizer.from_pretrained(vocab_dir)


def test_deeply_nested_modules_json(tmp_path):
    _write(tmp_path / "modules.json", DEEP)
    from refimpl.pipelines import features

    with pytest.raises(ConfigError, match="not valid JSON"):
        features._json(tmp_path / "modules.json")


def test_deeply_nested_corpus_line(tmp_path):
    from refimpl.corpus import read_corpus

    _write(tmp_path / "corpus.jsonl", '{"text": "a"}\n' + DEEP + "\n")
    with pytest.raises(InputError, match=r"corpus.jsonl:2: not JSON \(nested too deeply"):
        read_corpus(tmp_path / "corpus.jsonl")


def test_relative_positions_past_the_table_with_explicit_position_ids():
    m = refimpl.BertModel.from_pretrained(WEIGHTS / "bert_model_relative_key")
    n = m.config.max_position_embeddings + 3
    with pytest.raises(InputError, match=rf"sequence length {n} exceeds max_position_embeddings=64, the longest "
                                         r"distance relative_key position embeddings can embed"):
        m(input_ids=np.ones((1, n), dtype=np.int64), position_ids=np.zeros((1, n), dtype=np.int64))


def test_ragged_inputs_to_generate(s2s, decoder):
    with pytest.raises(InputError, match=r"inputs is ragged: its rows have lengths \[3, 1\]"):
        s2s.generate([[5, 6, 7], [5]], max_new_tokens=2)
    with pytest.raises(InputError, match=r"attention_mask is ragged"):
        decoder.generate([[5, 6]], attention_mask=[[1, 1], [1]], max_new_tokens=2)


def test_lone_surrogate_through_sentencepiece(tmp_path):
    spm = pytest.importorskip("sentencepiece")
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(["hello world, a small corpus of words"] * 20),
                                   model_writer=model, vocab_size=20, minloglevel=2)
    (tmp_path / "spiece.model").write_bytes(model.getvalue())
    tok = refimpl.BertGenerationTokenizer.from_pretrained(tmp_path)
    with pytest.raises(InputError, match=r"lone surrogate '\\ud800' \(U\+D800\) at character 5"):
        tok("hello\ud800world")
    with pytest.raises(InputError, match="lone surrogate"):
        tok.tokenize("\udfff")
