"""The tolerance table: every parity comparison in the tests takes its bounds from here.

A bound is ``|got - want| <= atol + rtol * |want|``. Each row says why it is what it is.

Random-weight tests (tests/test_bert_parity.py) also run transformers in float64. A float32 value outside
its bound still passes where refimpl is no further from that float64 result than transformers' own
float32 is at its worst in the same tensor, plus the bound: |mine - truth64| <= atol + rtol |truth64| +
max |torch32 - truth64|. Reason:
with weights of std 0.3 and tiny hidden sizes, transformers' float32 rounding itself can exceed the
bound (measured: a BertLMHeadModel, D=7, logits 1.09e-5 from float64 for torch, 3.98e-6 for refimpl;
the two differed by 1.49e-5). The max, not the element: such a model amplifies any one-ulp change of an
input by a random amount per element, so two correct implementations' errors do not line up element by
element (measured: a cross-attention decoder, batch 3 x 43, std 0.3: a 2.4e-7 change in the embeddings'
LayerNorm from another BLAS row split moved one logit 2.7e-5 from float64 where torch's float32 was
nearly exact, while refimpl's worst error in the tensor, 1.6e-5, was below torch's, 2.5e-5). The rule
cannot hide a refimpl error: refimpl's distance from the float64 result must stay within torch's worst
plus the bound.

| kind | float32 atol / rtol | float64 atol / rtol | reason |
|---|---|---|---|
| hidden  | 1e-5 / 1e-5 | 1e-10 / 1e-10 | LayerNorm outputs are O(1); float32 rounding (eps 6e-8) accumulated over D-length dot products and L layers in a different summation order than torch's gives ~1e-6 |
| attn    | 5e-6 / 0    | 1e-12 / 0     | probabilities lie in [0, 1]; an error e in a score moves p by about e*p*(1-p). The random tests use weights with std 0.3, giving scores up to ~30 whose float32 rounding (~2e-6) moved p by up to 1.1e-6 (measured); MiniLM stays under 1.2e-6 |
| hidden at padding positions | 2e-4 / 0 | 1e-10 / 1e-10 | only where the caller passes the padding mask (MiniLM test): outputs at padded query positions are ill-conditioned in the real checkpoint; measured, refimpl float32 is 3.8e-5 and torch float32 6.1e-5 from the float64 result there (they differ by up to 8.2e-5), while real positions agree to 3e-6 |
| attn at padding query rows | 5e-5 / 0 | 1e-12 / 0 | same cause: rows of padded queries differed by up to 8.3e-6 in MiniLM |
| logits  | 1e-5 / 1e-5 | 1e-10 / 1e-10 | one more projection of hidden states; logits can be O(10), hence the relative part |
| loss    | 1e-5 / 1e-5 | 1e-10 / 1e-10 | a mean of log-softmax values; transformers computes the causal LM loss in float32 even for float64 models, so that row uses float32 bounds |
| pooler  | 1e-5 / 1e-5 | 1e-10 / 1e-10 | tanh of a projection of the first hidden state |
| generate_attn | 5e-6 / 0 | 1e-12 / 0 | generate()'s per-step attentions (tests/test_generate_kwargs.py): the same forward as the attn row, one decoder call per step (the KV cache or the whole sequence) on the peaked generation models (weights std 0.12); measured worst 1.8e-7 (float32) and 3.3e-16 (float64) over greedy, top-1 sampling, beam search, use_cache=False and the non-decoder models |
| generate_hidden | 1e-5 / 1e-5 | 1e-10 / 1e-10 | generate()'s per-step hidden states, encoder's included: as the hidden row; measured worst 8.9e-7 (float32, relative-position decoder in beam search) and 1.8e-15 (float64) |
"""

import numpy as np

TOLERANCES = {
    "float32": {"hidden": (1e-5, 1e-5), "attn": (5e-6, 0.0), "hidden_pad": (2e-4, 0.0), "attn_pad": (5e-5, 0.0), "logits": (1e-5, 1e-5), "loss": (1e-5, 1e-5), "pooler": (1e-5, 1e-5),
                "generate_attn": (5e-6, 0.0), "generate_hidden": (1e-5, 1e-5)},
    "float64": {"hidden": (1e-10, 1e-10), "attn": (1e-12, 0.0), "hidden_pad": (1e-10, 1e-10), "attn_pad": (1e-12, 0.0), "logits": (1e-10, 1e-10), "loss": (1e-10, 1e-10), "pooler": (1e-10, 1e-10),
                "generate_attn": (1e-12, 0.0), "generate_hidden": (1e-10, 1e-10)},
}


def kind_of(field: str) -> str:
    """Which row of the table an output field belongs to."""
    if "attentions" in field:
        return "attn"
    if field in ("last_hidden_state",) or "hidden_states" in field:
        return "hidden"
    if field == "pooler_output":
        return "pooler"
    if field == "loss":
        return "loss"
    return "logits"


def bounds(field: str, dtype) -> tuple:
    return TOLERANCES[np.dtype(dtype).name][kind_of(field)]


# --- fast kernels against the reference kernels (tests/test_kernels.py) ----------------------------------
# Bound: |fast - reference| <= atol * scale + rtol * |reference|, where ``scale`` is what the error grows
# with (given per op below). Inputs are O(1) normals unless a test says otherwise.
#
# | op | float32 atol / rtol | float64 atol / rtol | scale | reason |
# |---|---|---|---|---|
# | linear | 1e-6 / 1e-6 | 1e-14 / 1e-14 | sqrt(I) | only the summation order of the I-term dot products differs (the BLAS's blocking for x W^T, (W x^T)^T or input-major W) |
# | layer_norm | 2e-6 / 1e-6 | 1e-13 / 1e-13 | 1 + |mean| / std of the rows | mean and variance as BLAS dot products instead of pairwise sums: their rounding is relative to the row's magnitude, the output to its spread |
# | softmax | 2e-7 / 1e-6 | 1e-15 / 1e-14 | 1 | the row sums on the BLAS (one rounding order) instead of numpy's pairwise sum |
# | log_softmax | 0 / 0 | 0 / 0 | - | the same operations in the same order: equal |
# | activation | 3e-7 / 1e-6 | 1e-15 / 1e-12 | 1 | fast erf and reference erf are each within 1 float32 ulp of erf, and GELU's 1 + erf(x / sqrt 2) cancels for x << 0, so one ulp of erf near -1 (6e-8) times x / 2 is the absolute error; float64: x * (1/sqrt 2) vs x / sqrt 2, one ulp of the argument amplified by the same cancellation |
# | attention_scores | 1e-6 / 1e-6 | 1e-14 / 1e-14 | sqrt(H) | q k^T (and the relative-position terms) as batched matmuls in another order than the reference's |
# | attention_probs | 5e-7 / 1e-6 | 1e-14 / 1e-13 | 1 | blocked in-place softmax with BLAS row sums; probabilities lie in [0, 1] |
# | attention_context | 1e-6 / 1e-6 | 1e-13 / 1e-13 | 1 | probs @ v: T-term sums of the probabilities' errors |
KERNEL_TOLERANCES = {
    "float32": {"linear": (1e-6, 1e-6), "layer_norm": (2e-6, 1e-6), "softmax": (2e-7, 1e-6), "log_softmax": (0.0, 0.0),
                "activation": (3e-7, 1e-6), "attention_scores": (1e-6, 1e-6), "attention_probs": (5e-7, 1e-6),
                "attention_context": (1e-6, 1e-6)},
    "float64": {"linear": (1e-14, 1e-14), "layer_norm": (1e-13, 1e-13), "softmax": (1e-15, 1e-14),
                "log_softmax": (0.0, 0.0), "activation": (1e-15, 1e-12), "attention_scores": (1e-14, 1e-14),
                "attention_probs": (1e-14, 1e-13), "attention_context": (1e-13, 1e-13)},
}


def kernel_bounds(op: str, dtype) -> tuple:
    return KERNEL_TOLERANCES[np.dtype(dtype).name][op]


# --- pipelines against transformers' pipelines (tests/test_pipelines.py, tests/test_cli_run.py) -------------
# Bound: |refimpl - transformers| <= atol + rtol * |transformers| on each score (float32 models).
#
# | kind | float32 atol / rtol | reason |
# |---|---|---|
# | probability | 1e-6 / 1e-5 | a softmax / sigmoid / product of probabilities of logits that agree within the logits row (1e-5 / 1e-5): an error e in a logit moves p by about e p (1 - p), so at most ~1e-5 p; the absolute part covers probabilities near 0. Measured on the tests' models: at most 3e-8 (text-classification) and 1e-10 (fill-mask, p ~ 4e-4) |
# | logit | 1e-5 / 1e-5 | scores with function_to_apply="none" (and regression) are the logits themselves: the logits row (measured: 1e-7) |
# | embedding | 1e-5 / 1e-5 | pooled last hidden states (means, maxima, the first token) and cosines of them: the hidden row |
PIPELINE_TOLERANCES = {
    "float32": {"probability": (1e-6, 1e-5), "logit": (1e-5, 1e-5), "embedding": (1e-5, 1e-5)},
}


# --- gradients against torch autograd (tests/test_grad_parity.py, tests/test_grad_goldens.py) ---------------
# Bound per tensor: max |refimpl - torch| <= atol + rtol * max |torch| (the tensor's largest entry: a gradient
# is a sum over every token and layer, so its rounding grows with the tensor's scale, not the element's).
# A float32 tensor outside it still passes where refimpl is no further from torch's float64 gradient than
# torch's float32 is at its worst in that tensor, plus the bound (the rule of the forward rows above).
#
# | kind | float32 atol / rtol | float64 atol / rtol | reason |
# |---|---|---|---|
# | grad | 1e-5 / 1e-4 | 1e-10 / 1e-10 | float64: the same formulas as autograd's in another summation order (BLAS blocking, pairwise sums), measured worst 5e-15 on these models; float32: the rounding of the forward (the hidden row, ~1e-6) carried back through L layers and summed over B*S tokens into each weight: measured worst 2.3e-5 relative to the tensor's max on std-0.3 models, where torch's own float32 is as far from float64 |
# | grad_float32_loss | - | 1e-6 / 1e-5 | float64 models of the causal-LM classes: transformers computes ForCausalLMLoss on logits.float(), so the logits' gradient is a float32 value (softmax in float32: ~6e-8 relative) in both libraries, rounded differently (numpy's and torch's exp differ by an ulp); measured worst 1.8e-8 |
# | loss | 1e-5 / 1e-5 | 1e-10 / 1e-10 | the forward's loss row |
GRAD_TOLERANCES = {
    "float32": {"grad": (1e-5, 1e-4), "loss": (1e-5, 1e-5)},
    "float64": {"grad": (1e-10, 1e-10), "grad_float32_loss": (1e-6, 1e-5), "loss": (1e-10, 1e-10)},
}


def grad_bounds(kind: str, dtype) -> tuple:
    return GRAD_TOLERANCES[np.dtype(dtype).name][kind]


# --- bitsandbytes quantization (tests/test_quant_formats.py, tests/test_quant_models.py) -----------------------
# Quantization states and dequantized weights are compared bit for bit (no row). Bound where a product runs:
# max |refimpl - reference| <= atol + rtol * max |reference| over the tensor.
#
# | kind | atol / rtol | reason |
# |---|---|---|
# | int8_outliers | 1e-5 / 1e-5 | LLM.int8's outlier columns are added by torch's addmm (MKL) and by numpy's BLAS in another order; the int8 part is exact. Measured 1.4e-6 on a 100 -> 37 layer with inputs of std 1.5 |
# | quant_model_float32 | 1e-5 / 1e-5 | a 4-bit/8-bit model in float32 compute: the weights are bit-identical to bitsandbytes', so only the float32 rounding of the products differs, as in the hidden/logits rows; 8-bit also inherits int8_outliers and each layer's float16 rounding of its input can flip one int8 code when the input differs by an ulp |
# | quant_model_half | 2e-2 / 2e-2 | 4-bit with bnb_4bit_compute_dtype float16/bfloat16: each linear runs in the half dtype (x and W rounded to it, the product rounded to it); the accumulation order inside torch's half GEMM is not numpy's, so one half ulp (1e-3 for float16, 8e-3 for bfloat16 at O(1)) per linear, carried through the layers |
QUANT_TOLERANCES = {"int8_outliers": (1e-5, 1e-5), "quant_model_float32": (1e-5, 1e-5), "quant_model_half": (2e-2, 2e-2)}


# --- half precision against transformers' float16/bfloat16 CPU forward (tests/test_precision.py) ------------
# Bound: |refimpl - torch| <= atol + rtol * |torch| per element, both in the half dtype; and refimpl's max error
# from transformers' float64 forward no larger than torch's own half-precision max error plus atol.
# The policy is matched op by op (docs/precision.md), so most elements are bit-identical; the rest come from
# float32 ties rounded apart (another summation order in a linear, LayerNorm's statistics, bfloat16 GELU's
# float32 erf) and the one-ulp differences they leave, carried and amplified through the layers.
#
# | kind | float16 atol / rtol | bfloat16 atol / rtol | reason |
# |---|---|---|---|
# | hidden | 8e-3 / 8e-3 | 6.25e-2 / 3.2e-2 | 8 ulps at 1 (float16 ulp 2^-10 ~ 9.8e-4, bfloat16 2^-7 ~ 7.8e-3 at [1, 2)); LayerNorm outputs are O(1) and up to ~10 on MiniLM: a one-ulp input change moves an output by a few ulps after a layer |
# | pooler | 8e-3 / 8e-3 | 6.25e-2 / 3.2e-2 | tanh of a projection of the first hidden state: as hidden |
# | logits | 8e-3 / 8e-3 | 6.25e-2 / 3.2e-2 | one more projection: as hidden |
HALF_TOLERANCES = {
    "float16": {"hidden": (8e-3, 8e-3), "last_hidden_state": (8e-3, 8e-3), "pooler_output": (8e-3, 8e-3),
                "logits": (8e-3, 8e-3)},
    "bfloat16": {"hidden": (6.25e-2, 3.2e-2), "last_hidden_state": (6.25e-2, 3.2e-2),
                 "pooler_output": (6.25e-2, 3.2e-2), "logits": (6.25e-2, 3.2e-2)},
}
