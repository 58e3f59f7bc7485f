"""Helpers for parity tests: import the reference stack (torch + transformers) or skip/fail, and move
values between transformers and refimpl. Only tests import this; refimpl never does."""

import numpy as np
import pytest

from conftest import IN_CI


def reference():
    """(torch, transformers), or skip the test (fail in CI, where the reference extra is installed)."""
    try:
        import torch
        import transformers
    except ImportError as e:  # pragma: no cover - depends on the environment
        if IN_CI:
            pytest.fail(f"the reference stack is required in CI: {e}")
        pytest.skip(f"reference stack not installed ({e}); `pip install -e .[test]`")
    torch.set_num_threads(1)
    return torch, transformers


def to_torch(torch, value):
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(value))
    return value


def hf_outputs(out) -> dict:
    """A transformers ModelOutput -> {"field" or "field.i": numpy array}, without caches."""
    flat = {}
    for key, value in out.items():
        if key == "past_key_values" or value is None:
            continue
        if isinstance(value, (tuple, list)):
            for i, v in enumerate(value):
                flat[f"{key}.{i}"] = v.detach().cpu().numpy()
        else:
            flat[key] = value.detach().cpu().numpy()
    return flat


def refimpl_outputs(out) -> dict:
    """A refimpl output record -> {"field" or "field.i": numpy array}, without caches."""
    return out.arrays()


def assert_outputs_match(mine: dict, ref: dict, dtype, context="", padding_mask=None, truth=None):
    """Every reference tensor must be present in ``mine`` and within the tolerance table's bounds.

    With ``padding_mask`` [B, S] (0 = padding), hidden states and attention rows at padded query positions
    are held to the table's ``*_pad`` rows and the real positions to the normal rows.

    With ``truth`` (transformers' outputs for the same model in float64), a float32 tensor outside the
    bound of transformers' float32 still passes where refimpl is no further from the float64 result than
    transformers' float32 is at its worst in that tensor, plus the bound: |mine - truth| <= atol + rtol
    |truth| + max |ref - truth|. That is, where transformers' own float32 rounding exceeds the bound
    (ill-conditioned random models), refimpl's may not exceed transformers'. See tests/tolerances.py.
    """
    from refimpl.compare import compare
    from tolerances import bounds, TOLERANCES

    assert set(ref) <= set(mine), f"{context}: refimpl lacks outputs {sorted(set(ref) - set(mine))}"
    failures = []
    table = TOLERANCES[np.dtype(dtype).name]
    for name in ref:
        field = name.split(".")[0]
        atol, rtol = bounds(field, dtype)
        if field == "loss" and ref[name].dtype == np.float32:
            atol, rtol = bounds("loss", np.float32)
        got, want = mine[name], ref[name]
        kind = "attn" if "attentions" in field else "hidden" if "hidden" in field else None
        if padding_mask is not None and kind is not None:
            real = padding_mask.astype(bool)
            if kind == "attn":  # [B, N, S, T]: select query rows
                g, w = np.moveaxis(got, 1, 2), np.moveaxis(want, 1, 2)
            else:
                g, w = got, want
            pad_atol, pad_rtol = table[kind + "_pad"]
            for label, sel, (a, r) in (("real", real, (atol, rtol)), ("padded", ~real, (pad_atol, pad_rtol))):
                report = compare(f"{name}[{label} positions]", g[sel], w[sel], a, r)
                if not report.ok:
                    failures.append(str(report))
            continue
        report = compare(name, got, want, atol, rtol)
        if report.ok:
            continue
        if truth is not None and name in truth:
            if _no_further_from_truth(got, want, truth[name], atol, rtol):
                continue
            err_ref = np.abs(want.astype(np.float64) - truth[name]).max()
            err_mine = np.abs(got.astype(np.float64) - truth[name]).max()
            failures.append(f"{report}\n       and further from the float64 result than transformers' float32: "
                            f"refimpl {err_mine:.3e}, transformers {err_ref:.3e}")
        else:
            failures.append(str(report))
    assert not failures, f"{context}\n" + "\n".join(failures)


def _no_further_from_truth(got, want, truth, atol, rtol):
    """|got - truth| <= atol + rtol |truth| + max |want - truth| (all float64; the max over the tensor)."""
    got, want, truth = (np.asarray(a, dtype=np.float64) for a in (got, want, truth))
    return bool((np.abs(got - truth) <= atol + rtol * np.abs(truth) + np.abs(want - truth).max()).all())
