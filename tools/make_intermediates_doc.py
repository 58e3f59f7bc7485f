"""Write docs/intermediates.md: every name refimpl's recorder files, with its shape and meaning.

    python tools/make_intermediates_doc.py          # rewrites docs/intermediates.md
    python tools/make_intermediates_doc.py --check  # exit 1 if the file is not what the code records

Generated from the code: tiny random models (refimpl only, no torch) are run with a recorder, and their
names are listed in forward order, layer numbers as {i} and generation steps as {t}; the meanings come
from ``refimpl.recorder.MEANINGS``. Shapes are written with the dimension legend: the example models use
sizes chosen so that every dimension has a value of its own (B=8, S=5, ...; 1 and 2 are literal sizes).
tests/test_recorder.py fails when the file and the code disagree.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import refimpl  # noqa: E402
from refimpl.config import BertConfig  # noqa: E402
from refimpl.models.encoder_decoder import EncoderDecoderConfig, EncoderDecoderModel  # noqa: E402
from refimpl.recorder import MEANINGS, meaning_key, pattern_of  # noqa: E402

B, S, N, H, F, V, E, C, D_ENC, BEAMS = 8, 5, 3, 7, 37, 99, 11, 13, 15, 2
D = N * H
SYMBOLS = {B: "B", S: "S", N: "N", H: "H", D: "D", F: "F", V: "V", E: "E", C: "C", D_ENC: "D_enc",
           B * BEAMS: "R", 6: "T", 4: "T"}
LEGEND = (f"B batch ({B}), S tokens in the call ({S}), N heads ({N}), H head size ({H}), D hidden size ({D}), "
          f"F intermediate size ({F}), V vocabulary ({V}), E encoder length ({E}), C labels ({C}), D_enc the "
          f"encoder's hidden size in an encoder-decoder ({D_ENC}), R = B x beams rows while generating "
          f"({B * BEAMS}, with {BEAMS} beams), T keys read (cached + new: 6 in the cached call, 4 at step 3); 1 and 2 are literal")


def config(**kw):
    base = dict(vocab_size=V, hidden_size=D, num_attention_heads=N, intermediate_size=F, num_hidden_layers=2,
                max_position_embeddings=32, type_vocab_size=2)
    base.update(kw)
    return BertConfig.from_dict(base)


def random_model(cls, cfg, seed=0):
    rng = np.random.default_rng(seed)
    tensors = {k: (rng.standard_normal(s) * 0.2).astype(np.float32) for k, s in cls.param_shapes(cfg).items()}
    return cls.from_tensors(cfg, tensors)


def examples():
    """(title, recorder) for each documented configuration."""
    rng = np.random.default_rng(0)
    ids = rng.integers(5, V, (B, S))
    out = []

    def run(title, model, **inputs):
        with refimpl.record(model) as rec:
            model(**inputs)
        out.append((title, rec))

    run("BertModel (absolute positions)", random_model(refimpl.BertModel, config()), input_ids=ids)
    run("BertModel with relative_key_query positions (only what differs is new: position_scores)",
        random_model(refimpl.BertModel, config(position_embedding_type="relative_key_query")), input_ids=ids)
    run("BertForPreTraining with labels (the base model's names as above, under bert.)", random_model(refimpl.BertForPreTraining, config()), input_ids=ids,
        labels=ids, next_sentence_label=np.zeros(B, np.int64))
    run("BertForSequenceClassification", random_model(refimpl.BertForSequenceClassification, config(num_labels=C)),
        input_ids=ids, labels=np.zeros(B, np.int64))
    run("BertForTokenClassification", random_model(refimpl.BertForTokenClassification, config(num_labels=C)),
        input_ids=ids)
    run("BertForQuestionAnswering", random_model(refimpl.BertForQuestionAnswering, config()), input_ids=ids)
    from refimpl.models.roberta import RobertaConfig

    rcfg = RobertaConfig.from_dict({**config().to_dict(), "model_type": "roberta", "pad_token_id": 1})
    run("RobertaForMaskedLM (the base model's names as above, under roberta.)", random_model(refimpl.RobertaForMaskedLM, rcfg), input_ids=ids)

    dec_cfg = config(is_decoder=True, add_cross_attention=True)
    dec = random_model(refimpl.BertLMHeadModel, dec_cfg)
    enc_states = rng.standard_normal((B, E, D)).astype(np.float32)
    first = dec(input_ids=ids, encoder_hidden_states=enc_states)  # fills the cache with S positions
    run("BertLMHeadModel with cross-attention: one token through a cache holding S = 5 positions (T = 6)", dec,
        input_ids=ids[:, :1], encoder_hidden_states=enc_states, past_key_values=first.past_key_values)

    enc = random_model(refimpl.BertModel, config(hidden_size=D_ENC, num_attention_heads=3), seed=1)
    ed_cfg = EncoderDecoderConfig(encoder=enc.config, decoder=dec_cfg, decoder_start_token_id=2, pad_token_id=0,
                                  eos_token_id=None)
    proj = {"enc_to_dec_proj.weight": (rng.standard_normal((D, D_ENC)) * 0.2).astype(np.float32),
            "enc_to_dec_proj.bias": np.zeros(D, np.float32)}
    ed = EncoderDecoderModel(ed_cfg, enc, random_model(refimpl.BertLMHeadModel, dec_cfg, seed=2), proj)
    src = rng.integers(5, V, (B, E))
    with refimpl.record(ed) as rec:
        ed.generate(src, num_beams=BEAMS, max_new_tokens=4)
    out.append(("EncoderDecoderModel.generate, beam search (2 beams): the encoder once, cross-attention keys and "
                "values once, then every decoder call under step.{t}. (shapes at step 3)", rec))
    return out


def shape_text(shape):
    return "[" + ", ".join(SYMBOLS.get(d, str(d)) if d not in (1, 2) else str(d) for d in shape) + "]"


def render() -> str:
    lines = [
        "# Intermediates: every name the recorder files",
        "",
        "Generated by `python tools/make_intermediates_doc.py` from the code (tests/test_recorder.py fails when",
        "this file and the code disagree). Record with `with refimpl.record(model) as rec: model(**inputs)`, or",
        "`model(**inputs, recorder=refimpl.Recorder(include=\"encoder.layer.3.*\"))`; `list(rec)` gives the names",
        "in forward order. A name is a checkpoint prefix plus a suffix; where transformers has a module of that",
        "name the tensor is its output (tools/hf_record.py takes the same tensors out of transformers, and",
        "tests/test_recorder_parity.py checks them tensor by tensor). Head classes keep the base model under",
        "`bert.` / `roberta.`, an EncoderDecoderModel its parts under `encoder.` / `decoder.`, as their",
        "checkpoints do; `{i}` is a layer, `{t}` a generation step (0: the call on the start tokens).",
        "",
        f"Shapes: {LEGEND}.",
        "",
    ]
    seen = set()
    for title, rec in examples():
        rows = []
        for name in rec:
            pattern = pattern_of(name)
            base = pattern.split(".", 1)[1] if pattern.startswith(("bert.", "roberta.")) else pattern
            if base in seen or ("{t}" in pattern and not name.startswith("step.3.")) or \
                    ("{i}" in pattern and ".layer.0." not in name):
                continue
            seen.add(base)
            key = meaning_key(name)
            rows.append(f"| `{pattern}` | {shape_text(np.shape(rec[name]))} | {MEANINGS[key] if key else '?'} |")
        if rows:
            lines += [f"## {title}", "", "| name | shape | meaning |", "|---|---|---|", *rows, ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="compare instead of writing")
    args = ap.parse_args(argv)
    path = ROOT / "docs" / "intermediates.md"
    text = render()
    if args.check:
        same = path.exists() and path.read_text() == text
        print("docs/intermediates.md is up to date" if same else "docs/intermediates.md differs from the code")
        return 0 if same else 1
    path.write_text(text)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
