"""Reading safetensors checkpoints without executing anything, and matching them to a model by name.

The safetensors format is an 8-byte little-endian header length N, N bytes of JSON
``{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}``, then the raw bytes.
We parse the header by the format's own rules (those of the ``safetensors`` library, which also checks
it before any tensor is read; see :func:`parse_safetensors_header`): every tensor's bytes lie in the data
section, the tensors tile it exactly (no overlap, no gap, nothing after the last one), and each tensor's
byte count is its shape's element count times its dtype's size. A file that claims more than it holds is
refused before anything is allocated.

Tensors are read into arrays the process owns (one ``readinto`` per tensor), never left memory-mapped: a
model must not crash (SIGBUS) or change because its file was truncated or rewritten after loading
(docs/performance.md has the measurements behind this choice). A directory without safetensors is read by
``refimpl.formats`` (PyTorch ``.bin`` through a restricted unpickler that runs nothing, TF1 bundles, fairseq).
"""

from __future__ import annotations

import json
import math
import mmap
import re
import struct
from pathlib import Path

import numpy as np

from .errors import CheckpointError, CheckpointNotFoundError

# dtype name -> bits per element, every dtype the safetensors format defines (its Rust crate's `Dtype`)
DTYPE_BITS = {
    "BOOL": 8, "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8,
    "F8_E4M3FNUZ": 8, "F8_E5M2FNUZ": 8, "I16": 16, "U16": 16, "F16": 16, "BF16": 16, "I32": 32, "U32": 32,
    "F32": 32, "C64": 64, "F64": 64, "I64": 64, "U64": 64,
}
# the ones refimpl reads (numpy has them; BF16 is widened to float32 exactly)
_DTYPES = {
    "F64": np.float64, "F32": np.float32, "F16": np.float16, "BF16": "bfloat16",
    "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8,
    "U64": np.uint64, "U32": np.uint32, "U16": np.uint16, "U8": np.uint8, "BOOL": np.bool_,
}
MAX_HEADER = 100_000_000  # the safetensors library's limit on N
_MAX_DEPTH = 127  # JSON nesting the library's parser (serde_json, recursion limit 128) accepts
_USIZE = 2 ** 64


def _bfloat16_to_float32(raw):
    """bfloat16 is the top half of a float32: widen the uint16 bits into float32 exactly."""
    return (raw.astype(np.uint32) << 16).view(np.float32)


class _Pairs(list):
    """A JSON object as its (key, value) pairs in file order, duplicates kept (the parser decides)."""


def _json_int(text):
    # serde_json reads "-0" as the float -0.0 and integers beyond 64 bits as floats
    if text == "-0" or len(text.lstrip("-")) > 20:
        return _json_float(text)
    return int(text)


def _json_float(text):
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:20]}... is out of range")
    return value


def _no_constant(name):
    raise ValueError(f"{name} is not JSON")


def _check_strings_and_depth(value, depth=1):
    """serde_json's limits that Python's json lacks: nesting at most 127 deep, no lone surrogates."""
    if depth > _MAX_DEPTH:
        raise ValueError(f"nesting deeper than {_MAX_DEPTH} levels")
    if isinstance(value, str):
        value.encode("utf-8")  # a lone surrogate (\ud800 escaped) raises UnicodeEncodeError
    elif isinstance(value, _Pairs):
        for k, v in value:
            k.encode("utf-8")
            _check_strings_and_depth(v, depth + 1)
    elif isinstance(value, list):
        for v in value:
            _check_strings_and_depth(v, depth + 1)


def _usize(value):
    return type(value) is int and 0 <= value < _USIZE


def _tensor_info(name, info):
    """(dtype, shape, (begin, end)) of one header entry, as the library's ``TensorInfo`` reads it: an object
    with the three fields (others ignored, none twice) or an array of exactly the three; else ValueError."""
    fields = ("dtype", "shape", "data_offsets")
    if isinstance(info, _Pairs):
        seen = {}
        for key, value in info:
            if key in fields:
                if key in seen:
                    raise ValueError(f"field {key!r} appears twice")
                seen[key] = value
        missing = [f for f in fields if f not in seen]
        if missing:
            raise ValueError(f"missing field {missing[0]!r}")
        dtype, shape, offsets = (seen[f] for f in fields)
    elif isinstance(info, list) and len(info) == 3:
        dtype, shape, offsets = info
    else:
        raise ValueError(f"expected an object with dtype, shape and data_offsets, got {_short(info)}")
    if isinstance(dtype, _Pairs) and len(dtype) == 1 and dtype[0][1] is None:
        dtype = dtype[0][0]  # serde's map form of an enum variant, {"F32": null}
    if not isinstance(dtype, str) or dtype not in DTYPE_BITS:
        raise ValueError(f"dtype {_short(dtype)} is not a safetensors dtype (one of {sorted(DTYPE_BITS)})")
    if not isinstance(shape, list) or isinstance(shape, _Pairs) or not all(_usize(d) for d in shape):
        raise ValueError(f"shape {_short(shape)} is not a list of non-negative integers")
    if (not isinstance(offsets, list) or isinstance(offsets, _Pairs) or len(offsets) != 2
            or not all(_usize(o) for o in offsets)):
        raise ValueError(f"data_offsets {_short(offsets)} is not a list of two non-negative integers [begin, end]")
    return dtype, tuple(shape), tuple(offsets)


def _short(value):
    text = repr(list(value) if isinstance(value, _Pairs) else value)
    return text if len(text) <= 80 else text[:77] + "..."


def parse_safetensors_header(raw: bytes, data_size: int, where="safetensors header"):
    """The entries of a safetensors header, checked by the format's rules exactly as the ``safetensors``
    library (0.4 - 0.8, its Rust ``Metadata``) checks them: returns (name -> (dtype, shape, begin, end),
    metadata dict or None). ``raw``: the N header bytes; ``data_size``: the bytes after the header.

    The rules: UTF-8 JSON (no BOM, no NaN, no lone surrogates, at most 127 levels deep) holding an object;
    ``__metadata__`` at most once, null or an object of strings; every other key a tensor with a known dtype,
    a shape of non-negative integers and ``data_offsets`` [begin, end] relative to the data section (a name
    given twice: the last entry counts, as in the library). Sorted by offsets, the tensors tile
    [0, data_size) exactly: each begins where the previous one ended, and its byte count is its element
    count (no 64-bit overflow on the way) times its dtype's bits / 8, a whole number of bytes.
    Raises CheckpointError naming ``where`` and the rule broken.
    """
    def bad(reason):
        return CheckpointError(f"{where}: {reason}; the file is truncated or corrupt, or not a safetensors file (re-download it, "
                               "or re-save it with safetensors' save_file)")

    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise bad(f"the header is not UTF-8 ({e})") from None
    try:
        header = json.loads(text, object_pairs_hook=_Pairs, parse_int=_json_int, parse_float=_json_float,
                            parse_constant=_no_constant)
        _check_strings_and_depth(header)
    except RecursionError:
        raise bad(f"the header JSON nests deeper than {_MAX_DEPTH} levels") from None
    except (ValueError, UnicodeEncodeError) as e:  # json.JSONDecodeError is a ValueError
        raise bad(f"the header is not valid JSON ({str(e)[:200]})") from None
    if not isinstance(header, _Pairs):
        raise bad(f"the header must be a JSON object, got {type(header).__name__}")
    entries, metadata, seen_metadata = {}, None, False
    for name, info in header:
        if name == "__metadata__":
            if seen_metadata:
                raise bad("'__metadata__' appears twice")
            seen_metadata = True
            if info is not None and not (isinstance(info, _Pairs) and all(isinstance(v, str) for _, v in info)):
                raise bad(f"'__metadata__' must be null or an object of strings, got {_short(info)}")
            metadata = None if info is None else dict(info)
            continue
        try:
            entries[name] = _tensor_info(name, info)  # a repeated name: the last entry counts
        except ValueError as e:
            raise bad(f"tensor {name!r}: {e}") from None
    expected_begin = 0
    for name, (dtype, shape, (begin, end)) in sorted(entries.items(), key=lambda kv: kv[1][2]):
        if begin != expected_begin or end < begin:
            raise bad(f"tensor {name!r} ({dtype}, shape {list(shape)}) claims bytes [{begin}, {end}) of the data "
                      f"section, but the tensors before it end at byte {expected_begin}: tensors must tile the data "
                      "section without overlap or gap")
        expected_begin = end
        count = 1
        for d in shape:
            count *= d
            if count >= _USIZE:
                raise bad(f"tensor {name!r}: shape {list(shape)} has more elements than 64 bits can count")
        bits = count * DTYPE_BITS[dtype]
        if bits >= _USIZE or bits % 8:
            raise bad(f"tensor {name!r}: shape {list(shape)} of {dtype} is {count} elements, not a whole number "
                      "of bytes (or more than 64 bits can count)")
        if end - begin != bits // 8:
            raise bad(f"tensor {name!r} ({dtype}, shape {list(shape)}) needs {bits // 8} bytes but claims "
                      f"[{begin}, {end}), {end - begin} bytes")
    if expected_begin != data_size:
        raise bad(f"the tensors cover {expected_begin} bytes of the data section, but it holds {data_size} bytes "
                  "(missing bytes, or data after the last tensor)")
    entries = {name: (dtype, shape, begin, end) for name, (dtype, shape, (begin, end)) in entries.items()}
    return entries, metadata


def read_safetensors_header(path):
    """(entries, metadata, data_start) of a .safetensors file (see :func:`parse_safetensors_header`),
    checked against its size before anything is read beyond the header; CheckpointError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointNotFoundError(f"checkpoint file {path} does not exist")
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise CheckpointError(f"{path} is not a safetensors file: {size} bytes, shorter than its 8-byte "
                                  "header length")
        (n,) = struct.unpack("<Q", head)
        if n > MAX_HEADER or 8 + n > size:
            raise CheckpointError(
                f"{path} is truncated or not a safetensors file: its first 8 bytes give a header length of {n} "
                f"bytes, but the file is {size} bytes and a header is at most {MAX_HEADER}; re-download it"
            )
        raw = f.read(n)
    entries, metadata = parse_safetensors_header(raw, size - 8 - n, where=str(path))
    return entries, metadata, 8 + n


def _library_check(path):
    """The safetensors library's own reading of the header: refimpl accepts only files it accepts."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="numpy") as f:
            return set(f.keys())
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"{path}: the safetensors library refuses the file ({e}); it is corrupt or not a "
                              "safetensors file (re-download it)") from None


def read_safetensors(path) -> dict:
    """Map each tensor name of a .safetensors file to a numpy array this process owns (read, not mapped:
    truncating or rewriting the file afterwards changes nothing).

    The header is checked by :func:`parse_safetensors_header` and by the safetensors library before any
    tensor is allocated: a tensor's bytes come from the file, never from what the header merely claims,
    so at most the file's size is allocated (twice its BF16 part, widened to float32). Raises
    CheckpointError naming the file and the rule broken.
    """
    path = Path(path)
    entries, _, data_start = read_safetensors_header(path)
    names = _library_check(path)
    if names != set(entries):  # cannot happen for a file both accept; kept as a guard
        raise CheckpointError(f"{path}: refimpl and the safetensors library read different tensor names")
    unsupported = sorted({dtype for dtype, *_ in entries.values() if dtype not in _DTYPES})
    if unsupported:
        raise CheckpointError(f"{path}: dtype {unsupported} is not read by refimpl (it reads {sorted(_DTYPES)}); "
                              "convert the checkpoint to float32 / float16 / bfloat16")
    tensors = {}
    with open(path, "rb") as f:
        for name, (dtype_name, shape, begin, end) in sorted(entries.items(), key=lambda kv: kv[1][2]):
            dtype = _DTYPES[dtype_name]
            storage = np.uint16 if dtype == "bfloat16" else np.uint8 if dtype is np.bool_ else dtype
            arr = np.empty(shape, dtype=storage)
            f.seek(data_start + begin)
            if end > begin and f.readinto(arr.reshape(-1).view(np.uint8)) != end - begin:
                raise CheckpointError(f"{path} changed while it was read (tensor {name!r}); load it again")
            if dtype == "bfloat16":
                arr = _bfloat16_to_float32(arr)
            elif dtype is np.bool_:
                arr = arr != 0  # any nonzero byte is true, as the library reads it
            tensors[name] = arr
    return tensors


def memory_map_of(arr):
    """The ``numpy.memmap`` of a checkpoint file that ``arr`` is a view of, or None (a copy, or not numpy)."""
    while arr is not None and not isinstance(arr, np.memmap):
        arr = getattr(arr, "base", None)
    return arr


def release_mapped_pages(arr) -> int:
    """Tell the OS this process no longer needs the mapped file pages of ``arr`` (a view of a checkpoint
    mapped by :func:`read_safetensors`), after its values were copied elsewhere: the pages wholly inside
    its bytes leave the process's resident set (they stay in the OS file cache). Returns the number of
    bytes released; 0 if ``arr`` is not memory-mapped or the platform cannot do it. Reading ``arr`` again
    afterwards still works (the pages are read back in).
    """
    region = getattr(memory_map_of(arr), "_mmap", None)  # numpy's mmap.mmap of the file (numpy.memmap keeps it there)
    if region is None or not hasattr(region, "madvise") or not hasattr(mmap, "MADV_DONTNEED"):
        return 0
    mapping_start = np.frombuffer(region, np.uint8).__array_interface__["data"][0]  # its first byte's address
    lo = arr.__array_interface__["data"][0] - mapping_start
    hi = lo + arr.nbytes
    page = mmap.PAGESIZE
    lo, hi = -(-lo // page) * page, hi // page * page
    if hi <= lo:
        return 0
    try:
        region.madvise(mmap.MADV_DONTNEED, lo, hi - lo)
    except (OSError, ValueError):
        return 0
    return hi - lo


MAX_JSON_BYTES = 64 * 1024 * 1024  # a config, index or tokenizer JSON file larger than this is not one


def read_json_file(path, what, error=CheckpointError, max_bytes=MAX_JSON_BYTES):
    """The parsed content of a JSON file refimpl reads (a config, an index, tokenizer files), or ``error``
    naming ``what`` and the file: larger than ``max_bytes``, not UTF-8, not JSON, or nested too deeply for
    Python's parser (a RecursionError)."""
    path = Path(path)
    size = path.stat().st_size
    if size > max_bytes:
        raise error(f"{what} {path} is {size} bytes, more than the {max_bytes} such a file can be; it is not one "
                    "(re-download or re-create it)")
    try:
        return parse_json_text(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as e:
        raise error(f"{what} {path} is not UTF-8 ({e}); re-download or re-create it") from None
    except ValueError as e:
        raise error(f"{what} {path} is not valid JSON ({e}); fix or re-create the file") from None


def parse_json_text(text):
    """``json.loads(text)``, with nesting too deep for Python's parser a ``json.JSONDecodeError`` like any
    other bad JSON (instead of a RecursionError)."""
    try:
        return json.loads(text)
    except RecursionError:
        raise json.JSONDecodeError("nested too deeply (thousands of levels)", text[:100], 0) from None


def inside_directory(directory, name, what) -> Path:
    """``directory / name`` if it resolves (symbolic links followed) inside ``directory``, else a
    CheckpointError naming ``what`` (the file that gave the name): a checkpoint may only name files of its
    own directory, never ``../`` or an absolute path (refused before anything is opened)."""
    if not isinstance(name, str) or not name or "\x00" in name:
        raise CheckpointError(f"{what} names the file {name!r}, which is not a file name; fix or re-create {what}")
    root = Path(directory).resolve()
    candidate = Path(name)
    if candidate.is_absolute() or not (root / candidate).resolve().is_relative_to(root):
        raise CheckpointError(
            f"{what} names the file {name!r}, which lies outside the checkpoint directory {str(directory)!r}; a "
            "checkpoint may only name files inside its own directory (refused; nothing was read from it)"
        )
    return Path(directory) / candidate


_HUB_NAME = re.compile(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?")


def local_directory(path, what="checkpoint directory", holding="config.json and model.safetensors") -> Path:
    """``path`` as a directory that exists, or a CheckpointNotFoundError that says what went wrong: a file
    given where a directory is expected (pass its parent), or a name that is no local path, maybe a model
    hub name (refimpl never contacts a hub: how to get the files, and the registered names)."""
    directory = Path(path)
    if directory.is_dir():
        return directory
    if directory.is_file():
        raise CheckpointNotFoundError(
            f"{str(directory)!r} is a file, but a {what} is expected (a directory holding {holding}); "
            f"pass the directory it is in: {str(directory.parent)!r}"
        )
    text = str(path)
    message = f"{what} {text!r} does not exist"
    if _HUB_NAME.fullmatch(text) and not text.startswith("."):
        from .registry import registry  # the registered downloadable checkpoints

        names = sorted(registry())
        short = text.rsplit("/", 1)[-1]
        message += (
            f". If {text!r} is a model hub name: refimpl never contacts a model hub. Pass a local directory "
            f"holding {holding} (for example one written by transformers' save_pretrained, or downloaded with "
            "the hub's own tools)"
        )
        if short in names:
            message += (f"; {short!r} is registered with refimpl: `refimpl fetch {short}` (or "
                        f"refimpl.registry.fetch({short!r})) downloads it, sha256-checked, and gives its directory")
        else:
            message += f"; the checkpoints `refimpl fetch NAME` downloads are {names}"
    else:
        message += f"; pass a local directory holding {holding}"
    raise CheckpointNotFoundError(message)


def load_checkpoint_tensors(directory) -> tuple[dict, dict]:
    """All tensors of a checkpoint directory and the file each came from.

    Reads ``model.safetensors``, or the shards listed in ``model.safetensors.index.json``, else the other
    formats of ``refimpl.formats.directory`` (in its order). Returns (name -> array, name -> file path).
    """
    directory = local_directory(directory)
    single = directory / "model.safetensors"
    index = directory / "model.safetensors.index.json"
    if single.is_file():
        tensors = read_safetensors(single)
        return tensors, {k: str(single) for k in tensors}
    if index.is_file():
        data = read_json_file(index, "the safetensors index")
        weight_map = data.get("weight_map") if isinstance(data, dict) else None
        if not isinstance(weight_map, dict) or not all(isinstance(v, str) for v in weight_map.values()):
            raise CheckpointError(f"{index} has no 'weight_map' object of tensor name -> shard file name; it is not "
                                  "a transformers index file (re-download it)")
        tensors, files = {}, {}
        for shard in sorted(set(weight_map.values())):
            path = inside_directory(directory, shard, str(index))
            if not path.is_file():
                raise CheckpointNotFoundError(f"{index} lists the shard {shard!r}, which is not in {directory}; "
                                              "download the missing shard")
            for name, arr in read_safetensors(path).items():
                if name in tensors:
                    raise CheckpointError(f"tensor {name!r} is in two shards, {files[name]} and {path}; the "
                                          "checkpoint is inconsistent (re-download it)")
                tensors[name], files[name] = arr, str(path)
        missing = sorted(set(weight_map) - set(tensors))
        if missing:
            raise CheckpointError(f"{index} lists tensors that no shard holds: {missing[:5]}")
        return tensors, files
    from .formats.directory import read_directory  # pytorch_model.bin, TF1 bundles, fairseq (docs/formats.md)

    tensors = read_directory(directory)  # a TensorDict: .format, .skipped, .files
    return tensors, tensors.files


_LAYER_SLACK = 64  # claimed layers beyond the checkpoint's that are still matched (and reported) tensor by tensor
_LAYER_INDEX = re.compile(r"(?:^|\.)layer\.(\d+)\.")


def check_layer_count(config, tensors: dict, where: str) -> None:
    """CheckpointError when the config claims more layers than the checkpoint's tensors hold, before the
    model's table of parameter shapes (16 entries a layer) is built from the claim: a config.json saying
    ``num_hidden_layers: 10000000`` would otherwise build a table of 160 million names first."""
    claimed = getattr(config, "num_hidden_layers", None)
    if not isinstance(claimed, int):
        return
    held = {int(m.group(1)) for name in tensors for m in [_LAYER_INDEX.search(name)] if m is not None}
    count = max(held) + 1 if held else 0
    if claimed > count + _LAYER_SLACK:  # a few missing layers: the strict matcher names their tensors
        raise CheckpointError(
            f"the config says num_hidden_layers={claimed}, but the checkpoint ({where}) holds "
            + (f"layers 0..{count - 1} ({count} layers)" if count else "no layer tensors")
            + f"; fix config.json (num_hidden_layers={count}) or pass num_hidden_layers={count} to from_pretrained"
            + " (init_missing=True initialises layers a checkpoint lacks)"
        )


def rename_legacy(name: str) -> str:
    """Legacy TF-era names, renamed as transformers does: ``LayerNorm.gamma`` -> ``LayerNorm.weight``,
    ``LayerNorm.beta`` -> ``LayerNorm.bias``."""
    if name.endswith("LayerNorm.gamma"):
        return name[: -len("gamma")] + "weight"
    if name.endswith("LayerNorm.beta"):
        return name[: -len("beta")] + "bias"
    return name
