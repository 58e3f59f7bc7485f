"""PyTorch .bin files read without torch (refimpl.formats.torch_pickle): every storage type, both torch.save
formats, views, strides and offsets bit for bit against torch itself; sharded indexes; and hostile or broken
pickles refused (nothing they ask for ever runs: each payload would create a marker file)."""

import json
import os
import pickle
import shutil
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

import refimpl
from refimpl.errors import CheckpointError
from refimpl.formats import torch_pickle

WEIGHTS = Path(__file__).resolve().parent.parent / "weights"
TINY = WEIGHTS / "bert_mlm"


# --- hand-written pickles (no torch needed): a tiny protocol-2 assembler --------------------------------

def g(module, name):
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def s(text):
    raw = text.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw


def i(n):
    if -2**31 <= n < 2**31:
        return b"J" + struct.pack("<i", n)
    return b"\x8a\x08" + struct.pack("<q", n)  # LONG1


def tup(*items):
    return b"(" + b"".join(items) + b"t"


def storage_pid(key, numel, stype="FloatStorage", legacy=False):
    fields = [s("storage"), g("torch", stype), s(key), s("cpu"), i(numel)] + ([b"N"] if legacy else [])
    return tup(*fields) + b"Q"


def rebuild(pid, offset, size, stride):
    return (g("torch._utils", "_rebuild_tensor_v2")
            + tup(pid, i(offset), tup(*map(i, size)), tup(*map(i, stride)), b"\x89", g("collections", "OrderedDict")
                  + b")R") + b"R")


def state_dict_pickle(entries):
    """``entries``: name -> pickled value bytes; returns a protocol-2 pickle of an OrderedDict."""
    body = b"".join(s(k) + v for k, v in entries.items())
    return b"\x80\x02" + g("collections", "OrderedDict") + b")R(" + body + b"u."


def write_zip(path, data_pkl, records=None, archive="archive", compress=zipfile.ZIP_STORED, byteorder=b"little"):
    with zipfile.ZipFile(path, "w", compression=compress) as z:
        z.writestr(f"{archive}/data.pkl", data_pkl)
        if byteorder is not None:
            z.writestr(f"{archive}/byteorder", byteorder)
        for key, raw in (records or {}).items():
            z.writestr(f"{archive}/data/{key}", raw)
        z.writestr(f"{archive}/version", b"3\n")
    return path


def write_legacy(path, obj_pkl, keys, storages):
    """A legacy torch.save file: magic, protocol, sys info, object, keys, then each storage (count + bytes)."""
    out = [pickle.dumps(torch_pickle.MAGIC_NUMBER, 2), pickle.dumps(1001, 2),
           pickle.dumps({"protocol_version": 1001, "little_endian": True}, 2), obj_pkl, pickle.dumps(keys, 2)]
    for count, raw in storages:
        out.append(struct.pack("<q", count) + raw)
    Path(path).write_bytes(b"".join(out))
    return path


def test_handwritten_zip_and_legacy_files_read_without_torch(tmp_path):
    x = np.arange(12, dtype=np.float32)
    pkl = state_dict_pickle({
        "w": rebuild(storage_pid("0", 12), 0, (3, 4), (4, 1)),
        "t": rebuild(storage_pid("0", 12), 1, (4, 2), (1, 4)),  # a strided view at an offset
    })
    out = torch_pickle.load(write_zip(tmp_path / "a.bin", pkl, {"0": x.tobytes()}, archive="any_name"))
    np.testing.assert_array_equal(out["w"], x.reshape(3, 4))
    np.testing.assert_array_equal(out["t"], np.lib.stride_tricks.as_strided(x[1:], (4, 2), (4, 16)))
    legacy = state_dict_pickle({"w": rebuild(storage_pid("0", 12, legacy=True), 2, (10,), (1,))})
    out = torch_pickle.load(write_legacy(tmp_path / "b.bin", legacy, ["0"], [(12, x.tobytes())]))
    np.testing.assert_array_equal(out["w"], x[2:])


def test_big_endian_zip_is_swapped_to_native(tmp_path):
    x = np.array([1.5, -2.25, 3e-8], dtype=np.float32)
    pkl = state_dict_pickle({"w": rebuild(storage_pid("0", 3), 0, (3,), (1,))})
    out = torch_pickle.load(write_zip(tmp_path / "a.bin", pkl, {"0": x.astype(">f4").tobytes()}, byteorder=b"big"))
    assert out["w"].dtype == np.float32 and out["w"].dtype.isnative
    np.testing.assert_array_equal(out["w"], x)


# --- what a hostile or broken file cannot do ---------------------------------------------------------------

def _payloads(marker: Path):
    """Pickles that would create ``marker`` if anything in them ran, one per way a pickle can call code."""
    cmd = f"touch {marker}"
    py = f"open({str(marker)!r}, 'w').close()"
    return {
        "GLOBAL+REDUCE os.system": b"\x80\x02" + g("os", "system") + tup(s(cmd)) + b"R.",
        "GLOBAL+REDUCE posix.system": b"\x80\x02" + g("posix", "system") + tup(s(cmd)) + b"R.",
        "STACK_GLOBAL eval": b"\x80\x04" + s("builtins") + s("eval") + b"\x93" + tup(s(py)) + b"R.",
        "STACK_GLOBAL exec": b"\x80\x04" + s("builtins") + s("exec") + b"\x93" + tup(s(py)) + b"R.",
        "INST subprocess.Popen": b"(" + b"(" + s("touch") + s(str(marker)) + b"l" + b"isubprocess\nPopen\n.",
        "OBJ os.system": b"(" + g("os", "system") + s(cmd) + b"o.",
        "NEWOBJ subprocess.Popen": b"\x80\x02" + g("subprocess", "Popen") + tup(b"(" + s("touch") + s(str(marker))
                                                                              + b"l") + b"\x81.",
        "BUILD state holding a call": b"\x80\x02" + g("collections", "OrderedDict") + b")R" + b"}" + s("x")
                                      + g("os", "system") + tup(s(cmd)) + b"R" + b"sb.",
        "persistent id holding a call": b"\x80\x02" + tup(s("storage"), g("os", "system") + tup(s(cmd)) + b"R",
                                                          s("0"), s("cpu"), i(1)) + b"Q.",
        "persistent id of a module": b"\x80\x02" + tup(s("module"), s("os"), s("x"), s("y")) + b"Q.",
        "persistent id used as a callable": b"\x80\x02" + storage_pid("0", 1) + tup(s(cmd)) + b"R.",
        "state-dict global used as a callable": b"\x80\x02" + g("torch", "FloatStorage") + tup(s(cmd)) + b"R.",
        "extension registry": b"\x80\x02\x82\x01" + tup(s(cmd)) + b"R.",
        "memo index bomb": b"\x80\x02" + s("x") + b"r" + struct.pack("<I", 2**31) + b".",
        "BINBYTES8 length bomb": b"\x80\x04\x8e" + struct.pack("<Q", 2**60) + b"xx.",
        "truncated": b"\x80\x02" + g("collections", "OrderedDict"),
    }


@pytest.mark.parametrize("container", ["zip", "legacy"])
def test_hostile_pickles_are_refused_and_nothing_runs(tmp_path, container):
    marker = tmp_path / "MARKER"
    for name, payload in _payloads(marker).items():
        path = tmp_path / f"{name.replace(' ', '_')}.bin"
        if container == "zip":
            write_zip(path, payload, {"0": b"\0" * 4})
        else:
            write_legacy(path, payload, [], [])
        with pytest.raises(CheckpointError) as err:
            torch_pickle.load(path)
        message = str(err.value)
        assert str(path) in message, name
        if "system" in name or "eval" in name or "exec" in name or "Popen" in name:
            assert any(x in message for x in ("os.system", "posix.system", "builtins.eval", "builtins.exec",
                                              "subprocess.Popen")), (name, message)
            assert "refused" in message and "nothing from the file was imported or run" in message, (name, message)
        assert not marker.exists(), f"{name}: the payload ran"


def test_namespace_is_allowed_only_for_fairseq(tmp_path):
    ns = b"\x80\x02" + g("argparse", "Namespace") + b")\x81" + b"}" + s("arch") + s("roberta_base") + b"sb."
    path = write_zip(tmp_path / "a.bin", ns)
    with pytest.raises(CheckpointError, match="global argparse.Namespace.*allowed only when read as fairseq"):
        torch_pickle.load(path)
    assert torch_pickle.load(path, allow_namespace=True).arch == "roberta_base"


def test_claims_larger_than_the_file_are_refused_before_mapping(tmp_path):
    x = np.arange(4, dtype=np.float32).tobytes()
    cases = {
        "record shorter than the storage claims": (
            state_dict_pickle({"w": rebuild(storage_pid("0", 10**12), 0, (4,), (1,))}), {"0": x},
            r"storage '0' claims 1000000000000 elements of torch.FloatStorage .* but its record holds 16 bytes"),
        "tensor beyond its storage": (
            state_dict_pickle({"w": rebuild(storage_pid("0", 4), 1, (2, 3), (3, 1))}), {"0": x},
            r"size \[2, 3\], stride \[3, 1\], offset 1 reaches element 6 of a torch.FloatStorage of 4 elements"),
        "missing record": (state_dict_pickle({"w": rebuild(storage_pid("7", 4), 0, (4,), (1,))}), {"0": x},
                           r"no record archive/data/7"),
        "negative size": (state_dict_pickle({"w": rebuild(storage_pid("0", 4), 0, (-1,), (1,))}), {"0": x},
                          r"size -1; expected an integer >= 0"),
        "not a state dict": (b"\x80\x02]" + s("x") + b"a.", {}, r"holds a list, not a state dict"),
    }
    for name, (pkl, records, pattern) in cases.items():
        path = write_zip(tmp_path / f"{len(name)}.bin", pkl, records)
        with pytest.raises(CheckpointError, match=pattern):
            torch_pickle.read_state_dict(path)
    deflated = write_zip(tmp_path / "deflated.bin", state_dict_pickle({}), compress=zipfile.ZIP_DEFLATED)
    with pytest.raises(CheckpointError, match="is compressed"):
        torch_pickle.load(deflated)
    legacy = state_dict_pickle({"w": rebuild(storage_pid("0", 10**12, legacy=True), 0, (4,), (1,))})
    path = write_legacy(tmp_path / "legacy.bin", legacy, ["0"], [(10**12, x)])
    with pytest.raises(CheckpointError, match=r"storage '0' claims 1000000000000 elements .* the file is"):
        torch_pickle.load(path)
    path.write_bytes(path.read_bytes()[:60])
    with pytest.raises(CheckpointError, match="truncated"):
        torch_pickle.load(path)
    (tmp_path / "empty.bin").write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        torch_pickle.load(tmp_path / "empty.bin")
    (tmp_path / "text.bin").write_bytes(b"hello world")
    with pytest.raises(CheckpointError, match="neither a zip archive nor a pickle"):
        torch_pickle.load(tmp_path / "text.bin")


def test_shard_names_outside_the_directory_are_refused(tmp_path):
    outside = tmp_path / "outside.bin"
    write_zip(outside, state_dict_pickle({}))
    d = tmp_path / "ckpt"
    d.mkdir()
    shutil.copy(TINY / "config.json", d / "config.json")
    for shard in ["../outside.bin", str(outside)]:
        (d / "pytorch_model.bin.index.json").write_text(json.dumps({"weight_map": {"w": shard}}))
        with pytest.raises(CheckpointError, match="outside the checkpoint directory"):
            refimpl.BertForMaskedLM.from_pretrained(d)


# --- against torch ---------------------------------------------------------------------------------------

DTYPES = ["float32", "float64", "float16", "bfloat16", "int64", "int32", "int16", "int8", "uint8", "bool"]


def _torch_state_dict(torch):
    gen = torch.Generator().manual_seed(0)
    sd = {}
    for name in DTYPES:
        dt = getattr(torch, name)
        base = torch.randn(5, 7, generator=gen) * 100
        t = base.to(dt) if name != "bool" else base > 0
        sd[f"{name}.full"] = t
        sd[f"{name}.transposed"] = t.t()  # shares t's storage, non-contiguous
        sd[f"{name}.column"] = t[:, 3]  # a view at an offset, stride 7
        sd[f"{name}.slice"] = t[1:4, 2:6]  # offset and two strides
        sd[f"{name}.empty"] = t[:0]
        sd[f"{name}.scalar"] = t[2, 2]  # 0-d
    sd["expanded"] = torch.arange(9).expand(4, -1)  # stride 0, as BERT's position_ids buffer
    sd["float32.nonfinite"] = torch.tensor([float("nan"), float("inf"), -0.0, 1e-45])
    sd["param"] = torch.nn.Parameter(torch.ones(3))
    return sd


def _expected(torch, t):
    t = t.detach()
    return t.to(torch.float32).numpy() if t.dtype == torch.bfloat16 else t.numpy()


@pytest.mark.parity
@pytest.mark.parametrize("zipfile_format", [True, False], ids=["zip", "legacy"])
def test_every_dtype_view_and_stride_equals_torch_bit_for_bit(tmp_path, zipfile_format):
    torch = pytest.importorskip("torch")
    sd = _torch_state_dict(torch)
    torch.save(sd, tmp_path / "sd.bin", _use_new_zipfile_serialization=zipfile_format)
    out = torch_pickle.load(tmp_path / "sd.bin")
    assert list(out) == list(sd)
    for name, t in sd.items():
        want = _expected(torch, t)
        got = out[name]
        assert got.dtype == want.dtype and got.shape == want.shape, name
        assert got.tobytes() == np.ascontiguousarray(want).tobytes(), name  # bit for bit (NaN, -0.0 included)


@pytest.mark.parity
@pytest.mark.parametrize("layout", ["zip", "legacy", "sharded"])
def test_pytorch_bin_loads_like_its_safetensors_copy(tmp_path, layout):
    torch = pytest.importorskip("torch")
    from safetensors.torch import load_file

    sd = load_file(str(TINY / "model.safetensors"))
    d = tmp_path / layout
    d.mkdir()
    shutil.copy(TINY / "config.json", d / "config.json")
    if layout == "sharded":
        names = sorted(sd)
        halves = {"pytorch_model-00001-of-00002.bin": names[::2], "pytorch_model-00002-of-00002.bin": names[1::2]}
        for fname, group in halves.items():
            torch.save({k: sd[k] for k in group}, d / fname)
        weight_map = {k: f for f, group in halves.items() for k in group}
        (d / "pytorch_model.bin.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    else:
        torch.save(sd, d / "pytorch_model.bin", _use_new_zipfile_serialization=layout == "zip")
    model = refimpl.BertForMaskedLM.from_pretrained(d)
    ref = refimpl.BertForMaskedLM.from_pretrained(TINY)
    assert model.load_report["format"] == "pytorch_bin" and ref.load_report["format"] == "safetensors"
    for name, arr in ref.state_dict().items():
        assert model.state_dict()[name].tobytes() == arr.tobytes(), name
    ids = np.array([[3, 4, 5, 6, 7]])
    np.testing.assert_array_equal(model(input_ids=ids).logits, ref(input_ids=ids).logits)


@pytest.mark.parity
def test_real_torch_files_with_hostile_globals_are_refused(tmp_path):
    torch = pytest.importorskip("torch")
    marker = tmp_path / "MARKER"

    class Evil:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    for zipfile_format in (True, False):
        torch.save({"w": torch.ones(2), "x": Evil()}, tmp_path / "evil.bin",
                   _use_new_zipfile_serialization=zipfile_format)
        with pytest.raises(CheckpointError, match=r"global (os|posix)\.system"):
            torch_pickle.load(tmp_path / "evil.bin")
        assert not marker.exists()
