"""Live parity with transformers 4.57.6 on random tiny BERTs (hypothesis).

Each example draws a config (sizes, activation, position-embedding type), a head class, a batch with a
random padding pattern, token types, an optional head mask and labels; builds the transformers model with
eager attention, saves it as safetensors, loads that directory with refimpl, and compares every output
(each hidden state, each attention map, logits, loss) in float32 and float64 (tests/tolerances.py).
"""

import tempfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import refimpl
import refimpl.kernels
from reference import assert_outputs_match, hf_outputs, reference, refimpl_outputs, to_torch

pytestmark = pytest.mark.parity

ACTIVATIONS = ["gelu", "gelu_new", "gelu_fast", "gelu_pytorch_tanh", "quick_gelu", "relu", "silu", "tanh", "mish", "linear"]
HEADS = ["BertModel", "BertForPreTraining", "BertForMaskedLM", "BertLMHeadModel", "BertForNextSentencePrediction",
         "BertForSequenceClassification", "BertForMultipleChoice", "BertForTokenClassification",
         "BertForQuestionAnswering"]


@st.composite
def configs(draw):
    heads = draw(st.integers(1, 4))
    return dict(
        vocab_size=draw(st.integers(20, 120)),
        hidden_size=heads * draw(st.integers(2 if heads > 1 else 4, 9)),  # D >= 4: LayerNorm over 2 values is ill-conditioned
        num_attention_heads=heads,
        num_hidden_layers=draw(st.integers(1, 3)),
        intermediate_size=draw(st.integers(5, 41)),
        max_position_embeddings=draw(st.integers(16, 40)),
        type_vocab_size=draw(st.integers(1, 3)),
        hidden_act=draw(st.sampled_from(ACTIVATIONS)),
        position_embedding_type=draw(st.sampled_from(["absolute", "relative_key", "relative_key_query"])),
        layer_norm_eps=draw(st.sampled_from([1e-12, 1e-5])),
        initializer_range=draw(st.sampled_from([0.02, 0.3])),
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )


@st.composite
def cases(draw):
    cfg = draw(configs())
    head = draw(st.sampled_from(HEADS))
    if head == "BertLMHeadModel":
        cfg["is_decoder"] = True
    if head == "BertForSequenceClassification":
        cfg["num_labels"] = draw(st.integers(1, 4))
        if cfg["num_labels"] > 1:
            cfg["problem_type"] = draw(st.sampled_from([None, "multi_label_classification"]))
    if head == "BertForTokenClassification":
        cfg["num_labels"] = draw(st.integers(1, 5))
    if head in ("BertForMaskedLM", "BertForPreTraining", "BertLMHeadModel"):
        cfg["tie_word_embeddings"] = draw(st.booleans())
    batch = draw(st.integers(1, 3))
    seq = draw(st.integers(1, min(12, cfg["max_position_embeddings"])))
    seed = draw(st.integers(0, 2**31 - 1))
    return cfg, head, batch, seq, seed, draw(st.booleans()), draw(st.booleans()), draw(st.sampled_from(["ids", "ids", "position_ids", "inputs_embeds"]))


def make_inputs(rng, cfg, head, batch, seq, use_head_mask, with_labels, variant="ids"):
    choices = 2 if head == "BertForMultipleChoice" else None
    shape = (batch, choices, seq) if choices else (batch, seq)
    ids = rng.integers(0, cfg["vocab_size"], size=shape)
    lengths = rng.integers(1, seq + 1, size=shape[:-1])
    mask = (np.arange(seq) < lengths[..., None]).astype(np.int64)  # right padding, >= 1 real token
    if rng.random() < 0.3:  # sometimes an arbitrary pattern, including holes
        mask = (rng.random(shape) < 0.7).astype(np.int64)
    inputs = {"input_ids": ids, "attention_mask": mask,
              "token_type_ids": rng.integers(0, cfg["type_vocab_size"], size=shape)}
    if variant == "position_ids":  # arbitrary positions, not just 0..S-1
        inputs["position_ids"] = rng.integers(0, cfg["max_position_embeddings"], size=shape)
    elif variant == "inputs_embeds":  # embeddings given directly instead of ids
        inputs["inputs_embeds"] = rng.standard_normal(shape + (cfg["hidden_size"],)).astype(np.float32)
        del inputs["input_ids"]
    if use_head_mask:
        n, layers = cfg["num_attention_heads"], cfg["num_hidden_layers"]
        hm_shape = (n,) if rng.random() < 0.5 else (layers, n)
        inputs["head_mask"] = rng.choice([0.0, 0.5, 1.0], size=hm_shape).astype(np.float32)
    if with_labels:
        v, k = cfg["vocab_size"], cfg.get("num_labels", 2)
        if head in ("BertForMaskedLM", "BertLMHeadModel", "BertForPreTraining"):
            lab = rng.integers(0, v, size=shape)
            lab[rng.random(shape) < 0.3] = -100
            inputs["labels"] = lab
            if head == "BertForPreTraining":
                inputs["next_sentence_label"] = rng.integers(0, 2, size=(batch,))
        elif head == "BertForNextSentencePrediction":
            inputs["labels"] = rng.integers(0, 2, size=(batch,))
        elif head == "BertForSequenceClassification":
            if k == 1:
                inputs["labels"] = rng.standard_normal(batch).astype(np.float32)
            elif cfg.get("problem_type") == "multi_label_classification":
                inputs["labels"] = (rng.random((batch, k)) < 0.5).astype(np.float32)
            else:
                inputs["labels"] = rng.integers(0, k, size=(batch,))
        elif head == "BertForMultipleChoice":
            inputs["labels"] = rng.integers(0, choices, size=(batch,))
        elif head == "BertForTokenClassification":
            lab = rng.integers(0, k, size=shape)
            lab[mask == 0] = -100
            inputs["labels"] = lab
        elif head == "BertForQuestionAnswering":
            inputs["start_positions"] = rng.integers(-2, seq + 3, size=(batch,))
            inputs["end_positions"] = rng.integers(-2, seq + 3, size=(batch,))
    return inputs


def run_both(torch, transformers, cfg, head, inputs, seed, dtype, directory):
    torch.manual_seed(seed)
    hf_cfg = transformers.BertConfig(**cfg, attn_implementation="eager")
    model = getattr(transformers, head)(hf_cfg).eval()
    model.save_pretrained(directory, safe_serialization=True)
    if dtype == "float64":
        model = model.double()
    kwargs = {k: to_torch(torch, v) for k, v in inputs.items()}
    if dtype == "float64":
        kwargs = {k: (v.double() if v.is_floating_point() else v) for k, v in kwargs.items()}
    with torch.no_grad():
        ref = model(**kwargs, output_hidden_states=True, output_attentions=True)
    if dtype == "float64":
        inputs = {k: (v.astype(np.float64) if v.dtype == np.float32 else v) for k, v in inputs.items()}
    mine = getattr(refimpl, head).from_pretrained(directory, dtype=dtype)(
        **inputs, output_hidden_states=True, output_attentions=True
    )
    return refimpl_outputs(mine), hf_outputs(ref)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_random_models_match_transformers(case):
    torch, transformers = reference()
    cfg, head, batch, seq, seed, use_head_mask, with_labels, variant = case
    rng = np.random.default_rng(seed)
    inputs = make_inputs(rng, cfg, head, batch, seq, use_head_mask, with_labels, variant)
    results = {}
    for dtype in ("float64", "float32"):
        with tempfile.TemporaryDirectory() as d:
            results[dtype] = mine, ref = run_both(torch, transformers, cfg, head, inputs, seed, dtype, d)
        assert_outputs_match(mine, ref, dtype, context=f"{head} {dtype} cfg={cfg} batch={batch} seq={seq}",
                             truth=results["float64"][1] if dtype == "float32" else None)


@settings(max_examples=40, deadline=None)
@given(configs(), st.integers(1, 3), st.integers(1, 8), st.integers(1, 6), st.integers(0, 2**31 - 1))
def test_cross_attention_decoder_matches_transformers(cfg, batch, seq, enc_len, seed):
    """BertLMHeadModel with cross-attention: encoder states and their padding mask, float32 and float64."""
    torch, transformers = reference()
    cfg = {**cfg, "is_decoder": True, "add_cross_attention": True}
    rng = np.random.default_rng(seed)
    inputs = make_inputs(rng, cfg, "BertLMHeadModel", batch, min(seq, cfg["max_position_embeddings"]), False, True)
    inputs["encoder_hidden_states"] = rng.standard_normal((batch, enc_len, cfg["hidden_size"])).astype(np.float32)
    inputs["encoder_attention_mask"] = (np.arange(enc_len) < rng.integers(1, enc_len + 1, size=(batch, 1))).astype(np.int64)
    results = {}
    for dtype in ("float64", "float32"):
        with tempfile.TemporaryDirectory() as d:
            results[dtype] = mine, ref = run_both(torch, transformers, cfg, "BertLMHeadModel", inputs, seed, dtype, d)
        assert "cross_attentions.0" in mine
        assert_outputs_match(mine, ref, dtype, context=f"cross-attention decoder {dtype} cfg={cfg}",
                             truth=results["float64"][1] if dtype == "float32" else None)


def test_cached_decoder_matches_transformers_cache():
    """BertModel decoder with use_cache: prompt, then one token at a time through each library's cache."""
    torch, transformers = reference()
    cfg = dict(vocab_size=57, hidden_size=24, num_attention_heads=3, num_hidden_layers=2, intermediate_size=31,
               max_position_embeddings=32, is_decoder=True, position_embedding_type="relative_key_query",
               hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    torch.manual_seed(7)
    hf = transformers.BertModel(transformers.BertConfig(**cfg, attn_implementation="eager")).eval()
    rng = np.random.default_rng(7)
    ids = rng.integers(1, 57, size=(2, 9))
    with tempfile.TemporaryDirectory() as d:
        hf.save_pretrained(d)
        mine = refimpl.BertModel.from_pretrained(d)
    hf_past, my_past = None, None
    for start, stop in [(0, 5), (5, 6), (6, 7), (7, 9)]:
        chunk = ids[:, start:stop]
        mask = np.ones((2, stop), dtype=np.int64)
        with torch.no_grad():
            r = hf(input_ids=torch.from_numpy(chunk), attention_mask=torch.from_numpy(mask), past_key_values=hf_past,
                   use_cache=True, output_attentions=True)
        m = mine(input_ids=chunk, attention_mask=mask, past_key_values=my_past, use_cache=True, output_attentions=True)
        hf_past, my_past = r.past_key_values, m.past_key_values
        assert my_past.length == stop
        assert_outputs_match(refimpl_outputs(m), hf_outputs(r), "float32", context=f"cached step [{start}:{stop})")



@pytest.fixture(scope="module")
def row_block_workers():
    """Records kernels.threads.workers() at every row-block split made while the module's tests run."""
    import refimpl.kernels.threads as threads

    seen, real, real_free = [], threads.row_blocks, threads.free_cores

    def spy(rows, xp, *args, **kwargs):
        seen.append(threads.workers())
        return real(rows, xp, *args, **kwargs)

    threads.row_blocks = spy
    threads.free_cores = lambda wanted: wanted  # the machine taken as free: the worker threads must run
    yield seen
    threads.row_blocks, threads.free_cores = real, real_free


def _blas_threads():
    from threadpoolctl import threadpool_info

    return max((lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"), default=1)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(cfg=configs(), head=st.sampled_from(HEADS + ["cross-attention"]), batch=st.integers(3, 4),
       seq=st.integers(43, 64), seed=st.integers(0, 2**31 - 1))
def test_inputs_large_enough_for_worker_threads_match_transformers(row_block_workers, cfg, head, batch, seq, seed):
    """Inputs of >= 128 token rows run in a worker-thread region (row and attention blocks on one thread
    per core, the BLAS single-threaded): every head, and a decoder with cross-attention, still match."""
    torch, transformers = reference()
    cfg = {**cfg, "max_position_embeddings": 64}
    if head == "cross-attention":
        head, cfg = "BertLMHeadModel", {**cfg, "add_cross_attention": True}
    if head == "BertLMHeadModel":
        cfg["is_decoder"] = True
    rng = np.random.default_rng(seed)
    inputs = make_inputs(rng, cfg, head, batch, seq, False, True)
    if cfg.get("add_cross_attention"):
        inputs["encoder_hidden_states"] = rng.standard_normal((batch, 9, cfg["hidden_size"])).astype(np.float32)
    results = {}
    for dtype in ("float64", "float32"):
        row_block_workers.clear()
        with tempfile.TemporaryDirectory() as d:
            results[dtype] = mine, ref = run_both(torch, transformers, cfg, head, inputs, seed, dtype, d)
        assert_outputs_match(mine, ref, dtype, context=f"{head} {dtype} cfg={cfg} batch={batch} seq={seq}",
                             truth=results["float64"][1] if dtype == "float32" else None)
        if _blas_threads() > 1 and refimpl.kernels.DEFAULT == "fast":  # 2 cores or more: worker threads ran
            assert max(row_block_workers) > 1, "the forward never ran in a worker-thread region"
