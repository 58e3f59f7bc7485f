"""``refimpl convert SRC DST``: any checkpoint refimpl reads, written as a transformers-loadable safetensors
directory (config.json + model.safetensors, and the tokenizer files transformers needs).

The checkpoint is loaded strictly into a refimpl model class and saved with ``save_pretrained``, so DST holds
exactly the tensors that class uses, under transformers' names, in float32 (a float16 / bfloat16 source is
widened exactly). The class: ``model_class`` if given; else the config's ``architectures``; else by format —
a TF bundle with both pre-training heads is ``BertForPreTraining``, a fairseq checkpoint with its LM head is
``RobertaForMaskedLM``, anything else the base model of its ``model_type``. Tokenizer files: ``vocab.txt``
(and ``tokenizer_config.json``) are copied; a fairseq directory's ``dict.txt`` + ``encoder.json`` +
``vocab.bpe`` become ``vocab.json`` + ``merges.txt`` (:func:`refimpl.formats.fairseq.write_hf_tokenizer`).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from ..checkpoint import load_checkpoint_tensors, local_directory, read_json_file
from ..errors import CheckpointError

COPIED = ("vocab.txt", "tokenizer_config.json", "special_tokens_map.json", "vocab.json", "merges.txt",
          "tokenizer.json", "generation_config.json")


def _classes():
    import refimpl

    return {name: getattr(refimpl, name) for name in dir(refimpl)
            if isinstance(getattr(refimpl, name), type) and hasattr(getattr(refimpl, name), "from_pretrained")
            and hasattr(getattr(refimpl, name), "save_pretrained")}


def pick_class(src: Path, tensors, model_class: str | None):
    classes = _classes()
    if model_class is not None:
        if model_class not in classes:
            raise CheckpointError(f"model class {model_class!r} is not a refimpl model class; one of {sorted(classes)}")
        return classes[model_class]
    from .directory import config_dict

    config = read_json_file(src / "config.json", "the config") if (src / "config.json").is_file() else config_dict(src)
    config = config if isinstance(config, dict) else {}
    for arch in config.get("architectures") or []:
        if arch in classes:
            return classes[arch]
    fmt = getattr(tensors, "format", "safetensors")
    if fmt == "tf_bundle" and "cls.seq_relationship.weight" in tensors and "cls.predictions.bias" in tensors:
        return classes["BertForPreTraining"]
    if fmt == "fairseq" and "lm_head.dense.weight" in tensors:
        return classes["RobertaForMaskedLM"]
    model_type = config.get("model_type", "bert")
    base = {"bert": "BertModel", "roberta": "RobertaModel", "bert-generation": "BertGenerationEncoder"}.get(model_type)
    if base is None:
        raise CheckpointError(f"{src}: model_type {model_type!r} has no refimpl class; give --model-class")
    return classes[base]


def convert(src, dst, model_class: str | None = None) -> dict:
    """Write checkpoint directory ``src`` (any format refimpl reads) as safetensors into ``dst``. Returns what
    was done: source format, class, tensor count, files written."""
    src, dst = local_directory(src), Path(dst)
    if dst.exists() and dst.resolve() == src.resolve():
        raise CheckpointError(f"convert: DST {dst} is SRC; write into another directory")
    tensors, _ = load_checkpoint_tensors(src)
    cls = pick_class(src, tensors, model_class)
    model = cls.from_pretrained(src, dtype="float32")
    model.save_pretrained(dst)
    written = ["config.json", "model.safetensors"]
    for name in COPIED:
        if (src / name).is_file() and not (dst / name).exists():
            shutil.copyfile(src / name, dst / name)
            written.append(name)
    if model.load_report.get("format") == "fairseq":
        from .fairseq import write_hf_tokenizer

        written += write_hf_tokenizer(src, dst)
    return {"format": model.load_report.get("format"), "class": cls.__name__, "tensors": len(model.params),
            "written": written, "skipped": model.load_report.get("format_skipped", []),
            "ignored": model.load_report.get("ignored", [])}
