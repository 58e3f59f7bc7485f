"""Every op's backward (refimpl/ops) against central finite differences of its forward, in float64.

An independent witness: no torch. For a forward f and a random cotangent R, the scalar L(x) = sum(f(x) * R)
has gradient <R, J_f>; its directional derivative along a random direction u is checked against
(L(x + h u) - L(x - h u)) / (2 h), whose error is O(h^2 |f'''|) + O(eps / h) (about 1e-9 relative with
h = 1e-5 on these O(1) values): the bound is FD_RTOL times sum |grad * u|, the scale of the cancellation
in <grad, u>, plus 1e-9 for the rounding of L itself.
"""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refimpl.ops import activations as act
from refimpl.ops import attention as att
from refimpl.ops import dropout as drop
from refimpl.ops import embeddings as emb
from refimpl.ops import layer_norm as ln
from refimpl.ops import linear as lin
from refimpl.ops import losses
from refimpl.ops import softmax as sm
from refimpl.ops.masks import additive_mask

H = 1e-5
FD_RTOL = 1e-6  # |analytic - finite difference| <= FD_RTOL * sum |grad * u| + 1e-9: see the docstring
SETTINGS = settings(max_examples=25, deadline=None)


def check_directional(loss, x, grad, rng, name, directions=3):
    """<grad, u> against the central difference of ``loss`` along random directions u."""
    for _ in range(directions):
        u = rng.standard_normal(x.shape)
        fd = (loss(x + H * u) - loss(x - H * u)) / (2 * H)
        an = float((grad * u).sum())
        bound = FD_RTOL * float(np.abs(grad * u).sum()) + 1e-9
        assert abs(an - fd) <= bound, f"{name}: analytic {an!r}, finite difference {fd!r}, bound {bound:.2e}"


def scalar(f, r):
    return lambda x: float((f(x) * r).sum())


@SETTINGS
@given(rows=st.integers(1, 6), i=st.integers(1, 7), o=st.integers(1, 7), lead3=st.booleans(), seed=st.integers(0, 2**16))
def test_linear_backward(rows, i, o, lead3, seed):
    rng = np.random.default_rng(seed)
    shape = (2, rows, i) if lead3 else (rows, i)
    x, w, b = rng.standard_normal(shape), rng.standard_normal((o, i)), rng.standard_normal(o)
    r = rng.standard_normal(shape[:-1] + (o,))
    dx, dw, db = lin.linear_backward(r, x, w)
    check_directional(scalar(lambda a: lin.linear(a, w, b), r), x, dx, rng, "dx")
    check_directional(scalar(lambda a: lin.linear(x, a, b), r), w, dw, rng, "dW")
    check_directional(scalar(lambda a: lin.linear(x, w, a), r), b, db, rng, "db")
    assert lin.linear_backward(r, x, w, has_bias=False)[2] is None


@SETTINGS
@given(v=st.integers(1, 9), d=st.integers(1, 5), n=st.integers(1, 12), pad=st.sampled_from([None, 0, 2]),
       seed=st.integers(0, 2**16))
def test_embedding_backward_is_a_scatter_add_with_a_zero_padding_row(v, d, n, pad, seed):
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, v, size=(2, n))
    dy = rng.standard_normal((2, n, d))
    got = emb.embedding_backward(dy, ids, v, padding_idx=pad)
    want = np.zeros((v, d))
    for j, i in enumerate(ids.reshape(-1)):  # the definition, one position at a time
        want[i] += dy.reshape(-1, d)[j]
    if pad is not None and pad < v:
        want[pad] = 0
    np.testing.assert_allclose(got, want, rtol=1e-14, atol=1e-14)
    from refimpl.models.bert_backward import embedding_backward_add

    base = rng.standard_normal((v, d))
    into = base.copy()
    embedding_backward_add(into, dy, ids, pad)  # the in-place form (a tied table), the same sums
    np.testing.assert_allclose(into, base + got, rtol=1e-14, atol=1e-14)
    if pad is None:  # and the derivative of the lookup itself
        w = rng.standard_normal((v, d))
        check_directional(scalar(lambda a: emb.embedding(a, ids), dy), w, got, rng, "dW")


@SETTINGS
@given(rows=st.integers(1, 5), d=st.integers(3, 9), eps=st.sampled_from([1e-12, 1e-5]), shift=st.floats(-3, 3),
       seed=st.integers(0, 2**16))
def test_layer_norm_backward(rows, d, eps, shift, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, rows, d)) + shift
    w, b = rng.standard_normal(d), rng.standard_normal(d)
    r = rng.standard_normal(x.shape)
    y, tape = ln.layer_norm_forward(x, w, b, eps)
    assert np.array_equal(y, ln.layer_norm(x, w, b, eps))  # the same values as the inference forward
    dx, dw, db = ln.layer_norm_backward(r, tape, w)
    check_directional(scalar(lambda a: ln.layer_norm(a, w, b, eps), r), x, dx, rng, "dx")
    check_directional(scalar(lambda a: ln.layer_norm(x, a, b, eps), r), w, dw, rng, "dw")
    check_directional(scalar(lambda a: ln.layer_norm(x, w, a, eps), r), b, db, rng, "db")
    res = rng.standard_normal(x.shape)
    y2, tape2 = ln.add_layer_norm_forward(x, res, w, b, eps)
    assert np.array_equal(y2, ln.add_layer_norm(x, res, w, b, eps))
    dsum = ln.layer_norm_backward(r, tape2, w)[0]
    check_directional(scalar(lambda a: ln.add_layer_norm(x, a, w, b, eps), r), res, dsum, rng, "dresidual")


@pytest.mark.parametrize("name", sorted(act.ACT2FN))
def test_activation_derivatives(name):
    rng = np.random.default_rng(abs(hash(name)) % 2**32)
    x = rng.standard_normal(200) * 3
    if name == "gelu_10":
        x = np.concatenate([x, [9.0, 10.5, 12.0]])
    x = x[np.abs(x) > 1e-3]  # away from the kinks of relu & co (their value there is torch's, tested below)
    if name == "relu6":
        x = x[np.abs(x - 6) > 1e-3]
    f = act.get_activation(name)
    r = rng.standard_normal(x.shape)
    dx = act.activation_backward(name, r, x)
    assert dx.dtype == np.float64
    for j in range(0, x.size, 7):  # elementwise: every 7th element on its own
        fd = (f(np.array([x[j] + H])) - f(np.array([x[j] - H])))[0] / (2 * H)
        assert abs(dx[j] / r[j] - fd) <= 1e-8 * (1 + abs(fd)), (name, x[j], dx[j] / r[j], fd)
    assert act.get_activation_derivative(name)(np.float32([0.5, -2.0])).dtype == np.float32


def test_activation_derivatives_at_their_kinks_are_torchs():
    z = np.array([0.0, 6.0])
    assert list(act.d_relu(z)) == [0.0, 1.0] and list(act.d_relu6(z)) == [0.0, 0.0]
    assert list(act.d_leaky_relu(z)) == [0.01, 1.0]


def test_tanh_backward():
    rng = np.random.default_rng(3)
    x, r = rng.standard_normal(20), rng.standard_normal(20)
    check_directional(scalar(np.tanh, r), x, act.tanh_backward(r, np.tanh(x)), rng, "tanh")


@SETTINGS
@given(k=st.integers(1, 9), masked=st.booleans(), seed=st.integers(0, 2**16))
def test_softmax_and_log_softmax_backward(k, masked, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((3, k)) * 2
    r = rng.standard_normal(x.shape)
    check_directional(scalar(sm.softmax, r), x, sm.softmax_backward(r, sm.softmax(x)), rng, "softmax")
    check_directional(scalar(sm.log_softmax, r), x, sm.log_softmax_backward(r, sm.log_softmax(x)), rng, "log_softmax")


@settings(max_examples=30, deadline=None)
@given(b=st.integers(1, 2), n=st.integers(1, 3), s=st.integers(1, 5), t=st.integers(1, 5), h=st.integers(1, 4),
       use_mask=st.booleans(), use_head_mask=st.booleans(), use_pos=st.booleans(), p=st.sampled_from([0.0, 0.3]),
       seed=st.integers(0, 2**16))
def test_attention_backward(b, n, s, t, h, use_mask, use_head_mask, use_pos, p, seed):
    rng = np.random.default_rng(seed)
    q, k, v = (rng.standard_normal((b, n, length, h)) for length in (s, t, t))
    keep = rng.random((b, 1, 1, t)) < 0.7
    keep[..., 0] = True  # a fully masked row is constant in q and k, but autograd (and refimpl) pass dZ on: see below
    mask = additive_mask(keep.astype(np.float64), np.dtype(np.float64)) if use_mask else None
    hm = rng.choice([0.0, 0.5, 1.0], size=(1, n, 1, 1)) if use_head_mask else None
    pos = rng.standard_normal((b, n, s, t)) if use_pos else None
    factor = drop.dropout_factor(drop.dropout_mask(rng, (b, n, s, t), p), p, np.dtype(np.float64)) if p else None
    r = rng.standard_normal((b, n, s, h))
    context, weights, tape = att.attention_forward(q, k, v, mask, hm, pos, factor)
    if factor is None:  # the inference forward, value for value
        c0, p0 = att.attention(q, k, v, mask, hm, pos)
        assert np.array_equal(context, c0) and np.array_equal(weights, p0)
    dq, dk, dv, dpos = att.attention_backward(r, tape)

    def f(q=q, k=k, v=v, pos=pos):
        return att.attention_forward(q, k, v, mask, hm, pos, factor)[0]

    check_directional(scalar(lambda a: f(q=a), r), q, dq, rng, "dq")
    check_directional(scalar(lambda a: f(k=a), r), k, dk, rng, "dk")
    check_directional(scalar(lambda a: f(v=a), r), v, dv, rng, "dv")
    if use_pos:
        check_directional(scalar(lambda a: f(pos=a), r), pos, dpos, rng, "dposition_scores")


def test_fully_masked_row_passes_the_softmax_gradient_on_as_autograd_does():
    """A row whose keys are all masked is uniform whatever q is (finite differences give 0), but the mask
    is added to the scores, so torch's autograd hands dZ = P (dP - sum dP P) on to q and k. refimpl
    matches torch (the model tests check it against autograd); here: dq is not zero, dv is the uniform mean."""
    rng = np.random.default_rng(1)
    q, k, v = rng.standard_normal((1, 1, 1, 3)), rng.standard_normal((1, 1, 2, 3)), rng.standard_normal((1, 1, 2, 3))
    mask = additive_mask(np.zeros((1, 1, 1, 2)), np.dtype(np.float64))
    context, weights, tape = att.attention_forward(q, k, v, mask)
    np.testing.assert_array_equal(weights, 0.5)
    dq, dk, dv, _ = att.attention_backward(np.ones((1, 1, 1, 3)), tape)
    assert np.abs(dq).max() > 0
    np.testing.assert_allclose(dv, 0.5)


@SETTINGS
@given(s=st.integers(1, 5), t=st.integers(1, 5), h=st.integers(1, 4), seed=st.integers(0, 2**16))
def test_relative_position_backward(s, t, h, seed):
    rng = np.random.default_rng(seed)
    P = 6
    table = rng.standard_normal((2 * P - 1, h))
    qpos, kpos = rng.integers(0, P, size=s), rng.integers(0, P, size=t)
    q, k = rng.standard_normal((2, 2, s, h)), rng.standard_normal((2, 2, t, h))
    r = rng.standard_normal((2, 2, s, t))

    def scores(q=q, k=k, table=table):
        e = att.relative_position_embeddings(table, qpos, kpos, P)
        return att.relative_key_scores(q, e) + att.relative_query_key_scores(k, e)

    e = att.relative_position_embeddings(table, qpos, kpos, P)
    dq, de1 = att.relative_key_scores_backward(r, q, e)
    dk, de2 = att.relative_query_key_scores_backward(r, k, e)
    dtable = att.relative_position_embeddings_backward(de1 + de2, qpos, kpos, P, table.shape[0])
    check_directional(scalar(lambda a: scores(q=a), r), q, dq, rng, "dq")
    check_directional(scalar(lambda a: scores(k=a), r), k, dk, rng, "dk")
    check_directional(scalar(lambda a: scores(table=a), r), table, dtable, rng, "ddistance_embedding")


def test_dropout_forward_and_backward():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((50, 40)).astype(np.float32)
    keep = drop.dropout_mask(rng, x.shape, 0.25)
    assert abs(keep.mean() - 0.75) < 0.03
    y = drop.dropout(x, keep, 0.25)
    np.testing.assert_array_equal(y, x * keep.astype(np.float32) * (np.float32(1) / np.float32(0.75)))
    assert drop.dropout(x, keep, 0.0) is x and drop.dropout(x, None, 0.5) is x
    assert not drop.dropout(x, keep, 1.0).any()
    r = rng.standard_normal(x.shape).astype(np.float32)
    np.testing.assert_array_equal(drop.dropout_backward(r, keep, 0.25), drop.dropout(r, keep, 0.25))


@SETTINGS
@given(m=st.integers(1, 6), c=st.integers(1, 6), ignored=st.floats(0, 1), seed=st.integers(0, 2**16))
def test_loss_backwards(m, c, ignored, seed):
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((m, c)) * 2
    labels = rng.integers(0, c, size=m)
    labels[rng.random(m) < ignored] = -100
    g = losses.cross_entropy_backward(logits, labels)
    if (labels == -100).all():
        assert math.isnan(float(losses.cross_entropy(logits, labels))) and not g.any()
    else:
        check_directional(lambda a: float(losses.cross_entropy(a, labels)), logits, g, rng, "cross_entropy")
    target = rng.standard_normal((m, c))
    check_directional(lambda a: float(losses.mse(a, target)), logits, losses.mse_backward(logits, target), rng, "mse")
    y = (rng.random((m, c)) < 0.5).astype(np.float64)
    check_directional(lambda a: float(losses.bce_with_logits(a, y)), logits,
                      losses.bce_with_logits_backward(logits, y), rng, "bce")


@SETTINGS
@given(b=st.integers(1, 4), s=st.integers(1, 6), seed=st.integers(0, 2**16))
def test_span_loss_backward(b, s, seed):
    rng = np.random.default_rng(seed)
    start_logits, end_logits = rng.standard_normal((b, s)), rng.standard_normal((b, s))
    start = np.clip(rng.integers(-2, s + 3, size=b), 0, s)
    end = np.clip(rng.integers(-2, s + 3, size=b), 0, s)
    ds, de = losses.span_loss_backward(start_logits, end_logits, start, end)
    if (start == s).all() or (end == s).all():
        return  # NaN loss: nothing to differentiate numerically
    check_directional(lambda a: float(losses.span_loss(a, end_logits, start, end)), start_logits, ds, rng, "dstart")
    check_directional(lambda a: float(losses.span_loss(start_logits, a, start, end)), end_logits, de, rng, "dend")
