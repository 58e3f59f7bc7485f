"""fairseq RoBERTa checkpoints (refimpl.formats.fairseq): the committed weights/fairseq_roberta (written in
fairseq's layout by tools/make_format_fixtures_fairseq.py from a transformers model) loads to that model's
tensors and outputs; ``refimpl convert`` writes the vocab.json / merges.txt that encode as fairseq does;
the fairseq < 0.9 layout (decoder. prefix, stacked in_proj, legacy torch.save) too; hostile globals refused."""

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
from refimpl.errors import CheckpointError

ROOT = Path(__file__).resolve().parent.parent
FAIRSEQ = ROOT / "weights" / "fairseq_roberta"


def check_fairseq(d: Path, tmp_path: Path):
    model = refimpl.RobertaForMaskedLM.from_pretrained(d)
    assert model.load_report["format"] == "fairseq"
    want = load_file(str(d / "expected_hf.safetensors"))
    state = model.state_dict()
    assert set(state) == set(want)
    for name, arr in want.items():
        assert state[name].tobytes() == arr.tobytes(), name
    out = load_file(str(d / "expected_outputs.safetensors"))
    # float32 forward against transformers' (tests/tolerances.py: float32 logits within 1e-5)
    np.testing.assert_allclose(model(input_ids=out["input_ids"]).logits, out["logits"], atol=1e-5, rtol=1e-5)
    base = refimpl.RobertaModel.from_pretrained(d)
    assert base.config.max_position_embeddings == 66 and base.config.layer_norm_eps == 1e-5
    conv = tmp_path / "converted"
    assert main(["convert", str(d), str(conv)]) == 0
    assert {"vocab.json", "merges.txt", "config.json", "model.safetensors"} <= {p.name for p in conv.iterdir()}
    prov = json.loads((d / "provenance.json").read_text(encoding="utf-8"))
    tok = refimpl.RobertaTokenizer.from_pretrained(conv)
    assert list(tok(prov["text"])["input_ids"]) == prov["expected_ids"]  # fairseq's ids via dict.txt
    return conv, prov


def test_committed_fairseq_checkpoint_loads_and_converts(tmp_path):
    d = tmp_path / "fairseq"
    shutil.copytree(FAIRSEQ, d)
    check_fairseq(d, tmp_path)


@pytest.mark.parity
def test_legacy_fairseq_layout_and_transformers_loads_the_conversion(tmp_path):
    pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    d = tmp_path / "legacy"
    subprocess.run([sys.executable, str(ROOT / "tools" / "make_format_fixtures_fairseq.py"), "--out", str(d),
                    "--legacy", "--seed", "5"], check=True, capture_output=True)
    conv, prov = check_fairseq(d, tmp_path)
    hf_tok = transformers.RobertaTokenizer.from_pretrained(conv)
    assert hf_tok(prov["text"])["input_ids"] == prov["expected_ids"]
    import torch

    hf = transformers.RobertaForMaskedLM.from_pretrained(conv).eval()
    out = load_file(str(d / "expected_outputs.safetensors"))
    with torch.no_grad():
        logits = hf(input_ids=torch.tensor(out["input_ids"])).logits.numpy()
    np.testing.assert_array_equal(logits, out["logits"])  # the same weights in the same library: identical


def test_hostile_model_pt_is_refused(tmp_path):
    from test_formats_torch import g, s, tup, write_zip

    marker = tmp_path / "MARKER"
    d = tmp_path / "evil"
    d.mkdir()
    payload = (b"\x80\x02}" + s("args") + g("argparse", "Namespace") + b")\x81}" + s("x")
               + g("os", "system") + tup(s(f"touch {marker}")) + b"R" + b"sb" + b"s.")
    write_zip(d / "model.pt", payload)
    with pytest.raises(CheckpointError, match="global os.system"):
        refimpl.RobertaModel.from_pretrained(d)
    assert not marker.exists()
