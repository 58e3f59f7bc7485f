"""TensorFlow 1 checkpoints (the tensor-bundle format of ``tf.train.Saver``) read without TensorFlow, and
the names transformers gives Google BERT's variables.

A checkpoint ``<prefix>`` is ``<prefix>.index`` plus ``<prefix>.data-0000k-of-0000n`` shards (``.meta``, the
graph, is not needed). The index is a LevelDB-style SSTable:

- **footer** (last 48 bytes): the metaindex and index block handles (each a varint64 offset and size),
  zero padding, the magic number 0xdb4775248b80fb57 (fixed64, little-endian);
- **block**: entries, then an array of uint32 restart offsets and their count (uint32); each block is
  followed by a 5-byte trailer: compression type (0: none — the bundle writer never compresses) and the
  masked crc32c of block + type byte, which is checked (blocks are small);
- **entry**: varint32 shared key bytes, varint32 unshared bytes, varint32 value length, the unshared key
  suffix, the value; the index block's values are block handles of the data blocks.

Keys are tensor names, sorted; the empty key holds a ``BundleHeaderProto`` (1: num_shards, 2: endianness
0 little / 1 big), every other a ``BundleEntryProto`` (1: dtype, 2: shape — ``TensorShapeProto`` 2: dim
{1: size} —, 3: shard_id, 4: offset, 5: size, 6: crc32c of the bytes, 7: slices). The few fields needed are
decoded by hand (no protobuf dependency). A tensor's bytes are ``size`` bytes at ``offset`` in shard
``shard_id``; they are read into owned memory (never left mapped, as refimpl/checkpoint.py), after checking that they lie inside that shard and that ``size`` is
exactly the shape's element count times the dtype's size. Partitioned (sliced) variables and compressed
tables are refused; string tensors (none in a BERT checkpoint) are skipped and listed. Data crc32c is not
checked (pure-Python crc32c of hundreds of MB is too slow; the index's block checksums are).

Names (``bert_name``), as transformers 4.57.6 ``load_tf_weights_in_bert``: split at ``/``; skip any
variable with a part ``adam_v``, ``adam_m``, ``AdamWeightDecayOptimizer``, ``AdamWeightDecayOptimizer_1``
or ``global_step``; ``layer_3`` -> ``layer.3``; ``kernel``, ``gamma``, ``output_weights`` -> ``weight``;
``beta``, ``output_bias`` -> ``bias``; ``squad`` -> ``classifier``; a last part ending in ``_embeddings``
gets ``.weight``; a ``kernel`` is transposed (TF stores [in, out], torch [out, in]). So
``bert/encoder/layer_0/attention/self/query/kernel`` is ``bert.encoder.layer.0.attention.self.query.weight``
(transposed into a C-contiguous copy, so that a model computes exactly as from its safetensors copy) and ``cls/predictions/output_bias`` is ``cls.predictions.bias``. One addition: the top-level
``output_weights`` / ``output_bias`` of Google's ``run_classifier.py`` become ``classifier.weight`` /
``classifier.bias`` (transformers' walk fails on them).
"""

from __future__ import annotations

import glob
import re
import struct
from pathlib import Path

import numpy as np

from ..errors import CheckpointError, CheckpointNotFoundError
from ..checkpoint import inside_directory
from ._common import CheckpointFile, TensorDict, human

TABLE_MAGIC = 0xDB4775248B80FB57
MAX_INDEX_BYTES = 256 * 1024 * 1024  # an index lists names and offsets: ~100 bytes a tensor
DTYPES = {1: "float32", 2: "float64", 3: "int32", 4: "uint8", 5: "int16", 6: "int8", 9: "int64", 10: "bool",
          14: "bfloat16", 17: "uint16", 19: "float16", 22: "uint32", 23: "uint64"}
DT_STRING = 7
SKIP_PARTS = {"adam_v", "adam_m", "AdamWeightDecayOptimizer", "AdamWeightDecayOptimizer_1", "global_step"}


# --- crc32c (Castagnoli), for the index blocks' trailers ---------------------------------------------------

def _crc_table():
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = _crc_table()


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    table = _CRC_TABLE
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    crc = crc32c(data)
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


# --- varints, protobuf fields, table blocks ----------------------------------------------------------------

def varint(buf: bytes, pos: int, where: str, limit: int = 10) -> tuple[int, int]:
    """Decode a little-endian base-128 varint at ``pos``: (value, position after it)."""
    value = shift = 0
    for k in range(limit):
        if pos >= len(buf):
            raise CheckpointError(f"{where}: a varint runs past the end of its data; the index is corrupt")
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7
    raise CheckpointError(f"{where}: a varint longer than {limit} bytes; the index is corrupt")


def proto_fields(buf: bytes, where: str):
    """(field number, value) of each field of a protobuf message: int for varint / fixed, bytes otherwise."""
    pos = 0
    while pos < len(buf):
        tag, pos = varint(buf, pos, where)
        field, wire = tag >> 3, tag & 7
        if wire == 0:
            value, pos = varint(buf, pos, where)
        elif wire == 1:
            if pos + 8 > len(buf):
                raise CheckpointError(f"{where}: a protobuf field runs past its message; the index is corrupt")
            (value,), pos = struct.unpack_from("<Q", buf, pos), pos + 8
        elif wire == 5:
            if pos + 4 > len(buf):
                raise CheckpointError(f"{where}: a protobuf field runs past its message; the index is corrupt")
            (value,), pos = struct.unpack_from("<I", buf, pos), pos + 4
        elif wire == 2:
            n, pos = varint(buf, pos, where)
            if pos + n > len(buf):
                raise CheckpointError(f"{where}: a protobuf field of {n} bytes runs past its message; corrupt index")
            value, pos = buf[pos:pos + n], pos + n
        else:
            raise CheckpointError(f"{where}: protobuf wire type {wire} (field {field}) is not one a bundle uses")
        yield field, value


def _signed64(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _block(data: bytes, handle: bytes, where: str) -> bytes:
    offset, pos = varint(handle, 0, where)
    size, _ = varint(handle, pos, where)
    if offset + size + 5 > len(data):
        raise CheckpointError(f"{where}: a table block claims bytes [{offset}, {offset + size + 5}) of a "
                              f"{len(data)}-byte index; the file is truncated or corrupt")
    block, kind = data[offset:offset + size], data[offset + size]
    (stored,) = struct.unpack_from("<I", data, offset + size + 1)
    if kind != 0:
        raise CheckpointError(f"{where}: a table block is compressed (type {kind}); TensorFlow's bundle writer "
                              "never compresses, so this is not a tensor-bundle index")
    if masked_crc32c(block + bytes([kind])) != stored:
        raise CheckpointError(f"{where}: a table block at byte {offset} fails its crc32c check; the index is corrupt")
    return block


def block_entries(block: bytes, where: str):
    """(key, value) of each entry of a table block, keys rebuilt from their shared prefixes."""
    if len(block) < 4:
        raise CheckpointError(f"{where}: a table block of {len(block)} bytes has no restart count; corrupt index")
    (restarts,) = struct.unpack_from("<I", block, len(block) - 4)
    end = len(block) - 4 - 4 * restarts
    if end < 0:
        raise CheckpointError(f"{where}: a table block claims {restarts} restart points in {len(block)} bytes")
    pos, key = 0, b""
    while pos < end:
        shared, pos = varint(block, pos, where, 5)
        unshared, pos = varint(block, pos, where, 5)
        n, pos = varint(block, pos, where, 5)
        if shared > len(key) or pos + unshared + n > end:
            raise CheckpointError(f"{where}: a table entry overruns its block; the index is corrupt")
        key = key[:shared] + block[pos:pos + unshared]
        pos += unshared
        yield key, block[pos:pos + n]
        pos += n


def read_table(path: Path) -> list:
    """Every (key, value) of an SSTable file, in order."""
    where = str(path)
    size = path.stat().st_size
    if size < 48:
        raise CheckpointError(f"{where} is {size} bytes, shorter than a table footer (48): not a TF checkpoint index")
    if size > MAX_INDEX_BYTES:
        raise CheckpointError(f"{where} is {human(size)}, more than a checkpoint index of any model ({human(MAX_INDEX_BYTES)})")
    data = path.read_bytes()
    footer = data[-48:]
    (magic,) = struct.unpack_from("<Q", footer, 40)
    if magic != TABLE_MAGIC:
        raise CheckpointError(f"{where}: no table magic number at its end ({magic:#x}, expected {TABLE_MAGIC:#x}): "
                              "not a TensorFlow checkpoint index (a TF2 SavedModel? a truncated download?)")
    _, pos = varint(footer, 0, where)
    _, pos = varint(footer, pos, where)  # metaindex handle: no filters in a bundle
    index_handle = footer[pos:40]
    entries = []
    for _, handle in block_entries(_block(data, index_handle, where), where):
        entries.extend(block_entries(_block(data, handle, where), where))
    return entries


# --- the bundle ----------------------------------------------------------------------------------------------

def _entry(value: bytes, name: str, where: str) -> dict:
    e = {"dtype": 0, "shape": [], "shard_id": 0, "offset": 0, "size": 0, "slices": False}
    for field, v in proto_fields(value, f"{where} ({name})"):
        if field == 1:
            e["dtype"] = v
        elif field == 2:
            for f2, dim in proto_fields(v, where):
                if f2 == 2:
                    size = 0
                    for f3, d in proto_fields(dim, where):
                        if f3 == 1:
                            size = _signed64(d)
                    e["shape"].append(size)
                elif f2 == 3 and v:
                    raise CheckpointError(f"{where}: tensor {name!r} has an unknown rank")
        elif field in (3, 4, 5):
            e[{3: "shard_id", 4: "offset", 5: "size"}[field]] = _signed64(v)
        elif field == 7:
            e["slices"] = True
    return e


def find_prefix(directory: Path, required: bool = True):
    """The checkpoint prefix in ``directory``: the one ``<prefix>.index`` that has ``<prefix>.data-*`` shards
    (several: the one the ``checkpoint`` file names). None (or an error, if ``required``) when none."""
    d = Path(directory)
    found = [p for p in sorted(d.glob("*.index")) if p.is_file()
             and glob.glob(glob.escape(str(d / p.name[: -len(".index")])) + ".data-*-of-*")]
    if not found:
        if required:
            raise CheckpointNotFoundError(f"no TensorFlow checkpoint (<prefix>.index with <prefix>.data-* shards) in {d}")
        return None
    if len(found) == 1:
        return d / found[0].name[: -len(".index")]
    state = d / "checkpoint"
    if state.is_file():
        m = re.search(r'^model_checkpoint_path:\s*"([^"]*)"', state.read_text(encoding="utf-8", errors="replace")[:65536],
                      re.M)
        if m:
            return inside_directory(d, m.group(1), str(state))
    raise CheckpointError(f"{d} holds several TensorFlow checkpoints ({[p.name for p in found]}) and no 'checkpoint' "
                          "file naming one; keep only the one to load")


def read_bundle(prefix) -> TensorDict:
    """Every tensor of the checkpoint ``prefix`` under its TF name (read into owned memory, native byte order)."""
    prefix = Path(prefix)
    index = Path(str(prefix) + ".index")
    where = str(index)
    if not index.is_file():
        raise CheckpointNotFoundError(f"TensorFlow checkpoint index {index} does not exist")
    entries = read_table(index)
    if not entries or entries[0][0] != b"":
        raise CheckpointError(f"{where}: no bundle header (the empty key); not a TensorFlow tensor bundle")
    header = dict(proto_fields(entries[0][1], where))
    shards, big = header.get(1, 1), header.get(2, 0) == 1
    if not 1 <= shards <= 100000:
        raise CheckpointError(f"{where}: the header claims {shards} shards")
    maps = {}

    def shard(k):
        if k not in maps:
            path = Path(f"{prefix}.data-{k:05d}-of-{shards:05d}")
            if not path.is_file():
                raise CheckpointNotFoundError(f"{where} keeps tensors in {path.name}, which is not in {path.parent}; "
                                              "download every .data-* shard of the checkpoint")
            maps[k] = CheckpointFile(path)
        return maps[k]

    out = TensorDict(format="tf_bundle")
    out.files = {}
    try:
        _read_entries(entries, out, shard, shards, big, where)
    finally:
        for f in maps.values():
            f.close()
    return out


def _read_entries(entries, out, shard, shards, big, where):
    for key, value in entries[1:]:
        try:
            name = key.decode("utf-8")
        except UnicodeDecodeError:
            raise CheckpointError(f"{where}: a tensor name is not UTF-8 ({key[:60]!r})") from None
        e = _entry(value, name, where)
        if e["slices"]:
            raise CheckpointError(f"{where}: tensor {name!r} is partitioned into slices; refimpl reads whole "
                                  "variables only (re-save the checkpoint without partitioning)")
        if e["dtype"] == DT_STRING:
            out.skipped.append(name)
            continue
        if e["dtype"] not in DTYPES:
            raise CheckpointError(f"{where}: tensor {name!r} has TF dtype {e['dtype']}, which refimpl does not read "
                                  f"(it reads {sorted(DTYPES.values())})")
        dtype = DTYPES[e["dtype"]]
        raw_dtype = np.dtype(np.uint16 if dtype == "bfloat16" else dtype)
        shape = e["shape"]
        if any(s < 0 for s in shape):
            raise CheckpointError(f"{where}: tensor {name!r} has shape {shape}")
        numel = 1
        for s in shape:
            numel *= s
        if not 0 <= e["shard_id"] < shards or e["offset"] < 0 or e["size"] != numel * raw_dtype.itemsize:
            raise CheckpointError(
                f"{where}: tensor {name!r} ({dtype}, shape {shape}) claims {e['size']} bytes at offset {e['offset']} "
                f"of shard {e['shard_id']} of {shards}; its shape needs {numel * raw_dtype.itemsize}: corrupt index")
        data = shard(e["shard_id"])
        path = data.path
        if e["offset"] + e["size"] > data.size:
            raise CheckpointError(f"{where}: tensor {name!r} claims bytes [{e['offset']}, {e['offset'] + e['size']}) "
                                  f"of {path.name}, which has {data.size}; the shard is truncated — download it again")
        raw = data[e["offset"]:e["offset"] + e["size"]]  # owned memory, aligned
        arr = raw.view(raw_dtype.newbyteorder(">") if big else raw_dtype).reshape(shape)
        if big:
            arr = arr.astype(raw_dtype)
        if dtype == "bfloat16":
            from ..checkpoint import _bfloat16_to_float32

            arr = _bfloat16_to_float32(arr)
        elif dtype == "bool":
            arr = arr.view(np.uint8) != 0
        out[name] = arr
        out.files[name] = str(path)


def bert_name(tf_name: str):
    """transformers' name for a Google BERT variable and whether to transpose it, or (None, False) for the
    variables transformers skips (optimizer slots, global_step). See the module docstring."""
    parts = tf_name.split("/")
    if any(p in SKIP_PARTS for p in parts):
        return None, False
    if parts in (["output_weights"], ["output_bias"]):  # run_classifier.py's head
        return "classifier." + ("weight" if parts[0] == "output_weights" else "bias"), False
    out = []
    for p in parts:
        m = re.fullmatch(r"([A-Za-z]+)_(\d+)", p)
        base, num = (m.group(1), m.group(2)) if m else (p, None)
        base = {"kernel": "weight", "gamma": "weight", "output_weights": "weight", "beta": "bias",
                "output_bias": "bias", "squad": "classifier"}.get(base, base)
        out.append(base)
        if num is not None:
            out.append(str(int(num)))
    if parts[-1].endswith("_embeddings"):
        out.append("weight")
    return ".".join(out), parts[-1] == "kernel"


def read_bert_checkpoint(directory) -> TensorDict:
    """A Google BERT TF1 checkpoint directory as transformers' names -> arrays (kernels transposed)."""
    prefix = find_prefix(Path(directory))
    tf = read_bundle(prefix)
    out = TensorDict(format="tf_bundle", skipped=tf.skipped)
    out.files = {}
    for name, arr in tf.items():
        hf, transpose = bert_name(name)
        if hf is None:
            out.skipped.append(name)
            continue
        if transpose:
            if arr.ndim != 2:
                raise CheckpointError(f"{prefix}.index: kernel {name!r} has shape {list(arr.shape)}, not 2-D")
            arr = np.ascontiguousarray(arr.T)  # torch's [out, in] layout, as a safetensors copy holds it
        if hf in out:
            raise CheckpointError(f"{prefix}.index: {name!r} and another variable both map to {hf!r}")
        out[hf] = arr
        out.files[hf] = tf.files[name]
    return out
