"""Tensor-by-tensor comparison that says where two implementations first diverge.

    from refimpl.compare import compare, first_divergence
    report = compare("layer 3 hidden", mine, reference, atol=1e-5, rtol=0)
    print(report)      # name, max abs error, where, first values of both
    report.ok          # within tolerance?

``first_divergence(pairs, atol, rtol)`` walks an ordered list of (name, mine, reference) — embeddings,
then each layer — and returns the first report that fails, which localises a bug to one block.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .backend import to_host


@dataclass
class Report:
    name: str
    ok: bool
    max_abs: float
    max_rel: float
    where: tuple
    got: float
    want: float
    shape: tuple
    atol: float
    rtol: float
    first_got: list
    first_want: list

    def __str__(self) -> str:
        status = "ok  " if self.ok else "FAIL"
        return (
            f"{status} {self.name}: shape {self.shape}, max |diff| {self.max_abs:.3e} (rel {self.max_rel:.3e}) "
            f"at {self.where}: got {self.got:.9g}, want {self.want:.9g}; tolerance atol {self.atol:g} + "
            f"rtol {self.rtol:g}*|want|\n       first values got  {self.first_got}\n"
            f"       first values want {self.first_want}"
        )


def compare(name, got, want, atol=0.0, rtol=0.0) -> Report:
    """Compare ``got`` with ``want`` elementwise: ok iff |got - want| <= atol + rtol * |want| everywhere.

    Shapes must match exactly (a shape mismatch is a failure, reported as such). NaN equals NaN.
    """
    g = np.asarray(to_host(got), dtype=np.float64)
    w = np.asarray(to_host(want), dtype=np.float64)
    if g.shape != w.shape:
        return Report(name, False, float("inf"), float("inf"), (), float("nan"), float("nan"), g.shape, atol, rtol,
                      [f"shape {g.shape}"], [f"shape {w.shape}"])
    diff = np.abs(g - w)
    both_nan = np.isnan(g) & np.isnan(w)
    diff = np.where(both_nan, 0.0, diff)
    diff = np.where(np.isnan(diff), np.inf, diff)
    bound = atol + rtol * np.nan_to_num(np.abs(w), nan=0.0)
    excess = diff - bound
    if g.size == 0:
        return Report(name, True, 0.0, 0.0, (), 0.0, 0.0, g.shape, atol, rtol, [], [])
    idx = np.unravel_index(int(np.argmax(excess)), g.shape) if excess.max() > 0 else np.unravel_index(int(np.argmax(diff)), g.shape)
    rel = diff / np.maximum(np.nan_to_num(np.abs(w), nan=1.0), np.finfo(np.float64).tiny)
    return Report(
        name=name, ok=bool((excess <= 0).all()), max_abs=float(diff.max()), max_rel=float(rel.max()),
        where=tuple(int(i) for i in idx), got=float(g[idx]), want=float(w[idx]), shape=g.shape, atol=atol, rtol=rtol,
        first_got=[float(f"{v:.6g}") for v in g.ravel()[:4]], first_want=[float(f"{v:.6g}") for v in w.ravel()[:4]],
    )


def first_divergence(pairs, atol=0.0, rtol=0.0):
    """The first failing report over ordered (name, got, want) triples, or None if all agree."""
    for name, got, want in pairs:
        report = compare(name, got, want, atol, rtol)
        if not report.ok:
            return report
    return None
