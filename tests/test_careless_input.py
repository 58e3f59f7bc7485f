"""Mistakes a careless user makes, each answered by a refimpl exception whose message names the value, the
limit and the fix (issue 11): a file where a checkpoint directory is expected, a model hub name, ids a
tokenizer does not know, generate() options that would be ignored or that contradict each other."""

import io
import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

import refimpl
from refimpl.errors import CheckpointNotFoundError, ConfigError, InputError, InputTypeError, TokenizerError
from refimpl.generation import GenerationConfig, load_generation_config
from test_generation_properties import sources, tiny_decoder, tiny_seq2seq

WEIGHTS = Path(__file__).resolve().parent.parent / "weights"
TINY = WEIGHTS / "bert_model_absolute"
LM = WEIGHTS / "bert_lm_head"


# --- a file where a directory is expected ------------------------------------------------------------


@pytest.mark.parametrize("name", ["config.json", "model.safetensors"])
def test_model_given_a_file(name):
    with pytest.raises(CheckpointNotFoundError, match=rf"{name}' is a file, but a checkpoint directory is expected "
                                                      rf".*pass the directory it is in: '{TINY}'"):
        refimpl.BertModel.from_pretrained(TINY / name)


def test_tokenizer_given_a_file(minilm_dir):
    for load in (refimpl.BertTokenizer.from_pretrained, refimpl.AutoTokenizer.from_pretrained):
        with pytest.raises(CheckpointNotFoundError, match=r"vocab.txt' is a file, but a tokenizer directory is "
                                                          r"expected .*pass the directory it is in"):
            load(minilm_dir / "vocab.txt")


def test_config_accepts_its_json_file_but_not_others():
    """transformers' config classes take the .json file itself; refimpl's do too."""
    assert refimpl.BertConfig.from_pretrained(TINY / "config.json").hidden_size == \
        refimpl.BertConfig.from_pretrained(TINY).hidden_size
    with pytest.raises(CheckpointNotFoundError, match="model.safetensors' is a file"):
        refimpl.BertConfig.from_pretrained(TINY / "model.safetensors")


def test_directory_without_config_names_what_it_holds(tmp_path):
    shutil.copytree(TINY, tmp_path / "inner")
    with pytest.raises(CheckpointNotFoundError, match=r"no config.json in .*which holds \['inner'\].*its "
                                                      r"subdirectory \['inner'\] has one: pass that directory"):
        refimpl.BertModel.from_pretrained(tmp_path)


# --- a model hub name --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["bert-base-uncased", "google/bert_uncased_L-2_H-128_A-2"])
def test_hub_name(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for load in (refimpl.BertModel.from_pretrained, refimpl.BertTokenizer.from_pretrained,
                 refimpl.AutoTokenizer.from_pretrained, refimpl.BertConfig.from_pretrained):
        with pytest.raises(CheckpointNotFoundError) as info:
            load(name)
        message = str(info.value)
        assert f"{name!r} does not exist" in message
        assert "refimpl never contacts a model hub" in message
        assert "config.json and model.safetensors" in message or "vocabulary files" in message
        assert "`refimpl fetch NAME` downloads are ['all-MiniLM-L6-v2']" in message


def test_hub_name_of_a_registered_checkpoint(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CheckpointNotFoundError, match=r"never contacts a model hub.*'all-MiniLM-L6-v2' is registered "
                                                      r"with refimpl: `refimpl fetch all-MiniLM-L6-v2`"):
        refimpl.BertModel.from_pretrained("sentence-transformers/all-MiniLM-L6-v2")


def test_missing_local_path_is_not_called_a_hub_name(tmp_path):
    with pytest.raises(CheckpointNotFoundError, match=r"does not exist; pass a local directory holding config.json") as info:
        refimpl.BertModel.from_pretrained(tmp_path / "nowhere")
    assert "hub" not in str(info.value)


# --- decode of ids the tokenizer does not know ----------------------------------------------------------


@pytest.fixture(scope="module")
def tokenizers(minilm_dir, tmp_path_factory):
    """One tokenizer of every class: BERT (both flavours) from MiniLM, a trained SentencePiece model, and a
    hand-written byte-level BPE."""
    import sentencepiece as spm

    d = tmp_path_factory.mktemp("toks")
    model = io.BytesIO()
    corpus = ["The quick brown fox jumps over the lazy dog.", "hello world, naive cafe"] * 50
    spm.SentencePieceTrainer.train(sentence_iterator=iter(corpus), model_writer=model, vocab_size=36, pad_id=3,
                                   minloglevel=2)
    (d / "sp").mkdir()
    (d / "sp" / "spiece.model").write_bytes(model.getvalue())
    (d / "bpe").mkdir()
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "<mask>": 4, "a": 5, "b": 6, "\u0120": 7, "\u0120a": 8}
    (d / "bpe" / "vocab.json").write_text(json.dumps(vocab))
    (d / "bpe" / "merges.txt").write_text("#version: 0.2\n\u0120 a\n")
    return {
        "BertTokenizer": refimpl.BertTokenizer.from_pretrained(minilm_dir),
        "BertTokenizerLegacy": refimpl.BertTokenizerLegacy.from_pretrained(minilm_dir),
        "BertGenerationTokenizer": refimpl.BertGenerationTokenizer.from_pretrained(d / "sp"),
        "RobertaTokenizer": refimpl.RobertaTokenizer.from_pretrained(d / "bpe"),
    }


CLASSES = ["BertTokenizer", "BertTokenizerLegacy", "BertGenerationTokenizer", "RobertaTokenizer"]


@pytest.mark.parametrize("cls", CLASSES)
def test_decode_unknown_id(tokenizers, cls):
    tok = tokenizers[cls]
    n = len(tok)
    assert tok.decode([1, 2]) is not None  # known ids still decode
    with pytest.raises(TokenizerError, match=rf"cannot decode token id 999999: outside the vocabulary of {n} tokens "
                                             rf"\(ids 0..{n - 1}\); {cls} knows ids 0..{n - 1}"):
        tok.decode([999999])
    with pytest.raises(TokenizerError, match=rf"cannot decode token id {n}: outside the vocabulary"):
        tok.decode(np.array([1, n]))
    with pytest.raises(TokenizerError, match=r"cannot decode token id -1: negative"):
        tok.decode([-1, 2])
    with pytest.raises(TokenizerError, match=r"token id 999999.*\(2 such ids, e.g. \[999999, 1000000\]\)"):
        tok.batch_decode([[1], [999999, 1000000]])


@pytest.mark.parametrize("cls", CLASSES)
def test_decode_non_integers(tokenizers, cls):
    tok = tokenizers[cls]
    with pytest.raises(InputTypeError, match=r"token ids must be ints, got float 2.0"):
        tok.decode([2.0])
    with pytest.raises(InputTypeError, match=r"token ids must be ints, got str 'a'"):
        tok.decode(["a"])


@pytest.mark.parity
def test_transformers_decodes_unknown_ids_silently(minilm_dir):
    """The difference refimpl documents (docs/tokenizers.md): transformers' fast BERT tokenizer drops an
    unknown id, the slow one gives [UNK]."""
    from reference import reference

    _, transformers = reference()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert transformers.BertTokenizerFast.from_pretrained(minilm_dir).decode([999999]) == ""
        assert transformers.BertTokenizer.from_pretrained(minilm_dir).decode([999999]) == "[UNK]"


# --- generate() options -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def s2s():
    return tiny_seq2seq(0, dtype="float32", max_pos=24)


CASES = [
    (dict(max_new_tokens=5, max_length=9), r"both max_new_tokens=5 and max_length=9 were given; pass one"),
    (dict(min_new_tokens=2, min_length=4), r"both min_new_tokens=2 and min_length=4 were given; pass one"),
    (dict(temperature=0.7), r"temperature=0.7 is only used when sampling: pass do_sample=True"),
    (dict(top_k=5), r"top_k=5 is only used when sampling"),
    (dict(top_p=0.9), r"top_p=0.9 is only used when sampling"),
    (dict(length_penalty=0.5), r"length_penalty=0.5 is only used by beam search: set num_beams > 1"),
    (dict(early_stopping=True), r"early_stopping=True is only used by beam search"),
    (dict(output_scores=True), r"output_scores=True needs return_dict_in_generate=True"),
    (dict(output_attentions=True), r"output_attentions=True needs return_dict_in_generate=True"),
    (dict(do_sample="yes"), r"do_sample='yes' must be True or False"),
    (dict(use_cache=1), r"use_cache=1 must be True or False"),
    (dict(num_beams=2.0), r"num_beams=2.0 must be an integer >= 1"),
    (dict(max_new_tokens="8"), r"max_new_tokens='8' must be an integer >= 1"),
    (dict(typical_p=0.9), r"refimpl does not implement: typical_p=0.9 \(typical sampling is not implemented"),
    (dict(stop_strings=["."]), r"stop_strings=\['.'\] \(needs the tokenizer inside generate.*use eos_token_id\)"),
    (dict(max_time=1.0), r"max_time=1.0 \(a wall-clock limit makes the output depend on the machine's speed"),
    (dict(inputs_embeds=np.zeros((1, 2, 14))), r"inputs_embeds=.*generate takes token ids"),
    (dict(num_beam_groups=2), r"group \(diverse\) beam search is not implemented"),
    (dict(suppress_tokens=[500]), r"suppress_tokens holds token ids \[500\] outside the vocabulary \[0, 37\)"),
    (dict(begin_suppress_tokens=5), r"begin_suppress_tokens must be a list of token ids >= 0, got 5"),
    (dict(renormalize_logits="no"), r"renormalize_logits='no' must be True or False"),
]


@pytest.mark.parametrize("opts,message", CASES, ids=[str(list(c[0])) for c in CASES])
def test_generate_options(s2s, opts, message):
    ids, mask = sources(0, 2, 4)
    with pytest.raises(InputError, match=message):
        s2s.generate(ids, attention_mask=mask, **opts)


def test_input_ids_given_twice(s2s):
    ids, mask = sources(0, 2, 4)
    with pytest.raises(InputError, match=r"given twice, as inputs \(the first argument\) and as input_ids="):
        s2s.generate(ids, input_ids=ids, attention_mask=mask, max_new_tokens=2)


def test_ineffective_option_from_a_config_warns(s2s):
    """The same option set in a generation config (as hub checkpoints often carry) is a warning, not an
    error, and is named in it."""
    ids, mask = sources(0, 2, 4)
    with pytest.warns(UserWarning, match=r"config files that have no effect here: temperature=0.7 is only used when"):
        s2s.generate(ids, attention_mask=mask, max_new_tokens=2, generation_config=GenerationConfig(temperature=0.7, decoder_start_token_id=1))


def test_generation_config_json_with_an_unimplemented_option(tmp_path):
    (tmp_path / "generation_config.json").write_text(json.dumps({"num_beams": 2, "typical_p": 0.8, "min_p": None}))
    with pytest.raises(ConfigError, match=r"generation_config.json sets typical_p=0.8, which refimpl does not "
                                          r"implement .*remove it from the file \(or set it to 1.0\)"):
        load_generation_config(tmp_path)
    (tmp_path / "generation_config.json").write_text(json.dumps({"num_beams": 2, "typical_p": 1.0}))
    assert load_generation_config(tmp_path).num_beams == 2


def test_token_type_ids_where_there_are_none(s2s, tmp_path):
    ids, mask = sources(0, 2, 4)
    with pytest.raises(InputError, match=r"token_type_ids has shape \(2, 3\), expected \(2, 4\) like the input ids"):
        s2s.generate(ids, attention_mask=mask, token_type_ids=np.zeros((2, 3), np.int64), max_new_tokens=2)
    with pytest.raises(InputError, match=r"token_type_ids contains 2, outside \[0, 2\)"):
        s2s.generate(ids, attention_mask=mask, token_type_ids=np.full((2, 4), 2), max_new_tokens=2)
    enc = s2s.encoder(input_ids=ids, attention_mask=mask)
    with pytest.raises(InputError, match=r"token_type_ids go to the encoder, but encoder_outputs were given"):
        s2s.generate(encoder_outputs=enc, attention_mask=mask, token_type_ids=np.zeros_like(ids), max_new_tokens=2)
    gen = tiny_seq2seq(0, dtype="float32", dec_kind="bert-generation")
    decoder = gen.decoder
    decoder.config.is_decoder = True
    with pytest.raises(InputError, match=r"BertGenerationDecoder has no token type embeddings; drop token_type_ids"):
        decoder.generate(np.array([[3, 4]]), token_type_ids=np.zeros((1, 2), np.int64), max_new_tokens=2)


def test_encoder_decoder_inputs_on_a_decoder_only_model():
    model = tiny_decoder(0)
    for name in ("decoder_input_ids", "decoder_attention_mask"):
        with pytest.raises(InputError, match=rf"{name} is only used by an encoder-decoder; BertLMHeadModel is "
                                             r"decoder-only \(give the prompt as input_ids\)"):
            model.generate(np.array([[3, 4]]), max_new_tokens=2, **{name: np.array([[1, 1]])})
