"""refimpl's loss_and_grads against torch autograd's gradients recorded in weights/grad_goldens/ (float64;
runs without torch). Regenerate with ``python tools/make_grad_goldens.py`` (provenance in each .json)."""

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

import refimpl
from tolerances import grad_bounds

GOLDENS = Path(__file__).resolve().parent.parent / "weights" / "grad_goldens"
CASES = sorted(p.stem for p in GOLDENS.glob("*.json"))


def test_goldens_are_present():
    assert {"bert_mlm", "bert_seqcls_single", "bert_lm_head_cross", "bert_qa"} <= set(CASES)


@pytest.mark.parametrize("case", CASES)
def test_gradients_match_the_recorded_autograd_gradients(case):
    meta = json.loads((GOLDENS / f"{case}.json").read_text())
    golden = load_file(str(GOLDENS / f"{case}.safetensors"))
    inputs = {k[len("input."):]: v for k, v in golden.items() if k.startswith("input.")}
    want = {k[len("grad."):]: v for k, v in golden.items() if k.startswith("grad.")}
    model = getattr(refimpl, meta["class"]).from_pretrained(GOLDENS.parent.parent / meta["checkpoint"], dtype="float64")
    loss, grads = model.loss_and_grads(**inputs, inputs_embeds_grad=meta["inputs_embeds_grad"])
    how = f"{case}: regenerate with `python tools/make_grad_goldens.py` if the checkpoint or the inputs changed"
    kind = "grad_float32_loss" if meta["class"] == "BertLMHeadModel" else "grad"  # ForCausalLMLoss runs in float32
    atol, rtol = grad_bounds("loss", "float32" if kind != "grad" else "float64")
    assert abs(float(loss) - float(golden["loss"])) <= atol + rtol * abs(float(golden["loss"])), how
    assert set(grads) == set(want), f"{how}; keys differ: {sorted(set(grads) ^ set(want))}"
    atol, rtol = grad_bounds(kind, "float64")
    for name, w in want.items():
        err = float(np.abs(grads[name] - w).max())
        bound = atol + rtol * float(np.abs(w).max())
        assert err <= bound, f"{name}: max |refimpl - torch| {err:.3e} > {bound:.3e}; first values " \
                             f"{grads[name].ravel()[:3]} vs {w.ravel()[:3]}. {how}"
