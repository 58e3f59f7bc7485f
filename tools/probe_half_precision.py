"""Probe: what torch 2.13 computes on the CPU, op by op, for transformers' BERT forward in float16/bfloat16.

For each op of the forward, torch's half-precision output is compared bit for bit with candidate rules
computed in NumPy (float32 or float64 arithmetic on the half inputs, rounded to half at chosen points).
The share of equal elements is printed per candidate: the rule refimpl follows is the one at (or nearest
to) 1.0. docs/precision.md ("Half precision") quotes the results. Needs torch (and ml_dtypes for bfloat16).

    python tools/probe_half_precision.py            # both dtypes
"""

import math

import ml_dtypes
import numpy as np
import torch

torch.set_num_threads(1)
F32 = np.float32


def to_np(t):
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().view(ml_dtypes.bfloat16)
    return t.numpy()


def to_t(a):
    if a.dtype == ml_dtypes.bfloat16:
        return torch.from_numpy(a.view(np.int16)).view(torch.bfloat16)
    return torch.from_numpy(a)


def share(a, b):
    a, b = np.asarray(a).astype(np.float64), np.asarray(b).astype(np.float64)
    return round(float(((a == b) | (np.isnan(a) & np.isnan(b))).mean()), 5)


def reduce_lanes(v):
    while v.shape[-1] > 1:
        n = v.shape[-1] // 2
        v = v[..., :n] + v[..., n:]
    return v[..., 0]


def torch_fp16_dot(a, b, lanes=8):
    """torch's fp16_dot_with_fp32_arith (ReducedPrecisionFloatGemvFastPathKernel.cpp): 8 registers of
    ``lanes`` float32 accumulators over blocks of 8 * lanes, a register tree then a lane tree; then a
    vectorized tail of 2 * lanes blocks into one register; then a scalar tail. Products are exact in float32."""
    k = a.shape[-1]
    a32, b32 = a.astype(F32), b.astype(F32)
    lead = np.broadcast_shapes(a.shape[:-1], b.shape[:-1])
    per = 8 * lanes
    acc = np.zeros(lead + (8, lanes), F32)
    main = k - k % per
    for j in range(0, main, per):
        acc += (a32[..., j:j + per] * b32[..., j:j + per]).reshape(lead + (8, lanes))
    for half in (4, 2, 1):
        acc = acc[..., :half, :] + acc[..., half:2 * half, :]
    total = reduce_lanes(acc[..., 0, :])
    vec = k - k % (2 * lanes)
    tail = np.zeros(lead + (lanes,), F32)
    for j in range(main, vec, 2 * lanes):
        tail += a32[..., j:j + lanes] * b32[..., j:j + lanes]
        tail += a32[..., j + lanes:j + 2 * lanes] * b32[..., j + lanes:j + 2 * lanes]
    total = total + reduce_lanes(tail)
    for j in range(vec, k):
        total = total + a32[..., j] * b32[..., j]
    return total


def probe(dt, tdt, rng):
    print(f"== {np.dtype(dt).name}")
    half = lambda a: np.asarray(a).astype(dt)  # noqa: E731  one rounding to the storage dtype
    r = lambda *shape, s=1.0: half(rng.standard_normal(shape) * s)  # noqa: E731

    # linear: addmm(bias, x, W^T)
    for m, k, o in ((16, 384, 384), (9, 1536, 384), (7, 100, 37), (1, 384, 384)):
        x, w, b = r(m, k), r(o, k, s=0.2), r(o)
        got = to_np(torch.nn.functional.linear(to_t(x), to_t(w), to_t(b)))
        exact = x.astype(np.float64) @ w.astype(np.float64).T
        blas32 = x.astype(F32) @ w.astype(F32).T
        print(f"linear {m}x{k}->{o}:",
              {"f32 sum + b, one rounding": share(half(blas32 + b.astype(F32)), got),
               "exact sum + b, one rounding": share(half(exact + b.astype(np.float64)), got),
               "round(sum) + b, two roundings": share(half(half(exact).astype(F32) + b.astype(F32)), got),
               "torch fp16 dot order (8 lanes) + b": share(half(torch_fp16_dot(x[:, None], w[None]) + b.astype(F32)), got)})

    # attention products: q k^T and probs v (bmm on [B, N, S, H])
    for bb, n, s, h in ((2, 3, 5, 8), (1, 12, 16, 32), (2, 4, 43, 16)):
        q, kk, v = r(bb, n, s, h), r(bb, n, s, h), r(bb, n, s, h)
        got = to_np(to_t(q) @ to_t(kk).transpose(-1, -2))
        exact = q.astype(np.float64) @ kk.astype(np.float64).swapaxes(-1, -2)
        p = half(np.abs(rng.standard_normal((bb, n, s, s))) / s)
        got_pv = to_np(to_t(p) @ to_t(v))
        exact_pv = p.astype(np.float64) @ v.astype(np.float64)
        print(f"bmm [{bb},{n},{s},{h}]:", {"qk^T f32": share(half(q.astype(F32) @ kk.astype(F32).swapaxes(-1, -2)), got),
                                             "qk^T exact": share(half(exact), got),
                                             "pv f32": share(half(p.astype(F32) @ v.astype(F32)), got_pv),
                                             "pv exact": share(half(exact_pv), got_pv)})

    # scores / sqrt(H), + mask, softmax
    x = r(2, 4, 17, 17, s=4.0)
    for h in (8, 12, 32):
        got = to_np(to_t(x) / math.sqrt(h))
        print(f"scores / sqrt({h}):", {"f32 divide": share(half(x.astype(F32) / F32(math.sqrt(h))), got),
                                        "f64 divide": share(half(x.astype(np.float64) / math.sqrt(h)), got),
                                        "f32 times 1/sqrt": share(half(x.astype(F32) * F32(1 / math.sqrt(h))), got)})
    mask = half((rng.random((2, 1, 1, 17)) < 0.3) * float(np.finfo(dt).min))
    got = to_np(to_t(x) + to_t(mask))
    with np.errstate(over="ignore"):
        print("scores + mask:", {"half add (f32, one rounding)": share(half(x.astype(F32) + mask.astype(F32)), got)},
              "torch -inf count", int(np.isinf(got.astype(F32)).sum()))
    got = to_np(torch.softmax(to_t(x), dim=-1))
    x32 = x.astype(F32)
    e = np.exp(x32 - x32.max(-1, keepdims=True))
    e64 = np.exp(x.astype(np.float64) - x.astype(np.float64).max(-1, keepdims=True))
    print("softmax:", {"f32 exp/sum, one rounding": share(half(e / e.sum(-1, keepdims=True)), got),
                       "f32, times 1/sum": share(half(e * (F32(1) / e.sum(-1, keepdims=True))), got),
                       "f64, one rounding": share(half(e64 / e64.sum(-1, keepdims=True)), got),
                       "exp rounded to half first": share(half(half(e) / half(e).astype(F32).sum(-1, keepdims=True)), got)})

    # LayerNorm (weights in the half dtype, as model.half() leaves them)
    for d in (32, 384):
        x, w, b = r(16, d, s=3.0), r(d, s=0.3), r(d, s=0.1)
        w = half(w.astype(F32) + 1)
        got = to_np(torch.nn.functional.layer_norm(to_t(x), (d,), to_t(w), to_t(b), 1e-12))
        x32 = x.astype(F32)
        mean = x32.mean(-1, keepdims=True)
        var = ((x32 - mean) ** 2).mean(-1, keepdims=True)
        rstd = F32(1) / np.sqrt(var + F32(1e-12))
        x64 = x.astype(np.float64)
        m64 = x64.mean(-1, keepdims=True)
        y64 = (x64 - m64) / np.sqrt(((x64 - m64) ** 2).mean(-1, keepdims=True) + 1e-12) * w.astype(np.float64) + b.astype(np.float64)
        print(f"layer_norm D={d}:", {"f32 stats, (x-mean)*rstd*w+b, one rounding": share(half((x32 - mean) * rstd * w.astype(F32) + b.astype(F32)), got),
                                      "f32 stats, (x*rstd + (-mean*rstd))*w+b": share(half((x32 * rstd + (-mean * rstd)) * w.astype(F32) + b.astype(F32)), got),
                                      "f64, one rounding": share(half(y64), got),
                                      "normalized rounded to half, then *w+b": share(half(half((x32 - mean) * rstd).astype(F32) * w.astype(F32) + b.astype(F32)), got)})

    # GELU (exact erf) and tanh
    from refimpl.ops.erf import erf_float64

    x = r(64, 384, s=2.0)
    got = to_np(torch.nn.functional.gelu(to_t(x)))
    x64 = x.astype(np.float64)
    g64 = x64 * 0.5 * (1 + erf_float64(x64 / math.sqrt(2)))
    x32 = x.astype(F32)
    erf32 = erf_float64((x32 * F32(1 / math.sqrt(2))).astype(np.float64)).astype(F32)
    print("gelu:", {"f64, one rounding": share(half(g64), got),
                    "f32: x*0.5*(1+erf32(x*(1/sqrt2)))": share(half(x32 * F32(0.5) * (F32(1) + erf32)), got),
                    "rounded to half at each step": share(half(half(x * half(0.5)).astype(F32) * half(1 + half(erf_float64(x64 / math.sqrt(2))).astype(F32)).astype(F32)), got)})
    got = to_np(torch.tanh(to_t(x)))
    print("tanh:", {"f32, one rounding": share(half(np.tanh(x32)), got), "f64, one rounding": share(half(np.tanh(x64)), got)})

    # residual add and embedding sums
    a, c = r(16, 384, s=3.0), r(16, 384)
    got = to_np(to_t(a) + to_t(c))
    print("residual add:", {"half add": share(half(a.astype(F32) + c.astype(F32)), got)})


if __name__ == "__main__":
    rng = np.random.default_rng(0)
    probe(np.float16, torch.float16, rng)
    probe(ml_dtypes.bfloat16, torch.bfloat16, rng)
