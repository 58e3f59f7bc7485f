"""PyTorch ``torch.save`` files (``pytorch_model.bin``, fairseq's ``model.pt``) read without torch, and
without running anything from the file.

A ``torch.save`` file is a pickle whose tensors are references to raw storages kept beside it:

- **zip format** (torch >= 1.6, the default): a stored (uncompressed) zip archive with one top-level folder
  of any name (``archive/`` today, the file's stem in older releases) holding ``data.pkl`` (the pickle),
  ``data/<key>`` (each storage's raw bytes, records aligned to 64 bytes), ``byteorder`` (``little`` or
  ``big``: the storages' byte order; absent in files from before torch 1.10, meaning little), ``version``;
- **legacy format** (torch < 1.6, or ``_use_new_zipfile_serialization=False``): five pickles in a row —
  the magic number 0x1950a86a20f9469cfc6c, the protocol version 1001, a sys-info dict, the object, the
  sorted list of storage keys — then, for each key in that order, an int64 element count and the storage's
  raw bytes, little-endian.

In both, a tensor is pickled as ``torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride,
requires_grad, backward_hooks)`` where ``storage`` is a *persistent id*
``("storage", torch.FloatStorage, key, location, numel[, view_metadata])``. Views of one tensor share a
storage; a view or a transposed tensor has its own offset and strides.

The pickle is read by :class:`RestrictedUnpickler`, which resolves only these globals, each to a harmless
stand-in defined here (nothing named in the file is ever imported or called):

| global in the pickle | stand-in |
|---|---|
| ``collections.OrderedDict`` | ``collections.OrderedDict`` (a plain mapping) |
| ``torch._utils._rebuild_tensor_v2``, ``_rebuild_tensor`` | records (storage, offset, size, stride) after checking them |
| ``torch._utils._rebuild_parameter``, ``_rebuild_parameter_with_state`` | returns its tensor (an ``nn.Parameter`` saved with ``keep_vars``) |
| ``torch.<T>Storage``, ``torch.cuda.<T>Storage`` for T in Float, Double, Half, BFloat16, Long, Int, Short, Char, Byte, Bool; ``torch.UntypedStorage`` | the element type of a storage (never callable) |
| ``argparse.Namespace`` (only with ``allow_namespace=True``: fairseq's ``args``) | :class:`Namespace`, a plain attribute holder |

Any other global (``os.system``, ``builtins.eval``, ``subprocess.Popen``, a model class) is refused with a
CheckpointError naming it, whichever opcode asks for it (GLOBAL, STACK_GLOBAL, INST; REDUCE, OBJ, NEWOBJ
and BUILD can only call what those returned); extension-registry opcodes (EXT1/2/4) are refused, and
persistent ids other than storages are refused. Before unpickling, every opcode is scanned
(``pickletools``): a length or memo index larger than the pickle itself is refused, so no pickle can make
the unpickler allocate what it merely claims.

Sizes are checked before anything is read or allocated: each storage's claimed size against its zip
record's or the file's actual size, each tensor's offset, sizes and strides against its storage. Each
storage is read once into memory the process owns (never left memory-mapped: a loaded model does not crash
or change when its file is rewritten, as refimpl/checkpoint.py's safetensors reader); a tensor is a view of
its storage (contiguous: a slice; otherwise a strided view), copied only where its values must change
representation: bfloat16 is widened to float32 exactly (its bits are a
float32's top half; the same as refimpl's safetensors reader, so no ``ml_dtypes`` is needed), bool is
normalised to 0/1, big-endian data is byte-swapped to native order. Complex and quantized storages are
refused.
"""

from __future__ import annotations

import collections
import io
import pickle
import pickletools
import struct
import zipfile
from pathlib import Path

import numpy as np

from ..checkpoint import _bfloat16_to_float32
from ..errors import CheckpointError, CheckpointNotFoundError
from ._common import CheckpointFile, human

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001
MAX_PICKLE_BYTES = 256 * 1024 * 1024  # data.pkl of a state dict is KBs; fairseq's with optimizer state, MBs
MAX_DEPTH = 64  # nesting of containers in a checkpoint object (a state dict is 1, fairseq's about 4)

# storage class name -> (numpy dtype of its elements as stored, bytes per element)
STORAGE_TYPES = {
    "FloatStorage": "float32", "DoubleStorage": "float64", "HalfStorage": "float16", "BFloat16Storage": "bfloat16",
    "LongStorage": "int64", "IntStorage": "int32", "ShortStorage": "int16", "CharStorage": "int8",
    "ByteStorage": "uint8", "BoolStorage": "bool", "UntypedStorage": "uint8",
}
_RAW = {"bfloat16": np.dtype(np.uint16), "bool": np.dtype(np.uint8)}  # how those two are held before conversion


class StorageType:
    """What ``torch.FloatStorage`` & co. unpickle to: a storage's element type. Not callable."""

    __slots__ = ("name", "dtype", "raw")

    def __init__(self, name: str):
        self.name = name
        self.dtype = STORAGE_TYPES[name]
        self.raw = _RAW[self.dtype] if self.dtype in _RAW else np.dtype(self.dtype)

    def __repr__(self):
        return f"torch.{self.name}"


class StorageRef:
    """A persistent id ``("storage", type, key, location, numel)``: which storage, its type and claimed size."""

    __slots__ = ("key", "type", "numel", "view")

    def __init__(self, key, stype, numel, view=None):
        self.key, self.type, self.numel, self.view = key, stype, numel, view  # view: (offset, numel) of legacy views


class TensorRef:
    """What ``_rebuild_tensor_v2`` unpickles to: a tensor as (storage, offset, size, stride), resolved to a
    numpy array once the storages are located."""

    __slots__ = ("storage", "offset", "size", "stride")

    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride


class Namespace:
    """Stand-in for ``argparse.Namespace`` (fairseq pickles its command-line ``args`` as one): a plain holder
    of the attributes its state sets; no method of it runs anything."""

    def __setstate__(self, state):
        if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
            raise CheckpointError(f"an argparse.Namespace in the pickle has state of type {type(state).__name__}, "
                                  "not a dict of attribute names; the file is corrupt or not a fairseq checkpoint")
        self.__dict__.update(state)

    def __repr__(self):
        return f"Namespace({', '.join(f'{k}={v!r}' for k, v in sorted(self.__dict__.items()))})"


def _int(value, what, minimum=0):
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise CheckpointError(f"a tensor in the pickle has {what} {value!r}; expected an integer >= {minimum}")
    return value


def _ints(value, what):
    if not isinstance(value, tuple):
        raise CheckpointError(f"a tensor in the pickle has {what} {value!r}; expected a tuple of integers")
    return tuple(_int(v, what) for v in value)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                       metadata=None):
    """Stand-in for ``torch._utils._rebuild_tensor_v2``: checks its arguments, records the tensor."""
    if not isinstance(storage, StorageRef):
        raise CheckpointError(f"_rebuild_tensor_v2 got {type(storage).__name__} as its storage; expected a "
                              "storage persistent id: the file is corrupt or not written by torch.save")
    size, stride = _ints(size, "size"), _ints(stride, "stride")
    if len(size) != len(stride):
        raise CheckpointError(f"a tensor in the pickle has size {size} but stride {stride} (different lengths)")
    if backward_hooks is not None and (not isinstance(backward_hooks, dict) or backward_hooks):
        raise CheckpointError("a tensor in the pickle carries backward hooks; a state dict has none (refused)")
    return TensorRef(storage, _int(storage_offset, "storage offset"), size, stride)


def _rebuild_tensor(storage, storage_offset, size, stride):
    """Stand-in for ``torch._utils._rebuild_tensor`` (torch 0.4-era pickles)."""
    return _rebuild_tensor_v2(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, state=None):
    """Stand-in for ``torch._utils._rebuild_parameter[_with_state]``: an ``nn.Parameter`` is its tensor."""
    if not isinstance(data, TensorRef):
        raise CheckpointError(f"_rebuild_parameter got {type(data).__name__}; expected a tensor")
    if backward_hooks:
        raise CheckpointError("a parameter in the pickle carries backward hooks; a state dict has none (refused)")
    return data


_ALLOWED = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    **{(module, name): StorageType(name) for name in STORAGE_TYPES for module in ("torch", "torch.cuda")},
    ("torch.storage", "UntypedStorage"): StorageType("UntypedStorage"),
}
_NAMESPACE = {("argparse", "Namespace"): Namespace}


class RestrictedUnpickler(pickle.Unpickler):
    """A ``pickle.Unpickler`` that resolves only the globals of a torch state dict, to stand-ins (see the
    module docstring), and refuses every other global with a CheckpointError naming it; it never imports or
    calls anything the file names. ``persistent_load`` turns torch's storage ids into :class:`StorageRef`."""

    def __init__(self, file, *, where: str, legacy: bool, allow_namespace: bool = False):
        super().__init__(file)
        self.where, self.legacy = where, legacy
        self.allowed = {**_ALLOWED, **(_NAMESPACE if allow_namespace else {})}

    def find_class(self, module, name):
        found = self.allowed.get((module, name))
        if found is None:
            hint = (" fairseq checkpoints may pickle argparse.Namespace, allowed only when read as fairseq "
                    "(a model.pt);" if (module, name) in _NAMESPACE else "")
            raise CheckpointError(
                f"{self.where}: the pickle asks for the global {module}.{name}, which a PyTorch state dict never "
                f"needs; refused — nothing from the file was imported or run.{hint} refimpl reads only tensors, "
                "OrderedDict and storage types from a pickle; if you trust this file, convert it with torch "
                "(torch.load, then safetensors.torch.save_file)"
            )
        return found

    def persistent_load(self, pid):
        if not isinstance(pid, tuple) or not pid or pid[0] not in ("storage", b"storage"):
            kind = pid[0] if isinstance(pid, tuple) and pid else pid
            raise CheckpointError(f"{self.where}: the pickle holds a persistent id of kind {kind!r}; only "
                                  "'storage' ids occur in a state dict (a whole pickled nn.Module is refused)")
        n = 6 if self.legacy else 5
        if len(pid) != n:
            raise CheckpointError(f"{self.where}: a storage id has {len(pid)} fields, expected {n}: {pid!r:.200}")
        _, stype, key, location, numel = pid[:5]
        if not isinstance(stype, StorageType):
            raise CheckpointError(f"{self.where}: a storage id names the type {stype!r:.100}, not a torch storage type")
        if isinstance(key, bytes):
            key = key.decode("ascii", "replace")
        if not isinstance(key, str) or not isinstance(location, (str, bytes)):
            raise CheckpointError(f"{self.where}: a storage id has key {key!r:.100} / location {location!r:.100}; "
                                  "expected strings")
        _int(numel, "storage size")
        view = None
        if self.legacy and pid[5] is not None:
            meta = pid[5]
            if not (isinstance(meta, tuple) and len(meta) == 3):
                raise CheckpointError(f"{self.where}: a storage view has metadata {meta!r:.100}; expected 3 fields")
            view = (_int(meta[1], "storage view offset"), _int(meta[2], "storage view size"))
        return StorageRef(key, stype, numel, view)


class _Window:
    """A read-only stream over a bytes-like object or a :class:`CheckpointFile` from ``start`` that reads only
    what is asked, and never more than is there: a pickle's claimed lengths cannot make it allocate past the
    data."""

    def __init__(self, data, start=0):
        self.view = data if isinstance(data, CheckpointFile) else memoryview(data).cast("B")
        self.pos = self.start = start

    def __len__(self):
        return len(self.view)

    def read(self, n=-1):
        end = len(self.view) if n is None or n < 0 else min(len(self.view), self.pos + n)
        out = bytes(self.view[self.pos:end])
        self.pos = end
        return out

    def readline(self):
        start = self.pos
        while self.pos < len(self.view):
            chunk = bytes(self.view[self.pos:self.pos + 4096])
            i = chunk.find(b"\n")
            if i >= 0:
                self.pos += i + 1
                return bytes(self.view[start:self.pos])
            self.pos += len(chunk)
        return bytes(self.view[start:])

    def tell(self):
        return self.pos - self.start


def scan_pickle(data, where: str, start: int = 0) -> int:
    """Check every opcode of the pickle at the start of ``data`` (bytes-like) before it is unpickled:
    lengths within the data, memo indices no larger than the count of opcodes so far, no extension-registry
    opcodes. Returns the pickle's length in bytes (up to and including STOP)."""
    stream = _Window(data, start)
    count = 0
    try:
        for op, arg, pos in pickletools.genops(stream):
            count += 1
            if op.name in ("EXT1", "EXT2", "EXT4"):
                raise CheckpointError(f"{where}: the pickle uses the extension registry ({op.name} at byte {pos}); "
                                      "torch.save never does (refused)")
            if op.name in ("PUT", "BINPUT", "LONG_BINPUT", "GET", "BINGET", "LONG_BINGET") and (
                    not isinstance(arg, int) or arg > count):
                raise CheckpointError(f"{where}: the pickle uses memo index {arg!r} at byte {pos}, after only {count} "
                                      "opcodes; a pickler numbers them in order (the file is corrupt or hostile)")
            if op.name == "STOP":
                return stream.tell()
    except CheckpointError:
        raise
    except Exception as e:  # noqa: BLE001 - pickletools raises ValueError and others on malformed data
        raise CheckpointError(f"{where}: not a valid pickle ({type(e).__name__}: {e}); the file is corrupt or "
                              "truncated") from None
    raise CheckpointError(f"{where}: the pickle ends without STOP; the file is truncated")


def unpickle(data, where: str, *, legacy: bool, allow_namespace: bool = False, start: int = 0):
    """Unpickle the pickle at ``start`` of ``data`` (bytes-like or a :class:`CheckpointFile`; scanned first)
    with :class:`RestrictedUnpickler`. Returns (object, its length in bytes)."""
    end = scan_pickle(data, where, start)
    try:
        return RestrictedUnpickler(io.BytesIO(bytes(data[start:start + end])), where=where, legacy=legacy,
                                   allow_namespace=allow_namespace).load(), end
    except CheckpointError:
        raise
    except RecursionError:
        raise CheckpointError(f"{where}: the pickle nests too deeply to read") from None
    except Exception as e:  # noqa: BLE001 - a malformed pickle raises whatever its opcodes hit
        raise CheckpointError(f"{where}: the pickle could not be read ({type(e).__name__}: {str(e)[:200]}); "
                              "the file is corrupt or not written by torch.save") from None


# --- storages to arrays -----------------------------------------------------------------------------------

def _tensor_array(ref: TensorRef, storage: np.ndarray, stype: StorageType, big_endian: bool, where: str):
    """The numpy array of ``ref`` over ``storage`` (1-D, raw element dtype), bounds-checked, native order."""
    size, stride, offset = ref.size, ref.stride, ref.offset
    numel = 1
    for s in size:
        numel *= s
    if numel == 0:
        return np.zeros(size, dtype=np.float32 if stype.dtype == "bfloat16" else np.dtype(stype.dtype))
    last = offset + sum((s - 1) * st for s, st in zip(size, stride))
    if last >= storage.shape[0]:
        raise CheckpointError(
            f"{where}: a tensor of size {list(size)}, stride {list(stride)}, offset {offset} reaches element {last} "
            f"of a {stype!r} of {storage.shape[0]} elements; the file is corrupt"
        )
    contiguous, expect = True, 1
    for s, st in reversed(list(zip(size, stride))):
        if s != 1 and st != expect:
            contiguous = False
        expect *= s
    if contiguous:
        arr = storage[offset:offset + numel].reshape(size)
    else:
        item = storage.dtype.itemsize
        arr = np.lib.stride_tricks.as_strided(storage[offset:], shape=size, strides=[st * item for st in stride],
                                              writeable=False)
    if big_endian and arr.dtype.itemsize > 1:
        arr = arr.view(arr.dtype.newbyteorder(">")).astype(arr.dtype)
    if stype.dtype == "bfloat16":
        return _bfloat16_to_float32(arr)
    if stype.dtype == "bool":
        return arr != 0
    return arr


def _resolve(obj, storages, big_endian, where, depth=0):
    """``obj`` with every TensorRef replaced by its array (containers rebuilt; depth-limited)."""
    if isinstance(obj, TensorRef):
        stype = obj.storage.type
        return _tensor_array(obj, storages(obj.storage), stype, big_endian, where)
    if depth > MAX_DEPTH:
        raise CheckpointError(f"{where}: the checkpoint object nests deeper than {MAX_DEPTH} containers")
    if isinstance(obj, dict):
        out = type(obj)() if type(obj) in (dict, collections.OrderedDict) else {}
        for k, v in obj.items():
            out[k] = _resolve(v, storages, big_endian, where, depth + 1)
        return out
    if isinstance(obj, (list, tuple)):
        return type(obj)(_resolve(v, storages, big_endian, where, depth + 1) for v in obj)
    if isinstance(obj, Namespace):
        ns = Namespace()
        ns.__dict__.update({k: _resolve(v, storages, big_endian, where, depth + 1) for k, v in vars(obj).items()})
        return ns
    if isinstance(obj, (StorageRef, StorageType)):
        raise CheckpointError(f"{where}: the checkpoint holds a bare storage, not a tensor; refimpl reads tensors")
    return obj


def _open(path: Path):
    data = CheckpointFile(path)
    if data.size == 0:
        data.close()
        raise CheckpointError(f"{path} is empty (0 bytes): not a PyTorch checkpoint; download it again")
    return data, data.size


def is_zip(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(4) == b"PK\x03\x04"


def load(path, *, allow_namespace: bool = False):
    """Read a ``torch.save`` file (zip or legacy) and return its object with tensors as numpy arrays.

    Raises CheckpointError naming the file for anything that is not a torch-written state dict (a refused
    global, a storage larger than its record, a tensor outside its storage, a truncated file)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointNotFoundError(f"checkpoint file {path} does not exist")
    data, size = _open(path)
    try:
        if is_zip(path):
            return _load_zip(path, data, size, allow_namespace)
        return _load_legacy(path, data, size, allow_namespace)
    finally:
        data.close()


def _load_zip(path: Path, data: CheckpointFile, size: int, allow_namespace: bool):
    where = str(path)
    try:
        with zipfile.ZipFile(path) as z:
            infos = {i.filename: i for i in z.infolist()}
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError, struct.error) as e:
        raise CheckpointError(f"{where}: a zip archive that cannot be read ({e}); the file is corrupt or "
                              "truncated — download it again") from None
    pickles = [n for n in infos if n.endswith("/data.pkl") and n.count("/") == 1]
    if len(pickles) != 1:
        raise CheckpointError(f"{where}: a zip archive, but not a torch.save file: it should hold exactly one "
                              f"<archive>/data.pkl, it holds {sorted(pickles) or 'none'} (a TorchScript archive? "
                              "those are not state dicts)")
    archive = pickles[0][: -len("data.pkl")]

    def record(name):
        info = infos.get(archive + name)
        if info is None:
            return None
        if info.compress_type != zipfile.ZIP_STORED:
            raise CheckpointError(f"{where}: record {info.filename} is compressed (method {info.compress_type}); "
                                  "torch.save stores records uncompressed: re-save the file with torch.save")
        start = info.header_offset
        head = bytes(data[start:start + 30])
        if len(head) < 30 or head[:4] != b"PK\x03\x04":
            raise CheckpointError(f"{where}: record {info.filename} has no local header at byte {start}; corrupt file")
        n_name, n_extra = struct.unpack("<HH", head[26:30])
        begin = start + 30 + n_name + n_extra
        if begin + info.file_size > size:
            raise CheckpointError(f"{where}: record {info.filename} claims {human(info.file_size)} from byte {begin} "
                                  f"but the file is {human(size)}; it is truncated — download it again")
        return data[begin:begin + info.file_size]

    order = record("byteorder")
    order = b"little" if order is None else bytes(order)
    if order not in (b"little", b"big"):
        raise CheckpointError(f"{where}: byteorder record is {order[:20]!r}; expected b'little' or b'big'")
    pkl = record("data.pkl")
    if pkl.shape[0] > MAX_PICKLE_BYTES:
        raise CheckpointError(f"{where}: data.pkl is {human(pkl.shape[0])}, more than {human(MAX_PICKLE_BYTES)}; "
                              "a state dict's pickle is far smaller")
    obj, _ = unpickle(pkl, f"{where} ({archive}data.pkl)", legacy=False, allow_namespace=allow_namespace)
    cache = {}

    def storages(ref: StorageRef):
        hit = cache.get(ref.key)
        if hit is not None:
            if hit[1] is not ref.type and hit[1].raw != ref.type.raw:
                raise CheckpointError(f"{where}: storage {ref.key!r} is used as {hit[1]!r} and {ref.type!r}")
            return hit[0]
        raw = record(f"data/{ref.key}")
        if raw is None:
            raise CheckpointError(f"{where}: the pickle uses storage {ref.key!r}, but the archive has no record "
                                  f"{archive}data/{ref.key}; the file is corrupt")
        nbytes = ref.numel * ref.type.raw.itemsize
        if raw.shape[0] != nbytes:
            raise CheckpointError(
                f"{where}: storage {ref.key!r} claims {ref.numel} elements of {ref.type!r} ({human(nbytes)}) but its "
                f"record holds {human(raw.shape[0])}; the file is corrupt or truncated")
        arr = raw.view(ref.type.raw) if nbytes else np.zeros(0, ref.type.raw)
        cache[ref.key] = (arr, ref.type)
        return arr

    return _resolve(obj, storages, order == b"big", where)


class _Cursor:
    def __init__(self, data, size, where):
        self.data, self.size, self.pos, self.where = data, size, 0, where

    def pickle(self, what, allow_namespace=False):
        if self.pos >= self.size:
            raise CheckpointError(f"{self.where}: the file ends before its {what}; it is truncated")
        obj, n = unpickle(self.data, f"{self.where} ({what})", legacy=True, allow_namespace=allow_namespace,
                          start=self.pos)
        self.pos += n
        return obj


def _load_legacy(path: Path, data: CheckpointFile, size: int, allow_namespace: bool):
    where = str(path)
    if bytes(data[:262]).find(b"ustar", 257) == 257:
        raise CheckpointError(f"{where} is a tar archive: the torch < 0.4 checkpoint format, which refimpl does not "
                              "read; load it with an old torch and save it again")
    if data[0] != 0x80:
        raise CheckpointError(f"{where} is neither a zip archive nor a pickle (first byte {bytes(data[:1])!r}): not a "
                              "torch.save file; is it a TF checkpoint or a safetensors file renamed?")
    cur = _Cursor(data, size, where)
    magic = cur.pickle("magic number")
    if magic != MAGIC_NUMBER:
        raise CheckpointError(f"{where} is a pickle but not a torch.save file: it starts with {magic!r:.60}, not "
                              f"torch's magic number {MAGIC_NUMBER:#x}")
    version = cur.pickle("protocol version")
    if version != PROTOCOL_VERSION:
        raise CheckpointError(f"{where}: torch legacy protocol version {version!r:.60}, expected {PROTOCOL_VERSION}")
    cur.pickle("sys info")
    obj = cur.pickle("object", allow_namespace)
    keys = cur.pickle("storage keys")
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys) or len(set(keys)) != len(keys):
        raise CheckpointError(f"{where}: the storage key list is {keys!r:.100}; expected distinct strings")

    refs = {}  # the types the object gives its storages

    def collect(o, depth=0):
        if depth > MAX_DEPTH:
            raise CheckpointError(f"{where}: the checkpoint object nests deeper than {MAX_DEPTH} containers")
        if isinstance(o, TensorRef):
            prev = refs.setdefault(o.storage.key, o.storage)
            if prev.type.raw != o.storage.type.raw:
                raise CheckpointError(f"{where}: storage {o.storage.key!r} used as {prev.type!r} and {o.storage.type!r}")
        elif isinstance(o, dict):
            for v in o.values():
                collect(v, depth + 1)
        elif isinstance(o, (list, tuple)):
            for v in o:
                collect(v, depth + 1)
        elif isinstance(o, Namespace):
            collect(vars(o), depth + 1)

    collect(obj)
    roots = {}
    pos = cur.pos
    for key in keys:
        ref = refs.get(key)
        if ref is None:
            raise CheckpointError(f"{where}: storage {key!r} is listed but no tensor uses it; refimpl cannot know its "
                                  "element size (the file holds bare storages, not a state dict)")
        if pos + 8 > size:
            raise CheckpointError(f"{where}: the file ends at storage {key!r}'s size field; it is truncated")
        (numel,) = struct.unpack("<q", bytes(data[pos:pos + 8]))
        nbytes = numel * ref.type.raw.itemsize
        if numel < 0 or pos + 8 + nbytes > size:
            raise CheckpointError(
                f"{where}: storage {key!r} claims {numel} elements of {ref.type!r} ({human(max(nbytes, 0))}) from "
                f"byte {pos + 8}, but the file is {human(size)}; it is truncated or corrupt — download it again")
        raw = data[pos + 8:pos + 8 + nbytes]
        arr = raw.view(ref.type.raw) if nbytes else np.zeros(0, ref.type.raw)  # owned, aligned (np.empty)
        roots[key] = arr
        pos += 8 + nbytes

    def storages(ref: StorageRef):
        arr = roots.get(ref.key)
        if arr is None:
            raise CheckpointError(f"{where}: the pickle uses storage {ref.key!r}, which the file does not list")
        if ref.numel != arr.shape[0] and ref.view is None:
            raise CheckpointError(f"{where}: storage {ref.key!r} is {ref.numel} elements in the pickle but "
                                  f"{arr.shape[0]} in the data; the file is corrupt")
        if ref.view is not None:
            lo, n = ref.view
            if lo + n > arr.shape[0]:
                raise CheckpointError(f"{where}: a view of storage {ref.key!r} covers elements [{lo}, {lo + n}) of "
                                      f"{arr.shape[0]}; the file is corrupt")
            arr = arr[lo:lo + n]
        return arr

    return _resolve(obj, storages, False, where)


def read_state_dict(path) -> dict:
    """A ``pytorch_model.bin`` (either format) as name -> numpy array; CheckpointError if the pickle is
    anything but a flat mapping of names to tensors."""
    obj = load(path)
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: holds a {type(obj).__name__}, not a state dict (a mapping of names to tensors)")
    bad = [k for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, np.ndarray)]
    if bad:
        raise CheckpointError(f"{path}: the state dict has entries that are not name -> tensor: {bad[:5]!r:.300}; "
                              "a checkpoint that wraps its state dict (a training checkpoint) must be unwrapped "
                              "with torch first")
    return dict(obj)
