"""Hostile or broken checkpoint files (issue 12's hardening): a loaded model never crashes or changes
because its file changed; every file a checkpoint names lies inside its directory; the safetensors header
is read by the format's own rules, accepting exactly what the safetensors library accepts."""

import json
import os
import shutil
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from safetensors import safe_open

import refimpl
from refimpl.checkpoint import parse_safetensors_header, read_safetensors
from refimpl.errors import CheckpointError, CheckpointNotFoundError

WEIGHTS = Path(__file__).resolve().parent.parent / "weights"
TINY = WEIGHTS / "bert_model_absolute"  # vocab 99, 4 heads, 2 layers
IDS = np.array([[2, 7, 11, 5]])


# --- crashes: the file changes after loading ---------------------------------------------------------


def _copy(tmp_path, src=TINY):
    d = tmp_path / "ckpt"
    shutil.copytree(src, d)
    return d


@pytest.mark.parametrize("change", ["truncate", "rewrite", "delete"])
def test_model_survives_its_file_changing(tmp_path, change):
    """Truncating the file used to kill the process (SIGBUS) on the next forward: a child process loads,
    the file changes, the child runs the forward again and prints whether the outputs are unchanged."""
    d = _copy(tmp_path)
    script = textwrap.dedent(f"""
        import os, numpy as np, refimpl
        from pathlib import Path
        p = Path({str(d / "model.safetensors")!r})
        m = refimpl.BertModel.from_pretrained(p.parent)
        ids = np.array({IDS.tolist()})
        before = m(input_ids=ids).last_hidden_state.copy()
        if {change!r} == "truncate":
            os.truncate(p, 8)
        elif {change!r} == "rewrite":
            n = p.stat().st_size
            with open(p, "r+b") as f:  # same inode, every data byte changed in place
                f.seek(4096); f.write(b"\\x7f" * (n - 4096))
        else:
            p.unlink()
        after = m(input_ids=ids).last_hidden_state
        print("same" if np.array_equal(before, after) else "changed")
    """)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, f"child died with {run.returncode}: {run.stderr[-2000:]}"
    assert run.stdout.strip() == "same"


def test_parameters_are_owned_not_mapped():
    model = refimpl.BertModel.from_pretrained(TINY)
    for name, arr in model.params.items():
        base = arr
        while base is not None:
            assert not isinstance(base, np.memmap), name
            base = getattr(base, "base", None)


# --- paths: every file a checkpoint names lies inside its directory ------------------------------------


def _sharded(tmp_path, shard_name, outside_bytes=b"SECRET-FIRST-BYTES-of-another-file"):
    d = tmp_path / "ckpt"
    d.mkdir()
    shutil.copy(TINY / "config.json", d / "config.json")
    tensors = read_safetensors(TINY / "model.safetensors")
    (tmp_path / "secret.safetensors").write_bytes(outside_bytes)
    shutil.copy(TINY / "model.safetensors", tmp_path / "outside.safetensors")  # a valid file outside
    (d / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {k: shard_name for k in tensors}}))
    return d


@pytest.mark.parametrize("shard", ["../outside.safetensors", "../secret.safetensors", "ABSOLUTE", "sub/../../outside.safetensors"])
def test_index_shard_outside_the_directory_is_refused(tmp_path, shard):
    if shard == "ABSOLUTE":
        shard = str(tmp_path / "outside.safetensors")
    d = _sharded(tmp_path, shard)
    with pytest.raises(CheckpointError, match="lies outside the checkpoint directory") as e:
        refimpl.BertModel.from_pretrained(d)
    assert "SECRET" not in str(e.value) and "nothing was read" in str(e.value)


def test_index_shard_symlink_out_of_the_directory_is_refused(tmp_path):
    d = _sharded(tmp_path, "link.safetensors")
    os.symlink(tmp_path / "outside.safetensors", d / "link.safetensors")
    with pytest.raises(CheckpointError, match="'link.safetensors', which lies outside"):
        refimpl.BertModel.from_pretrained(d)


@pytest.mark.parametrize("index, message", [
    ({"weight_map": {"a": 3}}, "no 'weight_map' object of tensor name -> shard file name"),
    ({"weight_map": ["x"]}, "no 'weight_map'"),
    ([1, 2], "no 'weight_map'"),
    ({"weight_map": {"a": ""}}, "names the file '', which is not a file name"),
    ({"weight_map": {"a": "missing.safetensors"}}, "lists the shard 'missing.safetensors', which is not in"),
])
def test_malformed_index(tmp_path, index, message):
    d = tmp_path / "ckpt"
    d.mkdir()
    shutil.copy(TINY / "config.json", d / "config.json")
    (d / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises((CheckpointError, CheckpointNotFoundError), match=message):
        refimpl.BertModel.from_pretrained(d)


def test_deeply_nested_index_is_a_checkpoint_error(tmp_path):
    d = tmp_path / "ckpt"
    d.mkdir()
    shutil.copy(TINY / "config.json", d / "config.json")
    (d / "model.safetensors.index.json").write_text("[" * 200000 + "]" * 200000)
    with pytest.raises(CheckpointError, match="is not valid JSON .*nested too deeply"):
        refimpl.BertModel.from_pretrained(d)


def test_tensor_in_two_shards_is_refused(tmp_path):
    d = tmp_path / "ckpt"
    d.mkdir()
    shutil.copy(TINY / "config.json", d / "config.json")
    shutil.copy(TINY / "model.safetensors", d / "a.safetensors")
    shutil.copy(TINY / "model.safetensors", d / "b.safetensors")
    names = list(read_safetensors(TINY / "model.safetensors"))
    (d / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {
        **{k: "a.safetensors" for k in names[:3]}, **{k: "b.safetensors" for k in names[3:]}}}))
    with pytest.raises(CheckpointError, match="is in two shards"):
        refimpl.BertModel.from_pretrained(d)


# --- strict parsing: the safetensors header ------------------------------------------------------------

F8 = np.arange(2, dtype=np.float32).tobytes()
T = '"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}'


def blob(header, data=F8):
    raw = header.encode("utf-8") if isinstance(header, str) else header
    return struct.pack("<Q", len(raw)) + raw + data


# (name, file bytes, refimpl's message or None where the file is valid)
CASES = [
    ("valid", blob("{" + T + "}"), None),
    ("duplicate name, same entry (the library keeps the last)", blob("{" + T + "," + T + "}"), None),
    ("duplicate name, other bytes", blob('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},'
                                         '"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}'),
     r"tensor 'a' \(F32, shape \[1\]\) claims bytes \[4, 8\) .* the tensors before it end at byte 0"),
    ("overlap", blob("{" + T + ',"b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}'), "without overlap or gap"),
    ("gap", blob('{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}'), "without overlap or gap"),
    ("data after the last tensor", blob('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}'),
     "the tensors cover 4 bytes of the data section, but it holds 8 bytes"),
    ("truncated", blob("{" + T + "}", F8[:6]), "the tensors cover 8 bytes of the data section, but it holds 6"),
    ("shape a string", blob('{"a":{"dtype":"F32","shape":"12","data_offsets":[0,8]}}'),
     r"tensor 'a': shape '12' is not a list of non-negative integers"),
    ("shape a float", blob('{"a":{"dtype":"F32","shape":[4.9],"data_offsets":[0,8]}}'), r"shape \[4.9\] is not a list"),
    ("shape 2.0", blob('{"a":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}}'), r"shape \[2.0\] is not a list"),
    ("shape negative", blob('{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}'), "not a list of non-negative"),
    ("shape true", blob('{"a":{"dtype":"F32","shape":[true,2],"data_offsets":[0,8]}}'), "not a list of non-negative"),
    ("offsets -0", blob('{"a":{"dtype":"F32","shape":[2],"data_offsets":[-0,8]}}'), "data_offsets"),
    ("three offsets", blob('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8,8]}}'), "list of two non-negative"),
    ("offset past 64 bits", blob('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,18446744073709551624]}}'),
     "data_offsets"),
    ("UTF-16 header", blob(("{" + T + "}").encode("utf-16")),
     "the header is not UTF-8"),
    ("byte-order mark", blob(b"\xef\xbb\xbf{" + T.encode() + b"}"), "not valid JSON"),
    ("NUL padding", blob(("{" + T + "}").encode() + b"\0\0"), "not valid JSON"),
    ("trailing spaces", blob("{" + T + "}   "), None),
    ("leading whitespace", blob(" \n{" + T + "}"), None),
    ("NaN", blob("{" + T + ',"x":NaN}'), "not valid JSON"),
    ("lone surrogate", blob('{"\\ud800":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}'), "not valid JSON"),
    ("surrogate pair", blob('{"\\ud83d\\ude00":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}'), None),
    ("too deep", blob("{" + T.replace("]}", '],"x":' + "[" * 126 + "]" * 126 + "}") + "}"), "nests deeper than 127|not valid"),
    ("deep but allowed", blob("{" + T.replace("]}", '],"x":' + "[" * 125 + "]" * 125 + "}") + "}"), None),
    ("very deep (Python's RecursionError)", blob('{"x":' + "[" * 100000 + "]" * 100000 + "}"), "deeper than 127"),
    ("unknown dtype", blob('{"a":{"dtype":"f32","shape":[2],"data_offsets":[0,8]}}'), "dtype 'f32' is not a safetensors dtype"),
    ("dtype field twice", blob('{"a":{"dtype":"F32","dtype":"F32","shape":[2],"data_offsets":[0,8]}}'),
     "field 'dtype' appears twice"),
    ("missing field", blob('{"a":{"dtype":"F32","shape":[2]}}'), "missing field 'data_offsets'"),
    ("extra field", blob('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":{"y":1}}}'), None),
    ("entry as an array", blob('{"a":["F32",[2],[0,8]]}'), None),
    ("entry null", blob('{"a":null}'), "expected an object with dtype"),
    ("metadata of numbers", blob('{"__metadata__":{"x":1},' + T + "}"), "'__metadata__' must be null or an object of strings"),
    ("metadata twice", blob('{"__metadata__":{},"__metadata__":{},' + T + "}"), "'__metadata__' appears twice"),
    ("metadata null", blob('{"__metadata__":null,' + T + "}"), None),
    ("header an array", blob("[]", b""), "must be a JSON object"),
    ("empty header", struct.pack("<Q", 0), "not valid JSON"),
    ("no tensors", blob("{}", b""), None),
    ("zero-size tensor", blob('{"z":{"dtype":"F32","shape":[0,3],"data_offsets":[0,0]}}', b""), None),
    ("scalar", blob('{"s":{"dtype":"F32","shape":[],"data_offsets":[0,4]}}', F8[:4]), None),
    ("element count past 64 bits", blob('{"a":{"dtype":"F32","shape":[4294967296,4294967296,0],"data_offsets":[0,0]}}', b""),
     "more elements than 64 bits can count"),
    ("unaligned offsets (allowed by the format)", blob('{"u":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},'
                                                       '"f":{"dtype":"F32","shape":[1],"data_offsets":[1,5]}}', F8[:5]), None),
    ("half a byte", blob('{"a":{"dtype":"F4","shape":[3],"data_offsets":[0,2]}}', F8[:2]), "not a whole number of bytes"),
    ("wrong byte count", blob('{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}'), "needs 12 bytes but claims"),
]


def _library_reads(path):
    """What the safetensors library makes of the file: name -> array, or None if it refuses it."""
    try:
        with safe_open(str(path), framework="numpy") as f:
            names = list(f.keys())
            return {k: f.get_tensor(k) for k in names}
    except Exception:  # noqa: BLE001 - any refusal
        return None


@pytest.mark.parametrize("name, data, message", CASES, ids=[c[0] for c in CASES])
def test_safetensors_header_rules(tmp_path, name, data, message):
    """refimpl refuses exactly the files the safetensors library refuses (checked live, here), with a
    message naming the rule, and reads the same tensors from the others."""
    path = tmp_path / "t.safetensors"
    path.write_bytes(data)
    theirs = _library_reads(path)
    if message is None:
        assert theirs is not None, "the case list is wrong: the library refuses this file"
        ours = read_safetensors(path)
        assert sorted(ours) == sorted(theirs)
        for k in ours:
            assert ours[k].dtype == theirs[k].dtype and np.array_equal(ours[k], theirs[k]), k
    else:
        assert theirs is None, "the case list is wrong: the library accepts this file"
        with pytest.raises(CheckpointError, match=message) as e:
            read_safetensors(path)
        assert str(path) in str(e.value)


def test_header_length_beyond_the_file(tmp_path):
    path = tmp_path / "t.safetensors"
    path.write_bytes(struct.pack("<Q", 10 ** 12) + b"{}")
    with pytest.raises(CheckpointError, match=r"header length of 1000000000000 bytes, but the file is 10 bytes"):
        read_safetensors(path)
    path.write_bytes(b"abc")
    with pytest.raises(CheckpointError, match="shorter than its 8-byte header length"):
        read_safetensors(path)


def test_overlapping_entries_allocate_nothing(tmp_path):
    """A 16 MB file whose 1000 entries all claim the same 16 MB (used to be widened to float32 each:
    16 GB): refused by the tiling rule before any tensor is allocated."""
    n = 4 * 2 ** 20
    header = {f"t{i}": {"dtype": "BF16", "shape": [n // 2, 2], "data_offsets": [0, 2 * n]} for i in range(1000)}
    path = tmp_path / "t.safetensors"
    raw = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw)
        f.truncate(8 + len(raw) + 2 * n)
    with pytest.raises(CheckpointError, match="without overlap or gap"):
        read_safetensors(path)


def test_unsupported_dtype_is_named(tmp_path):
    path = tmp_path / "t.safetensors"
    path.write_bytes(blob('{"a":{"dtype":"F8_E4M3","shape":[8],"data_offsets":[0,8]}}'))
    with pytest.raises(CheckpointError, match=r"dtype \['F8_E4M3'\] is not read by refimpl"):
        read_safetensors(path)


def test_parse_header_is_pure():
    entries, metadata = parse_safetensors_header(('{"__metadata__":{"format":"pt"},' + T + "}").encode(), 8)
    assert entries == {"a": ("F32", (2,), 0, 8)} and metadata == {"format": "pt"}
