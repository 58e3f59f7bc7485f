"""refimpl against the golden outputs committed under weights/<name>/ (written by transformers).

Runs without torch. Each model is loaded from its checkpoint directory, run on the recorded inputs, and
every recorded output (each hidden state, attention map, logits, loss) is compared tensor by tensor
within the tolerance table (tests/tolerances.py). To regenerate a golden:
    python tools/make_goldens.py --only <name>
"""

import json
from pathlib import Path

import numpy as np
import pytest
import safetensors.numpy

import refimpl
from reference import assert_outputs_match, refimpl_outputs

WEIGHTS = Path(__file__).resolve().parent.parent / "weights"
GOLDENS = sorted(p.parent.name for p in WEIGHTS.glob("*/golden.json"))


def test_goldens_exist():
    assert len(GOLDENS) >= 30, f"expected the golden set from tools/make_goldens.py, found {GOLDENS}"


@pytest.mark.parametrize("name", GOLDENS)
def test_golden(name):
    directory = WEIGHTS / name
    meta = json.loads((directory / "golden.json").read_text())
    tensors = safetensors.numpy.load_file(str(directory / "golden.safetensors"))
    inputs = {k[len("input."):]: v for k, v in tensors.items() if k.startswith("input.")}
    expected = {k[len("output."):]: v for k, v in tensors.items() if k.startswith("output.")}
    model = getattr(refimpl, meta["class"]).from_pretrained(directory, dtype=meta["dtype"])
    out = model(**inputs, **meta["forward_flags"])
    assert_outputs_match(
        refimpl_outputs(out), expected, meta["dtype"],
        context=f"golden {name} ({meta['class']}); regenerate with: {meta['generated_by']}",
    )
