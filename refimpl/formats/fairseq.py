"""fairseq RoBERTa checkpoints (``model.pt`` + ``dict.txt`` + GPT-2's ``encoder.json`` / ``vocab.bpe``) read
without fairseq or torch, mapped as transformers' ``convert_roberta_original_pytorch_checkpoint_to_pytorch.py``.

``model.pt`` is a ``torch.save`` dict ``{"args": argparse.Namespace | None, "cfg": dict | None, "model":
state dict, "optimizer_history": [...], "extra_state": {...}, ...}``, read by
:mod:`refimpl.formats.torch_pickle` with one more allowed global, ``argparse.Namespace`` (fairseq pickles its
command-line arguments as one), resolved to an inert attribute holder. Anything else (an omegaconf object, a
numpy scalar in ``extra_state``) is refused with the global's name. Newer fairseq stores ``cfg`` as a plain
dict (``OmegaConf.to_container``), which needs nothing more.

Names (``hf_name``; ``P`` is ``encoder.`` or, in fairseq < 0.9 checkpoints, ``decoder.``; E is
``P + "sentence_encoder."``, L ``roberta.encoder.layer.{i}.``):

| fairseq | transformers |
|---|---|
| E ``embed_tokens.weight`` | ``roberta.embeddings.word_embeddings.weight`` |
| E ``embed_positions.weight`` | ``roberta.embeddings.position_embeddings.weight`` |
| E ``emb_layer_norm.*`` / ``layernorm_embedding.*`` | ``roberta.embeddings.LayerNorm.*`` |
| E ``layers.{i}.self_attn.{q,k,v}_proj.*`` | L ``attention.self.{query,key,value}.*`` |
| E ``layers.{i}.self_attn.in_proj_{weight,bias}`` (older fairseq) | split in thirds into q, k, v (as fairseq's own upgrade) |
| E ``layers.{i}.self_attn.out_proj.*`` | L ``attention.output.dense.*`` |
| E ``layers.{i}.self_attn_layer_norm.*`` | L ``attention.output.LayerNorm.*`` |
| E ``layers.{i}.fc1.*`` / ``fc2.*`` | L ``intermediate.dense.*`` / L ``output.dense.*`` |
| E ``layers.{i}.final_layer_norm.*`` | L ``output.LayerNorm.*`` |
| P ``lm_head.dense.*`` / ``lm_head.layer_norm.*`` | ``lm_head.dense.*`` / ``lm_head.layer_norm.*`` |
| P ``lm_head.weight`` / ``lm_head.bias`` | ``lm_head.decoder.weight`` (tied) / ``lm_head.bias`` |
| (none) | ``roberta.embeddings.token_type_embeddings.weight``: zeros [1, D], as the script sets them |

Skipped and listed in ``load_report["format_skipped"]``: ``*.version`` buffers, ``_float_tensor``,
``classification_heads.*`` (refimpl has no RoBERTa classification class). The config comes from ``args``
(or ``cfg["model"]``) as the script builds it: hidden ``encoder_embed_dim``, ``encoder_layers``,
``encoder_attention_heads``, ``encoder_ffn_embed_dim``, ``activation_fn``, vocab and positions from the
tensors (514 for roberta-base), ``type_vocab_size`` 1, ``layer_norm_eps`` 1e-5, pad 1, bos 0, eos 2.

The vocabulary: fairseq's ``Dictionary`` is ``<s> <pad> </s> <unk>``, then ``dict.txt``'s symbols in file
order, then ``<mask>`` (and ``madeupwordNNNN`` padding up to the embedding's rows). A symbol that is a number
is a GPT-2 BPE id of ``encoder.json``; transformers' RoBERTa ``vocab.json`` maps each id's GPT-2 token to its
fairseq index, and ``merges.txt`` is ``vocab.bpe`` (:func:`hf_vocab`, :func:`write_hf_tokenizer`).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from ..checkpoint import read_json_file
from ..errors import CheckpointError, CheckpointNotFoundError, TokenizerError
from . import torch_pickle
from ._common import TensorDict

SPECIALS = ["<s>", "<pad>", "</s>", "<unk>"]
_LAYER = {
    "self_attn.q_proj": "attention.self.query", "self_attn.k_proj": "attention.self.key",
    "self_attn.v_proj": "attention.self.value", "self_attn.out_proj": "attention.output.dense",
    "self_attn_layer_norm": "attention.output.LayerNorm", "fc1": "intermediate.dense", "fc2": "output.dense",
    "final_layer_norm": "output.LayerNorm",
}


def load_model_pt(path: Path) -> dict:
    """``model.pt`` as a dict (tensors as numpy arrays; ``args`` a :class:`torch_pickle.Namespace`)."""
    obj = torch_pickle.load(path, allow_namespace=True)
    if not isinstance(obj, dict) or not isinstance(obj.get("model"), dict):
        raise CheckpointError(f"{path}: not a fairseq checkpoint (a dict with a 'model' state dict); it holds "
                              f"{type(obj).__name__}" + (f" with keys {sorted(map(str, obj))[:8]}" if isinstance(obj, dict) else ""))
    return obj


def model_args(ckpt: dict, where) -> dict:
    args = ckpt.get("args")
    if isinstance(args, torch_pickle.Namespace):
        return dict(vars(args))
    cfg = ckpt.get("cfg")
    if isinstance(cfg, dict):
        model = cfg.get("model")
        if isinstance(model, torch_pickle.Namespace):
            return dict(vars(model))
        if isinstance(model, dict):
            return model
    raise CheckpointError(f"{where}: the fairseq checkpoint has neither 'args' nor 'cfg'['model']; its model's "
                          "sizes are unknown")


def hf_name(name: str):
    """(transformers' name, or None to skip) for a fairseq RoBERTa tensor name; unknown names come back
    unchanged (strict loading then reports them)."""
    if name.endswith(".version") or name.endswith("_float_tensor") or name.startswith("classification_heads."):
        return None
    m = re.fullmatch(r"(?:encoder|decoder)\.(.*)", name)
    if not m:
        return name
    rest = m.group(1)
    if rest.startswith("lm_head."):
        head = rest[len("lm_head."):]
        return {"weight": "lm_head.decoder.weight", "bias": "lm_head.bias"}.get(head, "lm_head." + head)
    if not rest.startswith("sentence_encoder."):
        return name
    rest = rest[len("sentence_encoder."):]
    simple = {"embed_tokens.weight": "roberta.embeddings.word_embeddings.weight",
              "embed_positions.weight": "roberta.embeddings.position_embeddings.weight"}
    if rest in simple:
        return simple[rest]
    m = re.fullmatch(r"(?:emb_layer_norm|layernorm_embedding)\.(weight|bias)", rest)
    if m:
        return f"roberta.embeddings.LayerNorm.{m.group(1)}"
    m = re.fullmatch(r"layers\.(\d+)\.(.+)\.(weight|bias)", rest)
    if m and m.group(2) in _LAYER:
        return f"roberta.encoder.layer.{int(m.group(1))}.{_LAYER[m.group(2)]}.{m.group(3)}"
    return name


def read_roberta_checkpoint(directory) -> TensorDict:
    """A fairseq RoBERTa directory's ``model.pt`` as transformers' RobertaForMaskedLM names -> arrays."""
    path = Path(directory) / "model.pt"
    ckpt = load_model_pt(path)
    out = TensorDict(format="fairseq")
    for name, arr in ckpt["model"].items():
        if not isinstance(name, str) or not isinstance(arr, np.ndarray):
            raise CheckpointError(f"{path}: the 'model' state dict has an entry {name!r:.80} that is not a tensor")
        m = re.fullmatch(r"(?:encoder|decoder)\.sentence_encoder\.layers\.(\d+)\.self_attn\.in_proj_(weight|bias)", name)
        if m:  # older fairseq: q, k, v stacked; split as fairseq's MultiheadAttention.upgrade_state_dict_named
            if arr.shape[0] % 3:
                raise CheckpointError(f"{path}: {name} has {arr.shape[0]} rows, not a multiple of 3 (q, k, v)")
            third = arr.shape[0] // 3
            for k, part in enumerate(("query", "key", "value")):
                out[f"roberta.encoder.layer.{int(m.group(1))}.attention.self.{part}.{m.group(2)}"] = \
                    arr[k * third:(k + 1) * third]
            continue
        new = hf_name(name)
        if new is None:
            out.skipped.append(name)
            continue
        if new in out:
            raise CheckpointError(f"{path}: {name} and another tensor both map to {new}")
        out[new] = arr
    emb = out.get("roberta.embeddings.word_embeddings.weight")
    if emb is None or emb.ndim != 2:
        raise CheckpointError(f"{path}: no 2-D encoder.sentence_encoder.embed_tokens.weight; not a RoBERTa checkpoint")
    out["roberta.embeddings.token_type_embeddings.weight"] = np.zeros((1, emb.shape[1]), emb.dtype)
    out.files = {k: str(path) for k in out}
    return out


def config_from_args(path: Path) -> dict:
    """transformers' RobertaConfig fields for a fairseq ``model.pt``, as the conversion script sets them."""
    ckpt = load_model_pt(path)
    args = model_args(ckpt, path)
    sd = ckpt["model"]
    emb = next((v for k, v in sd.items() if k.endswith("sentence_encoder.embed_tokens.weight")), None)
    pos = next((v for k, v in sd.items() if k.endswith("sentence_encoder.embed_positions.weight")), None)
    if emb is None or pos is None:
        raise CheckpointError(f"{path}: no embed_tokens / embed_positions weights; not a RoBERTa checkpoint")
    if args.get("encoder_normalize_before"):
        raise CheckpointError(f"{path}: encoder_normalize_before=True (pre-LayerNorm) is not RoBERTa's architecture; "
                              "transformers' RobertaModel (and refimpl's) is post-LayerNorm")
    need = ["encoder_layers", "encoder_attention_heads", "encoder_ffn_embed_dim"]
    missing = [k for k in need if not isinstance(args.get(k), int)]
    if missing:
        raise CheckpointError(f"{path}: the checkpoint's args lack integer {missing}; not a fairseq RoBERTa checkpoint")
    act = args.get("activation_fn", "gelu")
    return {
        "architectures": ["RobertaForMaskedLM"], "model_type": "roberta",
        "vocab_size": int(emb.shape[0]), "hidden_size": int(emb.shape[1]), "num_hidden_layers": args["encoder_layers"],
        "num_attention_heads": args["encoder_attention_heads"], "intermediate_size": args["encoder_ffn_embed_dim"],
        "hidden_act": act, "max_position_embeddings": int(pos.shape[0]), "type_vocab_size": 1, "layer_norm_eps": 1e-5,
        "hidden_dropout_prob": float(args.get("dropout", 0.1)),
        "attention_probs_dropout_prob": float(args.get("attention_dropout", 0.1)),
        "pad_token_id": 1, "bos_token_id": 0, "eos_token_id": 2,
    }


def fairseq_symbols(dict_txt: Path, rows: int | None = None) -> list:
    """fairseq's Dictionary for RoBERTa: the four specials, dict.txt's symbols, ``<mask>``, then
    ``madeupwordNNNN`` up to ``rows`` (the embedding's size)."""
    symbols = list(SPECIALS)
    try:
        lines = dict_txt.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise TokenizerError(f"fairseq dictionary {dict_txt} cannot be read ({e})") from None
    for n, line in enumerate(lines, 1):
        parts = line.rstrip().split(" ")
        if parts and parts[-1] == "#fairseq:overwrite":
            parts = parts[:-1]
        if len(parts) < 2 or not parts[-1].lstrip("-").isdigit():
            raise TokenizerError(f"{dict_txt} line {n}: expected '<symbol> <count>', got {line[:80]!r}")
        symbols.append(" ".join(parts[:-1]))
    if "<mask>" not in symbols:
        symbols.append("<mask>")
    k = 0
    while rows is not None and len(symbols) < rows:
        symbols.append(f"madeupword{k:04d}")
        k += 1
    return symbols


def hf_vocab(directory, rows: int | None = None) -> dict:
    """transformers' RoBERTa ``vocab.json`` (GPT-2 token -> fairseq index) for a fairseq directory."""
    d = Path(directory)
    for name in ("dict.txt", "encoder.json", "vocab.bpe"):
        if not (d / name).is_file():
            raise CheckpointNotFoundError(f"{d} has no {name}; a fairseq RoBERTa directory needs dict.txt, "
                                          "encoder.json and vocab.bpe for its tokenizer")
    encoder = read_json_file(d / "encoder.json", "GPT-2's encoder")
    if not isinstance(encoder, dict):
        raise TokenizerError(f"{d / 'encoder.json'} is not a JSON object of token -> id")
    by_id = {v: k for k, v in encoder.items() if isinstance(v, int)}
    vocab = {}
    for index, symbol in enumerate(fairseq_symbols(d / "dict.txt", rows)):
        token = by_id.get(int(symbol)) if symbol.isdigit() else symbol
        if token is None:
            raise TokenizerError(f"{d / 'dict.txt'}: symbol {symbol} is not an id of encoder.json")
        vocab.setdefault(token, index)
    return vocab


def write_hf_tokenizer(src, dst) -> list:
    """Write ``vocab.json`` and ``merges.txt`` (transformers' RobertaTokenizer files) for a fairseq directory."""
    src, dst = Path(src), Path(dst)
    if not (src / "dict.txt").is_file():
        return []
    rows = None
    cfg = dst / "config.json"
    if cfg.is_file():
        rows = json.loads(cfg.read_text(encoding="utf-8")).get("vocab_size")
    (dst / "vocab.json").write_text(json.dumps(hf_vocab(src, rows), ensure_ascii=False), encoding="utf-8")
    (dst / "merges.txt").write_text((src / "vocab.bpe").read_text(encoding="utf-8"), encoding="utf-8")
    return ["vocab.json", "merges.txt"]
