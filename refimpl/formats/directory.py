"""Which format a checkpoint directory holds, and reading it.

The files present decide, in this order (the first match wins; ``load_report["format"]`` says which):

1. ``model.safetensors`` or ``model.safetensors.index.json`` — "safetensors" (refimpl/checkpoint.py);
2. ``pytorch_model.bin`` or ``pytorch_model.bin.index.json`` — "pytorch_bin" (:mod:`.torch_pickle`);
3. a TensorFlow 1 checkpoint ``<prefix>.index`` + ``<prefix>.data-*-of-*`` — "tf_bundle" (:mod:`.tf_bundle`,
   names mapped as transformers' ``load_tf_weights_in_bert``); the config is ``config.json`` or Google's
   ``bert_config.json``;
4. fairseq's ``model.pt`` — "fairseq" (:mod:`.fairseq`, names mapped as transformers' RoBERTa conversion
   script); the config is ``config.json`` or built from the checkpoint's ``args``.
"""

from __future__ import annotations

from pathlib import Path

from ..checkpoint import inside_directory, read_json_file
from ..errors import CheckpointError, CheckpointNotFoundError
from . import torch_pickle
from ._common import TensorDict

FORMATS = ("safetensors", "pytorch_bin", "tf_bundle", "fairseq")


def detect_format(directory) -> str | None:
    """The format of a checkpoint directory by the files it holds (see the module docstring), or None."""
    d = Path(directory)
    if (d / "model.safetensors").is_file() or (d / "model.safetensors.index.json").is_file():
        return "safetensors"
    if (d / "pytorch_model.bin").is_file() or (d / "pytorch_model.bin.index.json").is_file():
        return "pytorch_bin"
    from . import tf_bundle

    if tf_bundle.find_prefix(d, required=False) is not None:
        return "tf_bundle"
    if (d / "model.pt").is_file():
        return "fairseq"
    return None


def read_directory(directory) -> TensorDict:
    """The tensors of a checkpoint directory in a format other than safetensors, under transformers' names,
    as a :class:`TensorDict` (``.files``: name -> the file it came from). CheckpointNotFoundError when the
    directory holds no checkpoint of any known format."""
    d = Path(directory)
    fmt = detect_format(d)
    if fmt == "pytorch_bin":
        return read_pytorch_bin(d)
    if fmt == "tf_bundle":
        from . import tf_bundle

        return tf_bundle.read_bert_checkpoint(d)
    if fmt == "fairseq":
        from . import fairseq

        return fairseq.read_roberta_checkpoint(d)
    others = sorted(p.name for p in d.iterdir())[:12] if d.is_dir() else []
    raise CheckpointNotFoundError(
        f"no model.safetensors or model.safetensors.index.json in {d}, nor another format refimpl reads "
        f"(pytorch_model.bin[.index.json], a TensorFlow 1 checkpoint <prefix>.index + <prefix>.data-*, fairseq's "
        f"model.pt); the directory holds {others}")


def read_pytorch_bin(directory: Path) -> TensorDict:
    """``pytorch_model.bin``, or the shards ``pytorch_model.bin.index.json`` lists (each inside the directory)."""
    single = directory / "pytorch_model.bin"
    if single.is_file():
        tensors = torch_pickle.read_state_dict(single)
        return _with_files(TensorDict(tensors, format="pytorch_bin"), {k: str(single) for k in tensors})
    index = directory / "pytorch_model.bin.index.json"
    data = read_json_file(index, "the PyTorch index")
    weight_map = data.get("weight_map") if isinstance(data, dict) else None
    if not isinstance(weight_map, dict) or not all(isinstance(v, str) for v in weight_map.values()):
        raise CheckpointError(f"{index} has no 'weight_map' of tensor name -> shard file name; it is not a "
                              "transformers index file")
    out, files = TensorDict(format="pytorch_bin"), {}
    for shard in sorted(set(weight_map.values())):
        path = inside_directory(directory, shard, str(index))
        if not path.is_file():
            raise CheckpointNotFoundError(f"{index} lists the shard {shard!r}, which is not in {directory}; "
                                          "download the missing shard")
        for name, arr in torch_pickle.read_state_dict(path).items():
            if name in out:
                raise CheckpointError(f"tensor {name!r} is in two shards: {files[name]} and {path}")
            out[name], files[name] = arr, str(path)
    missing = sorted(set(weight_map) - set(out))
    if missing:
        raise CheckpointError(f"{index} lists tensors that no shard holds: {missing[:5]}")
    return _with_files(out, files)


def _with_files(tensors: TensorDict, files: dict) -> TensorDict:
    tensors.files = files
    return tensors


def config_dict(directory) -> dict | None:
    """The config a checkpoint directory without config.json carries: Google's ``bert_config.json`` beside a
    TF checkpoint, or the ``args`` of a fairseq ``model.pt``; None otherwise."""
    d = Path(directory)
    fmt = detect_format(d)
    if fmt == "tf_bundle" and (d / "bert_config.json").is_file():
        data = read_json_file(d / "bert_config.json", "the BERT config")
        if not isinstance(data, dict):
            raise CheckpointError(f"{d / 'bert_config.json'} is not a JSON object")
        return data
    if fmt == "fairseq":
        from . import fairseq

        return fairseq.config_from_args(d / "model.pt")
    return None
