"""Checkpoint reading: sharded safetensors, bfloat16/float16 storage, configs with transformers' defaults."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import safetensors.numpy

import refimpl
from refimpl.checkpoint import read_safetensors

WEIGHTS = Path(__file__).resolve().parent.parent / "weights"
TINY = WEIGHTS / "bert_mlm"


def test_sharded_checkpoint_equals_single_file(tmp_path):
    tensors = {k: np.array(v) for k, v in read_safetensors(TINY / "model.safetensors").items()}
    names = sorted(tensors)
    shards = [names[: len(names) // 3], names[len(names) // 3: 2 * len(names) // 3], names[2 * len(names) // 3:]]
    weight_map = {}
    for i, group in enumerate(shards):
        fname = f"model-{i + 1:05d}-of-00003.safetensors"
        safetensors.numpy.save_file({k: tensors[k] for k in group}, str(tmp_path / fname))
        weight_map.update({k: fname for k in group})
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    shutil.copy(TINY / "config.json", tmp_path / "config.json")
    ids = np.array([[3, 4, 5, 6]])
    sharded = refimpl.BertForMaskedLM.from_pretrained(tmp_path)(input_ids=ids).logits
    single = refimpl.BertForMaskedLM.from_pretrained(TINY)(input_ids=ids).logits
    np.testing.assert_array_equal(sharded, single)


def test_bfloat16_and_float16_storage_are_widened_exactly(tmp_path):
    x = np.array([1.0, -2.5, 3.140625, 1e-3, 65504.0], dtype=np.float32)
    bf16_bits = (x.view(np.uint32) >> 16).astype(np.uint16)  # exact for these values' top 16 bits
    path = tmp_path / "t.safetensors"
    header = {"b": {"dtype": "BF16", "shape": [5], "data_offsets": [0, 10]},
              "h": {"dtype": "F16", "shape": [5], "data_offsets": [10, 20]}}
    blob = json.dumps(header).encode()
    path.write_bytes(len(blob).to_bytes(8, "little") + blob + bf16_bits.tobytes() + x.astype(np.float16).tobytes())
    t = read_safetensors(path)
    np.testing.assert_array_equal(t["b"], (bf16_bits.astype(np.uint32) << 16).view(np.float32))
    assert t["b"].dtype == np.float32
    np.testing.assert_array_equal(t["h"], x.astype(np.float16))


def test_tensor_outside_file_is_rejected(tmp_path):
    header = {"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}
    blob = json.dumps(header).encode()
    (tmp_path / "bad.safetensors").write_bytes(len(blob).to_bytes(8, "little") + blob + b"\0" * 8)
    with pytest.raises(refimpl.CheckpointError, match=r"the tensors cover 16 bytes of the data section, but it holds 8 bytes"):
        read_safetensors(tmp_path / "bad.safetensors")


@pytest.mark.parity
def test_config_defaults_match_transformers():
    from reference import reference

    _, transformers = reference()
    for ours, theirs in [(refimpl.BertConfig(), transformers.BertConfig()),
                         (refimpl.BertGenerationConfig(), transformers.BertGenerationConfig())]:
        ref = theirs.to_dict()
        for key, value in ours.to_dict().items():
            if key in ref and key not in ("model_type", "id2label", "label2id"):
                assert ref[key] == value, f"{type(ours).__name__}.{key}: refimpl {value!r}, transformers {ref[key]!r}"
