"""Reading safetensors checkpoints without executing anything, and matching them to a model by name.

The safetensors format is an 8-byte little-endian header length N, N bytes of JSON
``{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}``, then the raw bytes.
We parse the JSON header ourselves, check every offset against the file size, and hand out read-only
``numpy.memmap`` views: a float32 checkpoint loaded as float32 on numpy is never copied into memory (the
OS pages it in on first use, and it counts once). A directory without safetensors is read by
``refimpl.formats`` (PyTorch ``.bin`` through a restricted unpickler that runs nothing, TF1 bundles, fairseq).
"""

from __future__ import annotations

import json
import mmap
import re
import struct
from pathlib import Path

import numpy as np

from .errors import CheckpointError, CheckpointNotFoundError

_DTYPES = {
    "F64": np.float64, "F32": np.float32, "F16": np.float16, "BF16": "bfloat16",
    "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_,
}
_MAX_HEADER = 100 * 1024 * 1024


def _bfloat16_to_float32(raw):
    """bfloat16 is the top half of a float32: widen the uint16 bits into float32 exactly."""
    return (raw.astype(np.uint32) << 16).view(np.float32)


def read_safetensors(path) -> dict:
    """Map each tensor name of a .safetensors file to a read-only numpy array (memory-mapped).

    Raises CheckpointError naming the file if the header is malformed or any tensor lies outside the
    file (a truncated download).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointNotFoundError(f"checkpoint file {path} does not exist")
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise CheckpointError(f"{path} is not a safetensors file: {size} bytes, shorter than its 8-byte header length")
        (n,) = struct.unpack("<Q", head)
        if n > _MAX_HEADER or 8 + n > size:
            raise CheckpointError(
                f"{path} is truncated or not a safetensors file: header length {n} bytes, file is {size} bytes"
            )
        try:
            header = json.loads(f.read(n))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise CheckpointError(f"{path}: safetensors header is not valid JSON ({e}); the file is corrupt") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: safetensors header must be a JSON object")
    header.pop("__metadata__", None)
    data_start = 8 + n
    data_size = size - data_start
    mm = np.memmap(path, dtype=np.uint8, mode="r", offset=data_start, shape=(data_size,)) if data_size else None
    tensors = {}
    for name, info in header.items():
        try:
            dtype_name, shape, (begin, end) = info["dtype"], [int(d) for d in info["shape"]], info["data_offsets"]
        except (KeyError, TypeError, ValueError):
            raise CheckpointError(f"{path}: malformed header entry for tensor {name!r}: {info!r}") from None
        if dtype_name not in _DTYPES:
            raise CheckpointError(f"{path}: tensor {name!r} has unsupported dtype {dtype_name!r}")
        dtype = _DTYPES[dtype_name]
        itemsize = 2 if dtype == "bfloat16" else np.dtype(dtype).itemsize
        count = int(np.prod(shape)) if shape else 1
        if not (0 <= begin <= end <= data_size) or end - begin != count * itemsize:
            raise CheckpointError(
                f"{path}: tensor {name!r} ({dtype_name}, shape {shape}) claims bytes [{begin}, {end}) but the "
                f"data section holds {data_size} bytes: the file is truncated or corrupt; download it again"
            )
        raw = mm[begin:end] if count else np.zeros(0, np.uint8)
        if dtype == "bfloat16":
            arr = _bfloat16_to_float32(raw.view(np.uint16)).reshape(shape)
        else:
            arr = raw.view(dtype).reshape(shape)
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
        try:
            weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise CheckpointError(f"{index} is not a valid safetensors index ({e!r})") from None
        tensors, files = {}, {}
        for shard in sorted(set(weight_map.values())):
            shard_tensors = read_safetensors(directory / shard)
            for name, arr in shard_tensors.items():
                tensors[name] = arr
                files[name] = str(directory / shard)
        missing = sorted(set(weight_map) - set(tensors))
        if missing:
            raise CheckpointError(f"{index} lists tensors that no shard holds: {missing[:5]}")
        return tensors, files
    from .formats.directory import read_directory  # pytorch_model.bin, TF1 bundles, fairseq (docs/formats.md)

    tensors = read_directory(directory)  # a TensorDict: .format, .skipped, .files
    return tensors, tensors.files


def rename_legacy(name: str) -> str:
    """Legacy TF-era names, renamed as transformers does: ``LayerNorm.gamma`` -> ``LayerNorm.weight``,
    ``LayerNorm.beta`` -> ``LayerNorm.bias``."""
    if name.endswith("LayerNorm.gamma"):
        return name[: -len("gamma")] + "weight"
    if name.endswith("LayerNorm.beta"):
        return name[: -len("beta")] + "bias"
    return name
