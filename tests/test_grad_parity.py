"""``loss_and_grads`` against torch autograd (transformers 4.57.6, eager attention) on random tiny models:
the loss and the gradient of every parameter (keys = transformers' ``named_parameters()`` that receive a
gradient), in float64 and float32, bounds from GRAD_TOLERANCES in tests/tolerances.py.

Every class with a loss: the 8 BERT heads (BertLMHeadModel also as a decoder with cross-attention),
BertGenerationDecoder, RobertaForMaskedLM, RobertaForCausalLM, EncoderDecoderModel (bert2bert with and
without enc_to_dec_proj, roberta2roberta, BertGeneration parts); hypothesis over sizes, heads, activations,
position types, padding, head masks, labels (all -100 included), inputs_embeds (and their gradient), and
dropout replayed from torch's own masks.
"""

import copy
import tempfile
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import refimpl
from reference import reference
from test_bert_parity import HEADS, configs, make_inputs
from tolerances import grad_bounds

pytestmark = pytest.mark.parity

LOSS_HEADS = [h for h in HEADS if h != "BertModel"]
CAUSAL = ("BertLMHeadModel", "BertGenerationDecoder", "RobertaForCausalLM")  # loss in float32 (transformers' .float())


def torch_loss_and_grads(torch, hf, inputs, embeds_keys=()):
    """transformers' loss and named_parameters' gradients (those that get one), plus inputs_embeds' gradients."""
    kw = {}
    for k, v in inputs.items():
        v = torch.from_numpy(np.ascontiguousarray(v)) if isinstance(v, np.ndarray) else v
        if hasattr(v, "is_floating_point") and v.is_floating_point():
            v = v.to(next(hf.parameters()).dtype)
            if k in embeds_keys:
                v.requires_grad_(True)
        kw[k] = v
    hf.zero_grad(set_to_none=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loss = hf(**kw).loss
    loss.backward()
    grads = {n: p.grad.detach().numpy().copy() for n, p in hf.named_parameters() if p.grad is not None}
    for k in embeds_keys:
        grads[k] = kw[k].grad.detach().numpy().copy()
    return float(loss.detach()), grads


def assert_grads_match(mine, want, dtype, kind="grad", context="", truth=None):
    """Same keys; each tensor within ``atol + rtol * max|want|`` (its GRAD_TOLERANCES row). With ``truth``
    (torch in float64), a float32 tensor outside it still passes when refimpl is no further from the float64
    gradient than torch's float32 is at its worst in that tensor, plus the bound (as tests/reference.py)."""
    assert set(mine) == set(want), f"{context}: keys differ: only refimpl {sorted(set(mine) - set(want))}, " \
                                   f"only torch {sorted(set(want) - set(mine))}"
    atol, rtol = grad_bounds(kind, dtype)
    failures = []
    for name, w in want.items():
        g = np.asarray(mine[name], dtype=np.float64)
        assert g.shape == w.shape and mine[name].dtype == np.dtype(dtype), (name, g.shape, w.shape, mine[name].dtype)
        w = w.astype(np.float64)
        bound = atol + rtol * float(np.abs(w).max(initial=0.0))
        err = float(np.abs(g - w).max(initial=0.0))
        if err <= bound:
            continue
        if truth is not None:
            t = truth[name].astype(np.float64)
            if np.abs(g - t).max() <= bound + np.abs(w - t).max():
                continue
        at = np.unravel_index(np.argmax(np.abs(g - w)), g.shape)
        failures.append(f"  {name}: max |refimpl - torch| {err:.3e} > {bound:.3e} at {at} "
                        f"(refimpl {g[at]!r}, torch {w[at]!r})")
    assert not failures, f"{context}\n" + "\n".join(failures)


def assert_loss_match(mine, want, dtype, context):
    if np.isnan(want):
        assert np.isnan(float(mine)), context
        return
    atol, rtol = grad_bounds("loss", dtype)
    assert abs(float(mine) - want) <= atol + rtol * abs(want), f"{context}: loss {float(mine)!r} vs torch {want!r}"


def as_dtype(inputs, dtype):
    return {k: (v.astype(dtype) if isinstance(v, np.ndarray) and v.dtype.kind == "f" else v) for k, v in inputs.items()}


def run_case(torch, hf, load, inputs, context, causal=False, embeds_keys=(), mine_kwargs=None, torch_train=False):
    """hf (a float32 transformers model) saved, loaded by ``load(dir, dtype)``; float64 and float32 compared."""
    mine_kwargs = mine_kwargs or {}
    results = {}
    with tempfile.TemporaryDirectory() as d:
        hf.save_pretrained(d, safe_serialization=True)
        models = {dt: load(d, dt) for dt in ("float64", "float32")}
    for dt in ("float64", "float32"):
        h = copy.deepcopy(hf).double() if dt == "float64" else hf
        h.train(torch_train)
        loss_t, want = torch_loss_and_grads(torch, h, as_dtype(inputs, np.float32), embeds_keys)
        mine_in = as_dtype(inputs, np.dtype(dt))
        loss, grads = models[dt].loss_and_grads(**mine_in, inputs_embeds_grad=bool(embeds_keys), check_finite=False,
                                                **mine_kwargs)
        inputs_grads = ("inputs_embeds", "decoder_inputs_embeds", "encoder_hidden_states")
        grads = {k: v for k, v in grads.items() if k not in inputs_grads or k in embeds_keys}
        kind = "grad_float32_loss" if (causal and dt == "float64") else "grad"
        assert_loss_match(loss, loss_t, "float32" if causal else dt, f"{context} {dt}")
        assert_grads_match(grads, want, dt, kind, f"{context} {dt}", truth=results.get("float64"))
        results[dt] = want
    return results


# --- the BERT heads ------------------------------------------------------------------------------------


@st.composite
def bert_cases(draw):
    cfg = draw(configs())
    head = draw(st.sampled_from(LOSS_HEADS))
    if head == "BertLMHeadModel":
        cfg["is_decoder"] = True
        cfg["add_cross_attention"] = draw(st.booleans())
    if head == "BertForSequenceClassification":
        cfg["num_labels"] = draw(st.integers(1, 4))
        if cfg["num_labels"] > 1:
            cfg["problem_type"] = draw(st.sampled_from([None, "multi_label_classification", "regression"]))
    if head == "BertForTokenClassification":
        cfg["num_labels"] = draw(st.integers(1, 5))
    if head in ("BertForMaskedLM", "BertForPreTraining", "BertLMHeadModel"):
        cfg["tie_word_embeddings"] = draw(st.booleans())
    return (cfg, head, draw(st.integers(1, 3)), draw(st.integers(1, min(10, cfg["max_position_embeddings"]))),
            draw(st.integers(0, 2**31 - 1)), draw(st.booleans()), draw(st.sampled_from(["ids", "ids", "position_ids", "inputs_embeds"])),
            draw(st.sampled_from(["random", "random", "random", "all_ignored"])))


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(bert_cases())
def test_bert_heads_gradients_match_autograd(case):
    torch, transformers = reference()
    cfg, head, batch, seq, seed, use_head_mask, variant, label_pattern = case
    rng = np.random.default_rng(seed)
    inputs = make_inputs(rng, cfg, head, batch, seq, use_head_mask, True, variant)
    if cfg.get("problem_type") == "regression":
        inputs["labels"] = rng.standard_normal((batch, cfg["num_labels"])).astype(np.float32)
    if label_pattern == "all_ignored" and head in ("BertForMaskedLM", "BertLMHeadModel", "BertForPreTraining",
                                                  "BertForTokenClassification"):
        inputs["labels"] = np.full_like(inputs["labels"], -100)
    if cfg.get("add_cross_attention"):
        e = int(rng.integers(1, 6))
        inputs["encoder_hidden_states"] = rng.standard_normal((batch, e, cfg["hidden_size"])).astype(np.float32)
        inputs["encoder_attention_mask"] = (np.arange(e) < rng.integers(1, e + 1, size=(batch, 1))).astype(np.int64)
    torch.manual_seed(seed)
    hf = getattr(transformers, head)(transformers.BertConfig(**cfg, attn_implementation="eager"))
    run_case(torch, hf, lambda d, dt: getattr(refimpl, head).from_pretrained(d, dtype=dt), inputs,
             f"{head} cfg={cfg} batch={batch} seq={seq} {variant} {label_pattern}", causal=head in CAUSAL,
             embeds_keys=tuple(k for k in ("inputs_embeds", "encoder_hidden_states") if k in inputs))


def test_every_problem_type_of_sequence_classification():
    torch, transformers = reference()
    base = dict(vocab_size=40, hidden_size=12, num_attention_heads=2, num_hidden_layers=1, intermediate_size=9,
                max_position_embeddings=16, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                initializer_range=0.3, attn_implementation="eager")
    rng = np.random.default_rng(5)
    ids = rng.integers(0, 40, (3, 6))
    for problem, k, labels in [("regression", 1, rng.standard_normal(3).astype(np.float32)),
                               ("regression", 3, rng.standard_normal((3, 3)).astype(np.float32)),
                               ("single_label_classification", 3, rng.integers(0, 3, 3)),
                               ("multi_label_classification", 3, (rng.random((3, 3)) < 0.5).astype(np.float32)),
                               (None, 1, rng.standard_normal(3).astype(np.float32)),
                               (None, 3, rng.integers(0, 3, 3))]:
        torch.manual_seed(1)
        hf = transformers.BertForSequenceClassification(transformers.BertConfig(**base, num_labels=k, problem_type=problem))
        run_case(torch, hf, lambda d, dt: refimpl.BertForSequenceClassification.from_pretrained(d, dtype=dt),
                 {"input_ids": ids, "labels": labels}, f"problem_type={problem} num_labels={k}")


# --- dropout: torch's masks replayed ------------------------------------------------------------------


def capture_dropout_masks(torch, hf, inputs):
    """Run ``hf`` in train mode once, recording every nn.Dropout's keep mask by module name (an entry whose
    input was exactly 0 is taken as kept: its value is 0 either way, and so is its gradient's effect)."""
    masks, handles = {}, []
    for name, module in hf.named_modules():
        if isinstance(module, torch.nn.Dropout):
            def hook(mod, args, out, name=name):
                masks[name] = ((out != 0) | (args[0] == 0)).numpy()
            handles.append(module.register_forward_hook(hook))
    hf.train()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hf(**{k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in inputs.items()})
    for h in handles:
        h.remove()
    return masks


class _Replay:
    """Torch's dropout modules replaced by ones applying recorded keep masks, in torch's arithmetic."""

    def __init__(self, torch, hf, masks):
        class Fixed(torch.nn.Module):
            def __init__(self, keep, p):
                super().__init__()
                self.keep, self.p = torch.from_numpy(keep), p

            def forward(self, x):
                noise = self.keep.to(x.dtype)
                return x * noise.div_(1 - self.p)

        for name, module in list(hf.named_modules()):
            if isinstance(module, torch.nn.Dropout) and name in masks:
                parent = hf.get_submodule(name.rsplit(".", 1)[0]) if "." in name else hf
                setattr(parent, name.rsplit(".", 1)[-1], Fixed(masks[name], module.p))


@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
@given(cfg=configs(), head=st.sampled_from(LOSS_HEADS), seed=st.integers(0, 2**31 - 1),
       p_hidden=st.sampled_from([0.1, 0.5]), p_attn=st.sampled_from([0.0, 0.2]))
def test_dropout_with_torchs_masks_matches_autograd(cfg, head, seed, p_hidden, p_attn):
    """transformers in train mode draws its masks; refimpl, given them by module name, matches its gradients."""
    torch, transformers = reference()
    cfg = {**cfg, "hidden_dropout_prob": p_hidden, "attention_probs_dropout_prob": p_attn}
    if head == "BertLMHeadModel":
        cfg["is_decoder"] = True
    if head == "BertForSequenceClassification":
        cfg["classifier_dropout"] = 0.3
    rng = np.random.default_rng(seed)
    inputs = make_inputs(rng, cfg, head, 2, min(7, cfg["max_position_embeddings"]), False, True)
    torch.manual_seed(seed)
    hf = getattr(transformers, head)(transformers.BertConfig(**cfg, attn_implementation="eager"))
    masks = capture_dropout_masks(torch, hf, as_dtype(inputs, np.float32))
    assert masks and all(("dropout" in k) for k in masks)
    _Replay(torch, hf, masks)
    run_case(torch, hf, lambda d, dt: getattr(refimpl, head).from_pretrained(d, dtype=dt), inputs,
             f"{head} dropout {p_hidden}/{p_attn}", causal=head in CAUSAL, torch_train=True,
             mine_kwargs={"train": True, "dropout_masks": masks})


# --- BertGeneration, RoBERTa, EncoderDecoderModel --------------------------------------------------------


SMALL = dict(vocab_size=53, hidden_size=12, num_attention_heads=3, num_hidden_layers=2, intermediate_size=17,
             max_position_embeddings=24, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
             initializer_range=0.3, attn_implementation="eager")


def _decoder_inputs(rng, batch, seq, vocab, hidden, cross):
    ids = rng.integers(2, vocab, (batch, seq))
    mask = (np.arange(seq) < rng.integers(1, seq + 1, (batch, 1))).astype(np.int64)
    labels = rng.integers(0, vocab, (batch, seq))
    labels[rng.random((batch, seq)) < 0.3] = -100
    inputs = dict(input_ids=ids, attention_mask=mask, labels=labels)
    if cross:
        inputs["encoder_hidden_states"] = rng.standard_normal((batch, 5, hidden)).astype(np.float32)
        inputs["encoder_attention_mask"] = (np.arange(5) < rng.integers(1, 6, (batch, 1))).astype(np.int64)
    return inputs


@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
@given(cls=st.sampled_from(["BertGenerationDecoder", "RobertaForCausalLM", "RobertaForMaskedLM"]),
       position=st.sampled_from(["absolute", "relative_key", "relative_key_query"]),
       act=st.sampled_from(["gelu", "gelu_new", "relu", "silu"]), cross=st.booleans(), tie=st.booleans(),
       use_head_mask=st.booleans(), seed=st.integers(0, 2**31 - 1))
def test_generation_and_roberta_classes_match_autograd(cls, position, act, cross, tie, use_head_mask, seed):
    torch, transformers = reference()
    rng = np.random.default_rng(seed)
    decoder = cls != "RobertaForMaskedLM"
    cfg = dict(SMALL, position_embedding_type=position, hidden_act=act, tie_word_embeddings=tie, is_decoder=decoder,
               add_cross_attention=decoder and cross)
    config_cls = transformers.BertGenerationConfig if cls == "BertGenerationDecoder" else transformers.RobertaConfig
    inputs = _decoder_inputs(rng, 2, 7, cfg["vocab_size"], cfg["hidden_size"], decoder and cross)
    if cls.startswith("Roberta"):
        inputs["input_ids"][:, -1] = 1  # a padding token: RoBERTa's positions skip it, its rows get no gradient
    if use_head_mask:
        inputs["head_mask"] = rng.choice([0.0, 0.5, 1.0], size=(2, 3)).astype(np.float32)
    torch.manual_seed(seed)
    hf = getattr(transformers, cls)(config_cls(**cfg))
    run_case(torch, hf, lambda d, dt: getattr(refimpl, cls).from_pretrained(d, dtype=dt), inputs,
             f"{cls} {cfg}", causal=cls in CAUSAL)


@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
@given(kinds=st.sampled_from([("bert", "bert"), ("bert-generation", "bert-generation"), ("bert", "bert-generation"),
                              ("roberta", "roberta")]),
       dec_hidden=st.sampled_from([12, 9]), position=st.sampled_from(["absolute", "relative_key_query"]),
       embeds=st.booleans(), seed=st.integers(0, 2**31 - 1))
def test_encoder_decoder_gradients_match_autograd(kinds, dec_hidden, position, embeds, seed):
    """bert2bert, roberta2roberta, BertGeneration parts; a decoder hidden size of 9 adds enc_to_dec_proj."""
    torch, transformers = reference()
    rng = np.random.default_rng(seed)
    classes = {"bert": transformers.BertConfig, "bert-generation": transformers.BertGenerationConfig,
               "roberta": transformers.RobertaConfig}
    enc_cfg = classes[kinds[0]](**dict(SMALL, position_embedding_type=position))
    dec_cfg = classes[kinds[1]](**dict(SMALL, hidden_size=dec_hidden, position_embedding_type=position,
                                       is_decoder=True, add_cross_attention=True))
    torch.manual_seed(seed)
    hf = transformers.EncoderDecoderModel(  # both parts eager (EncoderDecoderModel(config) would pick sdpa)
        encoder=transformers.AutoModel.from_config(enc_cfg, attn_implementation="eager"),
        decoder=transformers.AutoModelForCausalLM.from_config(dec_cfg, attn_implementation="eager"))
    hf.config.pad_token_id, hf.config.decoder_start_token_id = 1, 2
    b, s, t = 2, 6, 5
    ids = rng.integers(2, 53, (b, s))
    mask = (np.arange(s) < rng.integers(1, s + 1, (b, 1))).astype(np.int64)
    labels = rng.integers(2, 53, (b, t))
    labels[rng.random((b, t)) < 0.3] = -100
    labels[:, 0] = 3
    inputs = dict(attention_mask=mask, labels=labels)
    keys = ()
    if embeds:
        inputs["inputs_embeds"] = rng.standard_normal((b, s, 12)).astype(np.float32)
        inputs["decoder_inputs_embeds"] = rng.standard_normal((b, t, dec_hidden)).astype(np.float32)
        keys = ("inputs_embeds", "decoder_inputs_embeds")
    else:
        inputs["input_ids"] = ids
        if rng.random() < 0.5:
            inputs["decoder_input_ids"] = rng.integers(2, 53, (b, t))
    run_case(torch, hf, lambda d, dt: refimpl.EncoderDecoderModel.from_pretrained(d, dtype=dt), inputs,
             f"{kinds} dec_hidden={dec_hidden} {position}", embeds_keys=keys)
