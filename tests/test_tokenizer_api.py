"""Bad input, file errors, save_pretrained round trips and AutoTokenizer (parity where transformers is used)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from refimpl.errors import CheckpointNotFoundError, InputTypeError, TokenizerError
from refimpl.registry import fetch
from refimpl.tokenizers import AutoTokenizer, BertTokenizer, BertTokenizerLegacy, RobertaTokenizer


@pytest.fixture(scope="module")
def minilm():
    return fetch("all-MiniLM-L6-v2")


@pytest.mark.parametrize("cls", [BertTokenizer, BertTokenizerLegacy])
@pytest.mark.parametrize("bad", [None, 3, 2.5, b"bytes", ["ok", None], [b"x"], [["pre", "split", "words"]]])
def test_non_string_input_is_a_type_error_naming_it(minilm, cls, bad):
    tok = cls.from_pretrained(minilm)
    with pytest.raises(TypeError) as e:
        tok(bad)
    assert type(bad if not isinstance(bad, list) else [x for x in bad if not isinstance(x, str)][0]).__name__ in str(e.value)
    assert isinstance(e.value, InputTypeError)
    with pytest.raises(InputTypeError):
        tok("fine", text_pair=b"bad")
    if bad is not None and not isinstance(bad, list):
        with pytest.raises(InputTypeError):
            tok.tokenize(bad)


def test_missing_and_malformed_files_name_the_file(minilm, tmp_path):
    with pytest.raises(CheckpointNotFoundError, match="nowhere"):
        BertTokenizer.from_pretrained(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="vocab.txt"):
        BertTokenizerLegacy(tmp_path / "vocab.txt")
    (tmp_path / "vocab.txt").write_bytes(b"\xff\xfe[PAD]\n")
    with pytest.raises(TokenizerError, match="vocab.txt"):
        BertTokenizerLegacy.from_pretrained(tmp_path)
    (tmp_path / "vocab.txt").write_text("[PAD]\nhello\n")
    with pytest.raises(TokenizerError, match=r"\[UNK\]"):
        BertTokenizerLegacy.from_pretrained(tmp_path)
    (tmp_path / "vocab.txt").unlink()
    (tmp_path / "tokenizer.json").write_text("{not json")
    with pytest.raises(TokenizerError, match="tokenizer.json"):
        BertTokenizer.from_pretrained(tmp_path)
    (tmp_path / "tokenizer.json").unlink()
    with pytest.raises(TokenizerError):
        AutoTokenizer.from_pretrained(tmp_path)
    (tmp_path / "vocab.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="merges.txt"):
        RobertaTokenizer.from_pretrained(tmp_path)


def test_any_text_never_crashes(minilm):
    tok = BertTokenizer.from_pretrained(minilm)
    legacy = BertTokenizerLegacy.from_pretrained(minilm)
    weird = "".join(chr(c) for c in range(0, 0x3000, 7)) + "\ud800 lone surrogate \udfff" + "x" * 5000
    for t in (tok, legacy):
        ids = t(weird, return_offsets_mapping=t.supports_offsets)["input_ids"]
        assert isinstance(t.decode(ids), str)


def test_return_tensors_np_and_errors(minilm):
    tok = BertTokenizer.from_pretrained(minilm)
    out = tok(["a b c", "d"], padding=True, return_tensors="np", return_offsets_mapping=True)
    assert out["input_ids"].dtype == np.int64 and out["input_ids"].shape == (2, 5)
    assert out["offset_mapping"].shape == (2, 5, 2)
    assert tok("a", return_tensors="np")["input_ids"].shape == (1, 3)
    with pytest.raises(ValueError, match="Unable to create tensor"):
        tok(["a b c", "d"], return_tensors="np")
    with pytest.raises(ValueError, match="multiple of pad_to_multiple_of"):
        tok("a", padding=True, truncation=True, max_length=10, pad_to_multiple_of=8)
    with pytest.raises(NotImplementedError):
        BertTokenizerLegacy.from_pretrained(minilm)("a", return_offsets_mapping=True)


@pytest.mark.parity
@pytest.mark.parametrize("cls_name", ["BertTokenizer", "BertTokenizerLegacy"])
def test_save_pretrained_round_trip(minilm, tmp_path, cls_name):
    transformers = pytest.importorskip("transformers")
    cls = {"BertTokenizer": BertTokenizer, "BertTokenizerLegacy": BertTokenizerLegacy}[cls_name]
    ref_cls = transformers.BertTokenizerFast if cls is BertTokenizer else transformers.BertTokenizer
    ours = cls.from_pretrained(minilm, do_lower_case=False, model_max_length=77)
    ours.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "tokenizer_config.json").read_text())["model_max_length"] == 77
    again, ref = cls.from_pretrained(tmp_path), ref_cls.from_pretrained(tmp_path)
    s = "Héllo WORLD, naïve 中文 [SEP] x"
    assert again(s, "pair") == ours(s, "pair")
    assert dict(ref(s, "pair")) == dict(ours(s, "pair"))
    assert ref.model_max_length == again.model_max_length == 77


@pytest.mark.parity
def test_vocab_txt_only_and_tokenizer_json_only_agree(minilm, tmp_path):
    transformers = pytest.importorskip("transformers")
    for name in ("vocab.txt", "tokenizer.json"):
        d = tmp_path / name.split(".")[0]
        d.mkdir()
        for f in (name, "tokenizer_config.json", "special_tokens_map.json"):
            shutil.copy(minilm / f, d / f)
        ours = AutoTokenizer.from_pretrained(d)
        assert isinstance(ours, BertTokenizer)
        ref = transformers.AutoTokenizer.from_pretrained(d)
        s = "Tokenizer.json or vocab.txt: ÀÉÎ 中文!"
        assert ours(s, return_offsets_mapping=True) == ref(s, return_offsets_mapping=True)
