"""Tiny encoder-decoders and decoders built by transformers for the generation tests, saved and loaded by
refimpl. Weights are scaled up (x``SCALE``) so the next-token distribution is peaked: top candidates are
separated by far more than float32 rounding, so ties cannot decide a result.

Sizes are odd and distinct (vocab 99, hidden 32 / 24, 4 heads, intermediate 37) so transposes and head
splits cannot hide. The eos token of each model is chosen among the tokens its greedy search emits early,
so rows finish at different steps.
"""

import numpy as np

from reference import reference

SCALE = 6.0
VOCAB = 99
PAD, START = 0, 3


def _peaked(torch, model, seed):
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.02 * SCALE) if p.dim() > 1 else p.normal_(0.0, 0.02)
        for name, p in model.named_parameters():
            if "LayerNorm.weight" in name:
                p.fill_(1.0)
    return model.eval()


def _choose_eos(torch, model, ids, mask, is_ed):
    """A token greedy search emits around step 3 for some rows: the eos that makes rows finish at different steps."""
    with torch.no_grad():
        kw = dict(max_new_tokens=8, do_sample=False, num_beams=1)
        if is_ed:
            out = model.generate(torch.tensor(ids), attention_mask=torch.tensor(mask), **kw).numpy()
            gen = out[:, 1:]
        else:
            out = model.generate(torch.tensor(ids), attention_mask=torch.tensor(mask), **kw).numpy()
            gen = out[:, ids.shape[1]:]
    counts = np.bincount(gen[:, 2:5].ravel(), minlength=VOCAB)
    counts[[PAD, START]] = 0
    return int(counts.argmax())


def source_batch(seed=0, batch=3, length=9):
    rng = np.random.default_rng(seed)
    ids = rng.integers(5, VOCAB, (batch, length))
    mask = np.ones_like(ids)
    if batch > 1:
        mask[1, length - 3:] = 0  # right padding in the encoder input
        ids[1, length - 3:] = PAD
    return ids, mask


def build_encoder_decoder(tmp_path, kind="bert", seed=0):
    """(hf_model, directory) of a peaked encoder-decoder: ``bert`` (BertModel + BertLMHeadModel, hidden
    32 -> 24, so enc_to_dec_proj is used) or ``bert-generation`` (BertGeneration encoder and decoder)."""
    torch, transformers = reference()
    common = dict(vocab_size=VOCAB, num_attention_heads=4, intermediate_size=37, num_hidden_layers=2,
                  attn_implementation="eager", pad_token_id=PAD)
    if kind == "bert":
        enc = transformers.BertConfig(hidden_size=32, **common)
        dec = transformers.BertConfig(hidden_size=24, is_decoder=True, add_cross_attention=True, **common)
    else:
        enc = transformers.BertGenerationConfig(hidden_size=32, bos_token_id=START, eos_token_id=4, **common)
        dec = transformers.BertGenerationConfig(hidden_size=32, is_decoder=True, add_cross_attention=True,
                                                bos_token_id=START, eos_token_id=4, **common)
    cfg = transformers.EncoderDecoderConfig.from_encoder_decoder_configs(enc, dec)
    cfg.pad_token_id, cfg.decoder_start_token_id = PAD, START
    model = _peaked(torch, transformers.EncoderDecoderModel(cfg), seed)
    model.generation_config.pad_token_id = PAD
    model.generation_config.decoder_start_token_id = START
    ids, mask = source_batch()
    eos = _choose_eos(torch, model, ids, mask, True)
    model.config.eos_token_id = eos
    model.generation_config.eos_token_id = eos
    path = tmp_path / f"ed-{kind}-{seed}"
    model.save_pretrained(path)
    return model, path, eos


def build_decoder(tmp_path, kind="bert", seed=0):
    """(hf_model, directory, eos) of a peaked decoder-only LM: BertLMHeadModel or BertGenerationDecoder."""
    torch, transformers = reference()
    common = dict(vocab_size=VOCAB, hidden_size=32, num_attention_heads=4, intermediate_size=37,
                  num_hidden_layers=2, attn_implementation="eager", pad_token_id=PAD, is_decoder=True)
    if kind == "bert-relative":  # transformers' cached relative-position quirk on a multi-token prompt
        model = transformers.BertLMHeadModel(transformers.BertConfig(position_embedding_type="relative_key_query", **common))
    elif kind == "bert":
        model = transformers.BertLMHeadModel(transformers.BertConfig(**common))
    else:
        model = transformers.BertGenerationDecoder(transformers.BertGenerationConfig(bos_token_id=START, eos_token_id=4, **common))
    model = _peaked(torch, model, seed)
    ids, mask = prompt_batch()
    eos = _choose_eos(torch, model, ids, mask, False)
    model.config.eos_token_id = eos
    model.generation_config.eos_token_id = eos
    model.generation_config.pad_token_id = PAD
    path = tmp_path / f"dec-{kind}-{seed}"
    model.save_pretrained(path)
    return model, path, eos


def prompt_batch(seed=1, batch=3, length=6):
    """Left-padded prompts, as decoder-only generation needs."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(5, VOCAB, (batch, length))
    mask = np.ones_like(ids)
    if batch > 1:
        mask[1, :2] = 0
        ids[1, :2] = PAD
    return ids, mask
