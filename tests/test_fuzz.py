"""Bounded fuzzing (issue 12): the safetensors reader against the safetensors library (accept exactly what
it accepts, the same tensors), the index parser, every JSON file refimpl reads, the tokenizer call path
and byte-level BPE against its textbook form. Each target runs a few seconds here; ``python tools/fuzz.py``
runs them longer (REFIMPL_FUZZ_EXAMPLES sets the examples per target).

Every target asserts the same thing: the input is either handled or refused with a refimpl error
(``RefimplError``); never a raw Python exception, a crash or a wrong answer."""

import json
import os
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from safetensors import safe_open

import refimpl
from refimpl.checkpoint import DTYPE_BITS, parse_safetensors_header, read_safetensors
from refimpl.errors import RefimplError
from refimpl.tokenizers.roberta import bpe, bpe_rescan

EXAMPLES = int(os.environ.get("REFIMPL_FUZZ_EXAMPLES", "0")) or None
WEIGHTS = Path(__file__).resolve().parent.parent / "weights"
TINY = WEIGHTS / "bert_model_absolute"


def fuzz(default):
    return settings(max_examples=EXAMPLES or default, deadline=None, derandomize=EXAMPLES is None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                           HealthCheck.data_too_large, HealthCheck.filter_too_much])


# --- the safetensors header: refimpl's parser against the library ---------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 2 ** 65) | st.floats(allow_nan=False) | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4),
    max_leaves=12,
)
small = st.integers(0, 12)
dtypes = st.sampled_from(sorted(DTYPE_BITS) + ["f32", "F31"])


@st.composite
def headers(draw):
    """(header bytes, data bytes): mostly well-formed tilings, then mutated in the ways files go wrong."""
    n = draw(st.integers(0, 4))
    entries, offset = {}, 0
    for i in range(n):
        dtype = draw(st.sampled_from(["F32", "F16", "BF16", "U8", "I64", "BOOL", "F64", "I8"]))
        shape = draw(st.lists(st.integers(0, 4), max_size=3))
        size = int(np.prod(shape)) * DTYPE_BITS[dtype] // 8
        entries[f"t{i}"] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    data = bytes(draw(st.binary(min_size=offset, max_size=offset)))
    mutation = draw(st.sampled_from(["none", "offsets", "shape", "dtype", "extra", "trailing", "truncate",
                                     "metadata", "field", "duplicate", "value", "raw"]))
    names = sorted(entries)
    if mutation == "offsets" and names:
        entries[draw(st.sampled_from(names))]["data_offsets"] = draw(
            st.lists(st.integers(-1, offset + 3) | st.floats(0, 10), min_size=0, max_size=3))
    elif mutation == "shape" and names:
        entries[draw(st.sampled_from(names))]["shape"] = draw(
            st.lists(st.integers(-1, 5) | st.floats(0, 5) | st.booleans(), max_size=3) | st.text(max_size=3))
    elif mutation == "dtype" and names:
        entries[draw(st.sampled_from(names))]["dtype"] = draw(dtypes | json_values)
    elif mutation == "extra" and names:
        entries[draw(st.sampled_from(names))][draw(st.text(max_size=5))] = draw(json_values)
    elif mutation == "trailing":
        data += draw(st.binary(min_size=1, max_size=8))
    elif mutation == "truncate" and data:
        data = data[: draw(st.integers(0, len(data) - 1))]
    elif mutation == "metadata":
        entries["__metadata__"] = draw(json_values | st.dictionaries(st.text(max_size=3), st.text(max_size=3)))
    elif mutation == "field" and names:
        del entries[draw(st.sampled_from(names))][draw(st.sampled_from(["dtype", "shape", "data_offsets"]))]
    elif mutation == "value" and names:
        entries[draw(st.sampled_from(names))] = draw(json_values)
    text = json.dumps(entries)
    if mutation == "duplicate" and names:
        name = draw(st.sampled_from(names))
        text = text[:-1] + (", " if len(text) > 2 else "") + f'"{name}": ' + json.dumps(entries[name]) + "}"
    raw = text.encode()
    if mutation == "raw":
        raw = draw(st.sampled_from([b" " + raw, raw + b"  ", raw + b"\0", b"\xef\xbb\xbf" + raw, text.encode("utf-16"),
                                    raw.replace(b"[", b"[[", 1), raw.replace(b"0", b"-0", 1),
                                    raw.replace(b"}", b",}", 1), raw[: max(len(raw) - 1, 0)]]))
    return raw, data


def _library(path):
    try:
        with safe_open(str(path), framework="numpy") as f:
            return {k: f for k in f.keys()} is not None
    except Exception:  # noqa: BLE001 - any refusal
        return False


@fuzz(300)
@given(case=headers())
def test_header_parser_accepts_exactly_what_the_library_accepts(tmp_path, case):
    raw, data = case
    path = tmp_path / "f.safetensors"
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)
    theirs = _library(path)
    try:
        parse_safetensors_header(raw, len(data))
        ours = True
    except RefimplError:
        ours = False
    assert ours == theirs, (raw[:300], len(data))


@fuzz(150)
@given(case=headers())
def test_reader_gives_the_library_tensors(tmp_path, case):
    raw, data = case
    path = tmp_path / "f.safetensors"
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)
    try:
        ours = read_safetensors(path)
    except RefimplError:
        return
    entries, _ = parse_safetensors_header(raw, len(data))
    with safe_open(str(path), framework="numpy") as f:
        for name in f.keys():
            if entries[name][0] == "BF16":  # numpy has no bfloat16: the library cannot give it; refimpl widens it
                bits = np.frombuffer(data[entries[name][2]:entries[name][3]], np.uint16).reshape(entries[name][1])
                assert np.array_equal(ours[name].view(np.uint32) >> 16, bits), name
                continue
            want = f.get_tensor(name)
            assert ours[name].dtype == want.dtype and np.array_equal(ours[name], want, equal_nan=True), name
        assert sorted(ours) == sorted(f.keys())


@fuzz(100)
@given(blob=st.binary(max_size=200))
def test_arbitrary_bytes_are_refused_cleanly(tmp_path, blob):
    path = tmp_path / "f.safetensors"
    path.write_bytes(blob)
    try:
        read_safetensors(path)
    except RefimplError:
        pass


# --- the index and every JSON file refimpl reads ----------------------------------------------------------

shard_names = st.sampled_from(["model.safetensors.x", "../model.safetensors", "/etc/passwd", "", "a\x00b", "sub/x",
                               "shard.safetensors"]) | st.text(max_size=8)


@fuzz(80)
@given(index=json_values | st.fixed_dictionaries({"weight_map": st.dictionaries(st.text(max_size=20), shard_names,
                                                                                 max_size=4) | json_values}))
def test_index_parser(tmp_path, index):
    d = tmp_path / "ckpt"
    d.mkdir(exist_ok=True)
    shutil.copy(TINY / "config.json", d / "config.json")
    shutil.copy(TINY / "model.safetensors", d / "shard.safetensors")
    (d / "model.safetensors.index.json").write_text(json.dumps(index))
    try:
        refimpl.BertModel.from_pretrained(d)
    except RefimplError:
        pass


JSON_FILES = ["config.json", "generation_config.json", "tokenizer_config.json", "special_tokens_map.json",
              "tokenizer.json", "modules.json", "1_Pooling/config.json", "sentence_bert_config.json"]


def _load_everything(d):
    """What refimpl reads from a checkpoint directory: the model (config.json), its generation config, the
    tokenizer (every tokenizer file), the sentence-transformers pooling files."""
    from refimpl.generation.config import load_generation_config
    from refimpl.pipelines.features import read_sentence_transformers

    for load in (lambda: refimpl.BertModel.from_pretrained(d), lambda: refimpl.AutoTokenizer.from_pretrained(d),
                 lambda: read_sentence_transformers(d),
                 lambda: (d / "generation_config.json").is_file() and load_generation_config(d / "generation_config.json")):
        try:
            load()
        except RefimplError:
            pass


@fuzz(60)
@given(name=st.sampled_from(JSON_FILES), value=json_values | st.dictionaries(
    st.sampled_from(["do_lower_case", "model_max_length", "unk_token", "additional_special_tokens", "vocab_size",
                     "num_hidden_layers", "hidden_act", "is_decoder", "model", "normalizer", "num_beams",
                     "eos_token_id", "max_length", "pooling_mode_mean_tokens", "path", "type", "tokenizer_class",
                     "layer_norm_eps", "id2label"]), json_values, max_size=5))
def test_every_json_file(tmp_path, name, value):
    d = tmp_path / "ckpt"
    if not d.exists():
        shutil.copytree(TINY, d)
        (d / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b"]) + "\n")
        (d / "modules.json").write_text(json.dumps([{"idx": 1, "name": "1", "path": "1_Pooling",
                                                      "type": "sentence_transformers.models.Pooling"}]))
        (d / "1_Pooling").mkdir()
    target = d / name
    saved = target.read_bytes() if target.is_file() else None
    target.write_text(json.dumps(value))
    try:
        _load_everything(d)
    finally:
        if saved is None:
            target.unlink()
        else:
            target.write_bytes(saved)


# --- the tokenizer call path ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tokenizers(tmp_path_factory):
    d = tmp_path_factory.mktemp("tok")
    (d / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world", "h",
                                            "##e", "##l", "##o", "w", "a"]) + "\n")
    r = tmp_path_factory.mktemp("bpe")
    (r / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(
        ["<s>", "</s>", "<unk>", "<pad>", "<mask>", "h", "e", "l", "o", "he", "ll", "Ġ", "Ġh"])}))
    (r / "merges.txt").write_text("#version: 0.2\nh e\nl l\nĠ h\n")
    return [refimpl.BertTokenizer.from_pretrained(d), refimpl.BertTokenizer.from_pretrained(d, model_max_length=12),
            refimpl.RobertaTokenizer.from_pretrained(r)]


texts = st.text(max_size=30) | st.lists(st.text(max_size=12), max_size=3)
options = st.fixed_dictionaries({}, optional={
    "padding": st.sampled_from([True, False, "longest", "max_length", "do_not_pad", "yes", None, 3]),
    "truncation": st.sampled_from([True, False, "longest_first", "only_first", "only_second", "x", None]),
    "max_length": st.none() | st.integers(-2, 20) | st.sampled_from(["5", 2.5, 10 ** 10, True]),
    "pad_to_multiple_of": st.none() | st.integers(-1, 9) | st.sampled_from(["4", 2.0]),
    "padding_side": st.sampled_from(["left", "right", "up", None, 1]),
    "return_tensors": st.sampled_from([None, "np", "pt"]),
    "add_special_tokens": st.sampled_from([True, False, "no", None]),
    "return_offsets_mapping": st.booleans(),
    "return_special_tokens_mask": st.booleans(),
})


@fuzz(300)
@given(which=st.integers(0, 2), text=texts, pair=st.none() | texts, kwargs=options)
def test_tokenizer_call_path(tokenizers, which, text, pair, kwargs):
    tok = tokenizers[which]
    try:
        out = tok(text, pair, **kwargs)
    except RefimplError:
        return
    except NotImplementedError:  # transformers' own exception for offsets from a Python tokenizer
        return
    ids = out["input_ids"]
    rows = ids if isinstance(ids, np.ndarray) or (ids and isinstance(ids[0], list)) else [ids]
    for row in rows:
        assert isinstance(tok.decode(row), str)


# --- BPE: the priority-queue merge against the rescan ------------------------------------------------------

@st.composite
def merge_tables(draw):
    alphabet = "".join(draw(st.lists(st.sampled_from("abcdé🙂"), min_size=1, max_size=4, unique=True)))
    tokens, ranks = list(alphabet), {}
    for _ in range(draw(st.integers(0, 20))):
        pair = (draw(st.sampled_from(tokens)), draw(st.sampled_from(tokens)))
        if pair not in ranks:
            ranks[pair] = None
            tokens.append(pair[0] + pair[1])
    order = draw(st.permutations(list(ranks)))  # any order: a new pair may outrank the pairs it came from
    return alphabet, {pair: r for r, pair in enumerate(order)}


@fuzz(400)
@given(table=merge_tables(), data=st.data())
def test_bpe_equals_the_rescan(table, data):
    alphabet, ranks = table
    word = data.draw(st.text(alphabet=alphabet, max_size=40))
    assert bpe(word, ranks) == bpe_rescan(word, ranks)
