"""Bad input gets a clear refimpl error naming the value, the limit and the fix (issue 2's list)."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import refimpl
from refimpl.errors import CheckpointError, CheckpointNotFoundError, ConfigError, InputError, InputTypeError

WEIGHTS = Path(__file__).resolve().parent.parent / "weights"
TINY = WEIGHTS / "bert_model_absolute"  # vocab 99, max positions 64, type vocab 3, 4 heads, 2 layers


@pytest.fixture(scope="module")
def model():
    return refimpl.BertModel.from_pretrained(TINY)


def test_id_outside_vocabulary(model):
    with pytest.raises(InputError, match=r"input_ids contains 99, outside \[0, 99\)"):
        model(input_ids=np.array([[1, 99]]))
    with pytest.raises(InputError, match=r"contains -1"):
        model(input_ids=np.array([[-1, 2]]))


def test_non_integer_ids(model):
    with pytest.raises(InputTypeError, match="integer token ids, got dtype float64"):
        model(input_ids=np.array([[1.0, 2.0]]))
    with pytest.raises(InputTypeError):
        model(input_ids=[["a", "b"]])


def test_too_long(model):
    with pytest.raises(InputError, match=r"sequence length 65 exceeds max_position_embeddings=64; truncate"):
        model(input_ids=np.ones((1, 65), dtype=np.int64))


def test_mask_and_token_type_shapes(model):
    ids = np.ones((2, 5), dtype=np.int64)
    with pytest.raises(InputError, match=r"attention_mask has shape \(2, 4\), expected \(2, 5\) or \(2, 5, 5\)"):
        model(input_ids=ids, attention_mask=np.ones((2, 4)))
    with pytest.raises(InputError, match=r"token_type_ids has shape \(1, 5\), expected \(2, 5\)"):
        model(input_ids=ids, token_type_ids=np.zeros((1, 5), dtype=np.int64))


def test_token_type_outside_type_vocab(model):
    with pytest.raises(InputError, match=r"token_type_ids contains 3, outside \[0, 3\)"):
        model(input_ids=np.ones((1, 3), dtype=np.int64), token_type_ids=np.array([[0, 1, 3]]))


def test_wrong_rank_and_empty(model):
    with pytest.raises(InputError, match="wrap a single sequence"):
        model(input_ids=np.array([1, 2, 3]))
    with pytest.raises(InputError, match="empty"):
        model(input_ids=np.zeros((1, 0), dtype=np.int64))
    with pytest.raises(InputError, match="exactly one of input_ids or inputs_embeds"):
        model()


def test_head_mask_shape(model):
    with pytest.raises(InputError, match=r"head_mask has shape \(3,\), expected \(4,\) or \(2, 4\)"):
        model(input_ids=np.ones((1, 3), dtype=np.int64), head_mask=np.ones(3))


def test_labels_out_of_range():
    mlm = refimpl.BertForMaskedLM.from_pretrained(WEIGHTS / "bert_mlm")
    with pytest.raises(InputError, match=r"labels contains 99, outside \[0, 99\); use -100 to ignore"):
        mlm(input_ids=np.ones((1, 3), dtype=np.int64), labels=np.array([[1, 99, -100]]))


def test_missing_directory_and_file(tmp_path):
    with pytest.raises(CheckpointNotFoundError, match="does not exist"):
        refimpl.BertModel.from_pretrained(tmp_path / "nope")
    shutil.copy(TINY / "config.json", tmp_path / "config.json")
    with pytest.raises(CheckpointNotFoundError, match="no model.safetensors"):
        refimpl.BertModel.from_pretrained(tmp_path)
    (tmp_path / "pytorch_model.bin").write_bytes(b"not loaded")  # read without unpickling code (refimpl.formats)
    with pytest.raises(refimpl.CheckpointError, match="neither a zip archive nor a pickle"):
        refimpl.BertModel.from_pretrained(tmp_path)


def test_bad_config_json(tmp_path):
    shutil.copy(TINY / "model.safetensors", tmp_path / "model.safetensors")
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ConfigError, match="config.json is not valid JSON"):
        refimpl.BertModel.from_pretrained(tmp_path)
    cfg = json.loads((TINY / "config.json").read_text())
    for key, value, message in [("hidden_act", "gelu_cubic", "hidden_act='gelu_cubic' is not supported"),
                                ("position_embedding_type", "rotary", "position_embedding_type='rotary' is not supported"),
                                ("num_attention_heads", 5, "not a multiple of num_attention_heads=5")]:
        (tmp_path / "config.json").write_text(json.dumps({**cfg, key: value}))
        with pytest.raises(ConfigError, match=message):
            refimpl.BertModel.from_pretrained(tmp_path)


def test_truncated_and_corrupt_checkpoint(tmp_path):
    shutil.copy(TINY / "config.json", tmp_path / "config.json")
    data = (TINY / "model.safetensors").read_bytes()
    (tmp_path / "model.safetensors").write_bytes(data[: len(data) - 100])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        refimpl.BertModel.from_pretrained(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"\x05\x00")
    with pytest.raises(CheckpointError, match="not a safetensors file"):
        refimpl.BertModel.from_pretrained(tmp_path)
    (tmp_path / "model.safetensors").write_bytes((20).to_bytes(8, "little") + b"{" * 20)
    with pytest.raises(CheckpointError, match="header is not valid JSON"):
        refimpl.BertModel.from_pretrained(tmp_path)


def test_checkpoint_config_mismatch_names_the_tensor(tmp_path):
    shutil.copy(TINY / "model.safetensors", tmp_path / "model.safetensors")
    cfg = json.loads((TINY / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**cfg, "intermediate_size": 36}))
    with pytest.raises(CheckpointError, match=r"encoder.layer.0.intermediate.dense.weight in .* has shape \(37, 32\), but the config implies \(36, 32\)"):
        refimpl.BertModel.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({**cfg, "num_hidden_layers": 1}))
    with pytest.raises(CheckpointError, match=r"unexpected .* encoder.layer.1"):
        refimpl.BertModel.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({**cfg, "num_hidden_layers": 3}))
    with pytest.raises(CheckpointError, match=r"missing 16 tensor\(s\): \['encoder.layer.2"):
        refimpl.BertModel.from_pretrained(tmp_path)


def test_loading_exceptions_are_reported(tmp_path):
    """bert. prefix, other heads' tensors, the absent pooler, legacy gamma/beta: handled and reported."""
    import safetensors.numpy

    from refimpl.checkpoint import read_safetensors

    mlm_dir = WEIGHTS / "bert_mlm"
    base = refimpl.BertModel.from_pretrained(mlm_dir)  # head checkpoint (bert. prefix, cls.*) into the base class
    assert base.load_report["prefix"] == "removed 'bert.'"
    assert any(n.startswith("cls.") for n in base.load_report["ignored"])
    assert base.load_report["missing_optional"] and base(input_ids=np.ones((1, 2), dtype=np.int64)).pooler_output is None

    tensors = {k: np.array(v) for k, v in read_safetensors(TINY / "model.safetensors").items()}
    legacy = {k.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta"): v
              for k, v in tensors.items()}
    safetensors.numpy.save_file(legacy, str(tmp_path / "model.safetensors"))
    shutil.copy(TINY / "config.json", tmp_path / "config.json")
    renamed = refimpl.BertModel.from_pretrained(tmp_path)
    assert len(renamed.load_report["renamed"]) == 2 * (1 + 2 * 2)  # weight+bias of 5 LayerNorms
    ids = np.array([[3, 4, 5]])
    np.testing.assert_array_equal(renamed(input_ids=ids).last_hidden_state,
                                  refimpl.BertModel.from_pretrained(TINY)(input_ids=ids).last_hidden_state)
    seq = refimpl.BertForSequenceClassification
    with pytest.raises(CheckpointError, match=r"missing 2 tensor\(s\): \[.classifier.bias., .classifier.weight.\]"):
        seq.from_pretrained(TINY)  # a base checkpoint has no classifier: strict, never random
