"""The seeds' training step: bert2bert warm-started from one BERT checkpoint with BertGeneration classes,
``loss_and_grads(input_ids=..., decoder_input_ids=labels, labels=labels)`` and an AdamW step, against
transformers + torch on the same weights; and the examples/ scripts (no torch): their losses fall."""

import copy
import importlib.util
import tempfile
from pathlib import Path

import numpy as np
import pytest

import refimpl
from reference import reference
from test_grad_parity import assert_grads_match, torch_loss_and_grads

ROOT = Path(__file__).resolve().parent.parent
BERT = ROOT / "weights" / "bert_mlm"


def bert2bert(dtype):
    encoder = refimpl.BertGenerationEncoder.from_pretrained(BERT, dtype=dtype, bos_token_id=1, eos_token_id=2)
    decoder = refimpl.BertGenerationDecoder.from_pretrained(BERT, dtype=dtype, add_cross_attention=True,
                                                            is_decoder=True, bos_token_id=1, eos_token_id=2)
    return refimpl.EncoderDecoderModel(encoder=encoder, decoder=decoder)


@pytest.mark.parity
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_seeds_bert2bert_step_matches_torch(dtype):
    torch, transformers = reference()
    model = bert2bert(dtype)
    rng = np.random.default_rng(0)
    input_ids, labels = rng.integers(3, 99, (2, 9)), rng.integers(3, 99, (2, 6))
    with tempfile.TemporaryDirectory() as d:
        model.save_pretrained(d)  # the warm start's new cross-attention weights, as transformers will read them
        hf = transformers.EncoderDecoderModel.from_pretrained(  # float64: the new weights' float64 values kept
            d, attn_implementation="eager", dtype=torch.float64 if dtype == "float64" else torch.float32)
    hf.train(False)
    inputs = dict(input_ids=input_ids, decoder_input_ids=labels, labels=labels)
    want_loss, want = torch_loss_and_grads(torch, hf, inputs)
    loss, grads = model.loss_and_grads(**inputs)
    assert abs(float(loss) - want_loss) <= (1e-10 if dtype == "float64" else 1e-5) * max(1, abs(want_loss))
    assert_grads_match(grads, want, dtype, context=f"seeds' bert2bert {dtype}")
    # one AdamW step on each side, then the loss again
    opt = refimpl.optim.AdamW(model, lr=1e-3)
    topt = torch.optim.AdamW(hf.parameters(), lr=1e-3)
    opt.step(grads)
    topt.step()
    loss2, _ = model.loss_and_grads(**inputs)
    want_loss2, _ = torch_loss_and_grads(torch, hf, inputs)
    assert float(loss2) < float(loss)
    assert abs(float(loss2) - want_loss2) <= (1e-9 if dtype == "float64" else 2e-5) * max(1, abs(want_loss2))


def _example(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_finetune_example_loss_falls():
    losses, acc0, acc = _example("finetune_sequence_classification").main(steps=120, verbose=False)
    assert np.mean(losses[-20:]) < 0.5 * np.mean(losses[:20]), (np.mean(losses[:20]), np.mean(losses[-20:]))
    assert acc > 0.9 > acc0


def test_bert2bert_example_loss_falls(capsys):
    last = _example("bert2bert_training_step").main(BERT)
    first = float(capsys.readouterr().out.splitlines()[0].split("loss ")[1].split(",")[0])
    assert last < first
