"""generate() and the encoder-decoder classes on bad input: refimpl errors that name the value and the limit.
Where transformers raises too, the parity-marked test checks that it does (so our error is never a
behaviour change, only a clearer message). refimpl is stricter in one place: transformers ignores a
top_p > 1 (it only adds the warper for top_p < 1); refimpl rejects it."""

import warnings

import numpy as np
import pytest

import refimpl
from refimpl.errors import CheckpointError, ConfigError, InputError
from refimpl.models.encoder_decoder import EncoderDecoderConfig, shift_tokens_right
from test_generation_properties import sources, tiny_decoder, tiny_seq2seq


@pytest.fixture(scope="module")
def s2s():
    return tiny_seq2seq(0, dtype="float32", max_pos=24)


CASES = [
    (dict(max_new_tokens=30), r"max_new_tokens=30 .*max_position_embeddings=24.*at most max_new_tokens=24"),
    (dict(max_length=40), r"max_length=40 .*max_position_embeddings=24"),
    (dict(num_beams=2, num_return_sequences=3), r"num_return_sequences=3 is larger than num_beams=2"),
    (dict(num_return_sequences=2), r"num_return_sequences=2 needs num_beams >= 2"),
    (dict(do_sample=True, temperature=-0.5), r"temperature=-0.5 must be a float > 0"),
    (dict(do_sample=True, temperature=0.0), r"temperature=0.0 must be a float > 0.*do_sample=False"),
    (dict(do_sample=True, top_p=0.0), r"top_p=0.0 must lie in \(0, 1\]"),
    (dict(do_sample=True, top_p=1.5), r"top_p=1.5 must lie in \(0, 1\]"),
    (dict(do_sample=True, top_k=-3), r"top_k=-3 must be an integer >= 1"),
    (dict(early_stopping="sometimes"), r"early_stopping must be True, False or 'never'"),
    (dict(num_beams=0), r"num_beams=0 must be an integer >= 1"),
    (dict(max_new_tokens=0), r"max_new_tokens=0 must be an integer >= 1"),
    (dict(repetition_penalty=0.0), r"repetition_penalty=0.0 must be a float > 0"),
    (dict(bad_words_ids=[7]), r"bad_words_ids must be a non-empty list of non-empty lists"),
    (dict(bad_words_ids=[[500]]), r"bad_words_ids holds token ids \[500\] outside the vocabulary \[0, 37\)"),
    (dict(max_length=1), r"decoder input has 1 tokens but max_length=1"),
    (dict(beams=3), r"unknown generate\(\) arguments \['beams'\]"),
]


@pytest.mark.parametrize("opts,message", CASES, ids=[str(c[0]) for c in CASES])
def test_generate_bad_options(s2s, opts, message):
    ids, mask = sources(0, 2, 4)
    with pytest.raises(InputError, match=message):
        s2s.generate(ids, attention_mask=mask, **opts)


def test_missing_decoder_start_token_id(s2s):
    ids, mask = sources(0, 2, 4)
    s2s.config.decoder_start_token_id = None
    try:
        with pytest.raises(InputError, match="decoder_start_token_id is not set"):
            s2s.generate(ids, attention_mask=mask, max_new_tokens=3)
        assert s2s.generate(ids, attention_mask=mask, max_new_tokens=3, decoder_start_token_id=1).shape[0] == 2
    finally:
        s2s.config.decoder_start_token_id = 1


def test_bad_ids_and_masks(s2s):
    ids, mask = sources(0, 2, 4)
    with pytest.raises(InputError, match=r"contains 99, outside \[0, 37\)"):
        s2s.generate(np.array([[3, 99]]), max_new_tokens=2)
    with pytest.raises(InputError, match="attention_mask has shape"):
        s2s.generate(ids, attention_mask=mask[:, :2], max_new_tokens=2)
    with pytest.raises(InputError, match="integer ids"):
        s2s.generate(ids.astype(float), max_new_tokens=2)


def test_decoder_only_without_is_decoder_warns():
    """transformers generates from a decoder class built without is_decoder (bidirectionally, with its
    warning); so does refimpl (tokens checked against transformers in tests/test_generate_kwargs.py)."""
    model = tiny_decoder(0)
    model.config.is_decoder = False
    with pytest.warns(UserWarning, match=r"add `is_decoder=True.`"):
        model.generate(np.array([[3, 4]]), max_new_tokens=2)


def test_labels_need_start_and_pad(s2s):
    with pytest.raises(ConfigError, match="decoder_start_token_id is not set"):
        shift_tokens_right(np.array([[4, 5]]), 0, None)
    with pytest.raises(ConfigError, match="pad_token_id is not set"):
        shift_tokens_right(np.array([[4, 5]]), None, 1)


def test_encoder_decoder_checkpoint_errors(s2s, tmp_path):
    tensors = {k: np.asarray(v) for k, v in s2s.params.items()}
    with pytest.raises(CheckpointError, match="neither encoder"):
        type(s2s).from_tensors(s2s.config, dict(tensors, stray=np.zeros(2)))
    bad = dict(tensors)
    del bad["enc_to_dec_proj.bias"]
    with pytest.raises(CheckpointError, match="enc_to_dec_proj"):
        type(s2s).from_tensors(s2s.config, bad)
    with pytest.raises(ConfigError, match="nested 'encoder' and 'decoder'"):
        EncoderDecoderConfig.from_dict({"model_type": "encoder-decoder"})
    with pytest.raises(ConfigError, match="model_type='gpt2' is not supported"):
        EncoderDecoderConfig.from_dict({"encoder": {"model_type": "bert"}, "decoder": {"model_type": "gpt2"}})


@pytest.mark.parity
@pytest.mark.parametrize("opts", [dict(num_beams=2, num_return_sequences=3), dict(do_sample=True, temperature=-0.5),
                                  dict(num_return_sequences=2)])
def test_transformers_rejects_them_too(tmp_path, opts):
    from generation_models import build_encoder_decoder
    from reference import reference

    torch, _ = reference()
    hf, _, _ = build_encoder_decoder(tmp_path, "bert")
    with pytest.raises(ValueError), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hf.generate(torch.tensor([[5, 6, 7]]), max_new_tokens=3, **opts)
