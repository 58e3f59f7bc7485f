"""TensorFlow 1 checkpoints read without TensorFlow (refimpl.formats.tf_bundle): the committed bundles in
weights/tf_bert_* (written by TensorFlow, tools/make_format_fixtures_tf.py, provenance.json) against what
TensorFlow and transformers' load_tf_weights_in_bert read from them; fresh several-shard checkpoints written by
TensorFlow when it is installed; corrupt indexes and shards refused."""

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

import refimpl
from refimpl.errors import CheckpointError, CheckpointNotFoundError
from refimpl.formats import tf_bundle

ROOT = Path(__file__).resolve().parent.parent
BUNDLES = [ROOT / "weights" / "tf_bert_pretraining", ROOT / "weights" / "tf_bert_sharded"]


def check_bundle(d: Path):
    """The bundle in ``d`` read by refimpl equals what TensorFlow read (expected_tf) and what transformers
    loaded (expected_hf), bit for bit; BertForPreTraining's outputs equal those of its safetensors copy."""
    tensors = tf_bundle.read_bundle(tf_bundle.find_prefix(d))
    want = load_file(str(d / "expected_tf.safetensors"))
    assert set(tensors) == set(want)
    for name, arr in want.items():
        assert tensors[name].dtype == arr.dtype and tensors[name].reshape(arr.shape).tobytes() == arr.tobytes(), name
    model = refimpl.BertForPreTraining.from_pretrained(d)
    assert model.load_report["format"] == "tf_bundle"
    assert "global_step" in model.load_report["format_skipped"]
    hf = load_file(str(d / "expected_hf.safetensors"))
    state = model.state_dict()
    assert set(state) == set(hf)
    for name, arr in hf.items():
        assert state[name].tobytes() == arr.tobytes(), name
    copy = d.parent / (d.name + "_as_safetensors")
    copy.mkdir(exist_ok=True)
    save_file(hf, str(copy / "model.safetensors"))
    shutil.copy(d / "bert_config.json", copy / "config.json")
    ids = np.array([[2, 5, 7, 11, 13, 1]])
    tt = np.array([[0, 0, 0, 1, 1, 1]])
    a, b = model(input_ids=ids, token_type_ids=tt), refimpl.BertForPreTraining.from_pretrained(copy)(input_ids=ids, token_type_ids=tt)
    np.testing.assert_array_equal(a.prediction_logits, b.prediction_logits)
    np.testing.assert_array_equal(a.seq_relationship_logits, b.seq_relationship_logits)
    base = refimpl.BertModel.from_pretrained(d)  # Google's layout into the base class: bert. removed, cls.* ignored
    assert base.load_report["prefix"] == "removed 'bert.'"
    np.testing.assert_array_equal(base(input_ids=ids, token_type_ids=tt).last_hidden_state,
                                  refimpl.BertModel.from_pretrained(copy)(input_ids=ids, token_type_ids=tt).last_hidden_state)


@pytest.mark.parametrize("bundle", BUNDLES, ids=lambda p: p.name)
def test_committed_tf_bundles_equal_tensorflow_and_transformers(bundle, tmp_path):
    d = tmp_path / bundle.name
    shutil.copytree(bundle, d)
    check_bundle(d)


@pytest.mark.parity  # tensorflow-cpu is in the test extra
def test_fresh_sharded_checkpoints_written_by_tensorflow(tmp_path):
    if importlib.util.find_spec("tensorflow") is None:
        pytest.skip("tensorflow is not installed (pip install -e '.[test]')")
    out = tmp_path / "fresh"
    subprocess.run([sys.executable, str(ROOT / "tools" / "make_format_fixtures_tf.py"), "--out", str(out),
                    "--shards", "4", "--seed", "99"], check=True, capture_output=True)
    assert len(list(out.glob("bert_model.ckpt.data-*-of-00004"))) == 4
    check_bundle(out)


def test_google_names_map_as_transformers_maps_them():
    cases = {
        "bert/encoder/layer_11/attention/self/query/kernel": ("bert.encoder.layer.11.attention.self.query.weight", True),
        "bert/embeddings/word_embeddings": ("bert.embeddings.word_embeddings.weight", False),
        "bert/embeddings/LayerNorm/gamma": ("bert.embeddings.LayerNorm.weight", False),
        "cls/predictions/output_bias": ("cls.predictions.bias", False),
        "cls/seq_relationship/output_weights": ("cls.seq_relationship.weight", False),
        "cls/squad/output_weights": ("cls.classifier.weight", False),
        "output_weights": ("classifier.weight", False),  # run_classifier.py's head (refimpl's addition)
        "bert/encoder/layer_0/output/dense/kernel/adam_m": (None, False),
        "global_step": (None, False),
    }
    for tf_name, want in cases.items():
        assert tf_bundle.bert_name(tf_name) == want, tf_name


def test_corrupt_bundles_are_refused(tmp_path):
    src = BUNDLES[1]
    d = tmp_path / "c"
    shutil.copytree(src, d)
    index = d / "bert_model.ckpt.index"
    raw = bytearray(index.read_bytes())
    raw[40] ^= 0xFF
    index.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="crc32c"):
        refimpl.BertModel.from_pretrained(d)
    index.write_bytes(raw[:-1])
    with pytest.raises(CheckpointError, match="no table magic number"):
        refimpl.BertModel.from_pretrained(d)
    shutil.copy(src / "bert_model.ckpt.index", index)
    shard = d / "bert_model.ckpt.data-00002-of-00003"
    shard.write_bytes(shard.read_bytes()[:100])
    with pytest.raises(CheckpointError, match=r"of bert_model.ckpt.data-00002-of-00003, which has 100; the shard is truncated"):
        refimpl.BertModel.from_pretrained(d)
    shard.unlink()
    with pytest.raises(CheckpointNotFoundError, match="data-00002-of-00003, which is not in"):
        tf_bundle.read_bundle(d / "bert_model.ckpt")
    (d / "other.ckpt.index").write_bytes(index.read_bytes())
    (d / "other.ckpt.data-00000-of-00001").write_bytes(b"")
    with pytest.raises(CheckpointError, match="several TensorFlow checkpoints"):
        refimpl.BertModel.from_pretrained(d)
    (d / "checkpoint").write_text('model_checkpoint_path: "../../elsewhere/bert_model.ckpt"\n')
    with pytest.raises(CheckpointError, match="outside the checkpoint directory"):
        refimpl.BertModel.from_pretrained(d)
