"""RoBERTa on CuPy: a tiny roberta2roberta (written by transformers) loaded with backend="cupy" gives the
numpy backend's forward outputs within the float32 tolerance table and the same generated sequences.
Needs an NVIDIA GPU and CuPy; skipped (visibly) elsewhere. Run with: python -m pytest -q -m cupy
"""

import warnings

import numpy as np
import pytest

import refimpl
from reference import assert_outputs_match, reference, refimpl_outputs

pytestmark = pytest.mark.cupy


def test_roberta2roberta_cupy_equals_numpy(cupy, tmp_path):
    torch, transformers = reference()
    common = dict(vocab_size=61, num_attention_heads=3, intermediate_size=29, num_hidden_layers=2,
                  max_position_embeddings=40, initializer_range=0.3, attn_implementation="eager")
    config = transformers.EncoderDecoderConfig.from_encoder_decoder_configs(
        transformers.RobertaConfig(hidden_size=24, **common),
        transformers.RobertaConfig(hidden_size=24, is_decoder=True, add_cross_attention=True, **common))
    config.pad_token_id, config.decoder_start_token_id, config.eos_token_id = 1, 0, 2
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        transformers.EncoderDecoderModel(config).save_pretrained(tmp_path)
    ids = np.array([[0, 5, 6, 7, 8, 2], [0, 9, 10, 2, 1, 1]])
    mask = (ids != 1).astype(np.int64)
    labels = np.array([[11, 12, 2], [13, 2, -100]])
    on_cpu = refimpl.EncoderDecoderModel.from_pretrained(tmp_path)
    on_gpu = refimpl.EncoderDecoderModel.from_pretrained(tmp_path, backend="cupy")
    flags = dict(output_attentions=True, output_hidden_states=True)
    want = on_cpu(input_ids=ids, attention_mask=mask, labels=labels, **flags)
    got = on_gpu(input_ids=cupy.asarray(ids), attention_mask=cupy.asarray(mask), labels=cupy.asarray(labels), **flags)
    assert isinstance(got.logits, cupy.ndarray)
    assert_outputs_match(refimpl_outputs(got), refimpl_outputs(want), "float32", context="roberta2roberta cupy vs numpy")
    for opts in (dict(), dict(num_beams=3, num_return_sequences=2)):
        a = on_cpu.generate(ids, attention_mask=mask, max_new_tokens=8, **opts)
        b = on_gpu.generate(ids, attention_mask=mask, max_new_tokens=8, **opts)
        assert np.array_equal(a, b), opts
