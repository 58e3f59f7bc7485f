"""loss_and_grads without the reference stack: its loss equals the forward's, train=True with p = 0 is the
eval forward, dropout draws from the caller's generator only, tied weights accumulate both uses, a
whole-model finite-difference check in float64, and bad input raising refimpl errors that name the value,
the limit and the fix."""

import numpy as np
import pytest

import refimpl
from refimpl.errors import InputError

CFG = dict(vocab_size=37, hidden_size=12, num_attention_heads=3, num_hidden_layers=2, intermediate_size=13,
           max_position_embeddings=20, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
           initializer_range=0.3)


def mlm(dtype="float64", kernels="reference", **over):
    return refimpl.BertForMaskedLM(refimpl.BertConfig(**{**CFG, **over}), seed=0, dtype=dtype, kernels=kernels)


def batch(rng, b=2, s=7, v=37):
    ids = rng.integers(1, v, (b, s))
    mask = (np.arange(s) < rng.integers(2, s + 1, (b, 1))).astype(np.int64)
    labels = rng.integers(0, v, (b, s))
    labels[rng.random((b, s)) < 0.4] = -100
    labels[:, 0] = 5
    return dict(input_ids=ids, attention_mask=mask, labels=labels)


@pytest.mark.parametrize("position", ["absolute", "relative_key_query"])
def test_loss_is_the_forwards_loss_exactly_with_the_reference_kernels(position):
    m = mlm(position_embedding_type=position)
    inputs = batch(np.random.default_rng(0))
    loss, grads = m.loss_and_grads(**inputs)
    assert abs(float(loss) - float(m(**inputs).loss)) <= 1e-15 * float(loss)  # the LM loss sums only kept rows
    unused = {"bert.embeddings.position_embeddings.weight"} if position != "absolute" else set()  # as torch: no .grad
    assert set(grads) == set(m.params) - unused and all(grads[k].shape == m.params[k].shape for k in grads)
    loss_fast, grads_fast = mlm(position_embedding_type=position, kernels="fast").loss_and_grads(**inputs)
    assert abs(float(loss_fast) - float(loss)) < 1e-12
    for k in grads:
        np.testing.assert_allclose(grads_fast[k], grads[k], atol=1e-12, rtol=1e-10)


def test_train_with_zero_probabilities_is_the_eval_forward():
    m = mlm()
    inputs = batch(np.random.default_rng(1))
    loss, grads = m.loss_and_grads(**inputs)
    loss_t, grads_t = m.loss_and_grads(**inputs, train=True)  # every p is 0: no generator needed
    assert float(loss_t) == float(loss) and all(np.array_equal(grads[k], grads_t[k]) for k in grads)


def test_dropout_draws_from_the_callers_generator():
    m = mlm(hidden_dropout_prob=0.2, attention_probs_dropout_prob=0.1)
    inputs = batch(np.random.default_rng(2))
    a = m.loss_and_grads(**inputs, train=True, rng=np.random.default_rng(7))
    b = m.loss_and_grads(**inputs, train=True, rng=np.random.default_rng(7))
    c = m.loss_and_grads(**inputs, train=True, rng=np.random.default_rng(8))
    e = m.loss_and_grads(**inputs)  # eval: no dropout
    assert float(a[0]) == float(b[0]) != float(c[0]) and float(a[0]) != float(e[0])


def test_whole_model_finite_differences_float64():
    """d loss / d theta along random directions of every parameter at once (an independent witness)."""
    m = mlm(position_embedding_type="relative_key", hidden_act="gelu_new")
    inputs = batch(np.random.default_rng(3))
    _, grads = m.loss_and_grads(**inputs, inputs_embeds_grad=True)
    assert grads.pop("inputs_embeds").shape == (2, 7, 12)
    rng = np.random.default_rng(4)
    base = {k: v.copy() for k, v in m.params.items()}
    u = {k: rng.standard_normal(v.shape) for k, v in base.items()}
    h = 1e-6

    def loss_at(sign):
        for k in base:
            m.params[k] = base[k] + sign * h * u[k]
        return float(m(**inputs).loss)

    fd = (loss_at(1) - loss_at(-1)) / (2 * h)
    m.params.update(base)
    grads = {k: grads.get(k, np.zeros_like(base[k])) for k in base}  # relative positions: no absolute table used
    an = sum(float((grads[k] * u[k]).sum()) for k in base)
    assert abs(an - fd) <= 1e-6 * sum(float(np.abs(grads[k] * u[k]).sum()) for k in base), (an, fd)


def test_tied_lm_head_accumulates_both_uses():
    inputs = batch(np.random.default_rng(5))
    tied = mlm()
    _, g = tied.loss_and_grads(**inputs)
    untied = refimpl.BertForMaskedLM.from_tensors(refimpl.BertConfig(**CFG, tie_word_embeddings=False),
                                                  {**tied.state_dict(), "cls.predictions.decoder.weight":
                                                   tied.state_dict()["bert.embeddings.word_embeddings.weight"]},
                                                  dtype="float64", kernels="reference")
    _, gu = untied.loss_and_grads(**inputs)
    assert "cls.predictions.decoder.weight" not in g
    np.testing.assert_allclose(g["bert.embeddings.word_embeddings.weight"],
                               gu["bert.embeddings.word_embeddings.weight"] + gu["cls.predictions.decoder.weight"],
                               atol=1e-14)


def test_float32_model_gives_float32_gradients():
    m = mlm("float32")
    loss, grads = m.loss_and_grads(**batch(np.random.default_rng(6)))
    assert all(g.dtype == np.float32 for g in grads.values())


# --- bad input -------------------------------------------------------------------------------------


def test_labels_of_the_wrong_shape_or_range():
    m = mlm()
    inputs = batch(np.random.default_rng(7))
    with pytest.raises(InputError, match=r"labels has shape \(2, 6\), expected \(2, 7\)"):
        m.loss_and_grads(**{**inputs, "labels": inputs["labels"][:, :6]})
    with pytest.raises(InputError, match=r"labels contains 37, outside \[0, 37\); use -100 to ignore"):
        m.loss_and_grads(**{**inputs, "labels": np.full((2, 7), 37)})
    with pytest.raises(InputError, match="labels contains -5"):
        m.loss_and_grads(**{**inputs, "labels": np.full((2, 7), -5)})
    with pytest.raises(InputError, match="needs labels="):
        m.loss_and_grads(input_ids=inputs["input_ids"])


def test_classes_without_a_loss_and_unknown_arguments():
    base = refimpl.BertModel(refimpl.BertConfig(**CFG), seed=0)
    with pytest.raises(InputError, match="BertModel has no loss.*BertForMaskedLM"):
        base.loss_and_grads(input_ids=np.array([[1, 2]]))
    with pytest.raises(InputError, match=r"unexpected arguments \['next_sentence_label'\]"):
        mlm().loss_and_grads(input_ids=np.array([[1, 2]]), labels=np.array([[1, 2]]), next_sentence_label=np.array([0]))


def test_dropout_on_without_a_generator():
    m = mlm(hidden_dropout_prob=0.1)
    inputs = batch(np.random.default_rng(8))
    with pytest.raises(InputError, match=r"dropout on \(hidden_dropout_prob=0.1\).*rng=numpy.random.default_rng"):
        m.loss_and_grads(**inputs, train=True)
    with pytest.raises(InputError, match="bert.encoder.layer.0.attention.output.dropout.*no generator"):
        m.loss_and_grads(**inputs, train=True, dropout_masks={"bert.embeddings.dropout": np.ones((2, 7, 12), bool)})
    with pytest.raises(InputError, match=r"dropout_masks\['bert.embeddings.dropout'\] has shape \(2, 7\)"):
        m.loss_and_grads(**inputs, train=True, dropout_masks={"bert.embeddings.dropout": np.ones((2, 7), bool)})
    with pytest.raises(InputError, match="only with train=True"):
        m.loss_and_grads(**inputs, rng=np.random.default_rng(0))


def test_non_finite_loss():
    m = mlm()
    inputs = batch(np.random.default_rng(9))
    ignored = {**inputs, "labels": np.full((2, 7), -100)}
    with pytest.raises(InputError, match=r"loss is nan \(not finite\): every label is -100.*check_finite=False"):
        m.loss_and_grads(**ignored)
    loss, grads = m.loss_and_grads(**ignored, check_finite=False)  # torch's NaN and zero gradients
    assert np.isnan(float(loss)) and not any(g.any() for g in grads.values())
    m.params["cls.predictions.bias"] = m.params["cls.predictions.bias"] + np.inf
    with pytest.raises(InputError, match="loss is nan .*too large for the dtype"):
        m.loss_and_grads(**inputs)
