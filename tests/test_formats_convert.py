"""``refimpl convert SRC DST``: every format refimpl reads, written as a safetensors directory that
transformers loads to the same tensors (and refimpl to the same outputs)."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

import refimpl
from refimpl.cli import main

ROOT = Path(__file__).resolve().parent.parent
TF = ROOT / "weights" / "tf_bert_pretraining"


def test_convert_tf_bundle_cli(tmp_path, capsys):
    assert main(["convert", str(TF), str(tmp_path / "out")]) == 0
    assert "(tf_bundle)" in capsys.readouterr().out
    assert json.loads((tmp_path / "out" / "config.json").read_text())["architectures"] == ["BertForPreTraining"]
    got = load_file(str(tmp_path / "out" / "model.safetensors"))
    want = load_file(str(TF / "expected_hf.safetensors"))
    assert set(got) == set(want)
    for name in want:
        assert got[name].tobytes() == want[name].tobytes(), name
    assert main(["convert", str(tmp_path / "nope"), str(tmp_path / "o2")]) == 2


@pytest.mark.parity
def test_transformers_loads_a_converted_tf_bundle(tmp_path):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    assert main(["convert", str(TF), str(tmp_path / "out")]) == 0
    hf = transformers.BertForPreTraining.from_pretrained(tmp_path / "out").eval()
    want = load_file(str(TF / "expected_hf.safetensors"))
    for name, t in hf.state_dict().items():
        tied = {"cls.predictions.decoder.weight": "bert.embeddings.word_embeddings.weight",
                "cls.predictions.decoder.bias": "cls.predictions.bias"}  # transformers ties these
        ref = want.get(tied.get(name, name))
        assert ref is not None and t.numpy().tobytes() == ref.tobytes(), name
    ids = np.array([[2, 5, 7, 11]])
    with torch.no_grad():
        logits = hf(input_ids=torch.tensor(ids)).prediction_logits.numpy()
    ours = refimpl.BertForPreTraining.from_pretrained(TF)(input_ids=ids).prediction_logits
    np.testing.assert_allclose(ours, logits, atol=1e-5, rtol=1e-5)  # tests/tolerances.py: float32 forward vs torch
