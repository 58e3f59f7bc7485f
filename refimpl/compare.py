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
from .errors import InputError


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


# --- whole traces: the conformance comparison ---------------------------------------------------------
# Tolerance policy (docs/CONFORMANCE.md): |candidate - reference| <= atol + rtol |reference|, by the
# reference's dtype and the tensor's kind. float32 rows are transformers-vs-refimpl bounds of
# tests/tolerances.py, widened where a kind's values are larger (scores, logits: O(10) and more).
POLICY = {
    "float32": {"hidden": (1e-5, 1e-5), "probs": (5e-6, 0.0), "scores": (1e-4, 1e-5), "logits": (1e-4, 1e-5),
                "loss": (1e-5, 1e-5)},
    "float64": {"hidden": (1e-10, 1e-10), "probs": (1e-12, 0.0), "scores": (1e-10, 1e-10), "logits": (1e-10, 1e-10),
                "loss": (1e-10, 1e-10)},
}
# The float64 oracle's rounding band: a float32 candidate tensor is "within rounding" when its RMS and its
# largest distance from refimpl's float64 result are at most these factors times refimpl's own float32
# distance there (or one float32 ulp of the tensor's RMS / largest value, where refimpl's is smaller).
# Calibrated on all-MiniLM-L6-v2 (4 sentences, every recorded tensor): transformers' float32 was up to
# 10.4x refimpl's RMS distance (the second feed-forward projection) and 21.1x its largest; planted bugs
# were 1,700x (tanh GELU) and 11,700x (LayerNorm eps 1e-5) its RMS distance at their first tensor.
RMS_FACTOR, MAX_FACTOR = 32.0, 64.0
MASKED = -1e30  # reference entries at or below this are masked scores (finfo.min + s)
MASK_MARGIN = 80.0  # a candidate's masked entry this far below its row's largest score weighs < e^-80


def tensor_kind(name: str) -> str:
    last = name.rsplit(".", 1)[-1]
    if last == "probs" or ".attentions." in name:
        return "probs"
    if last in ("scores", "masked_scores", "position_scores"):
        return "scores"
    if last == "loss":
        return "loss"
    if last in ("decoder", "classifier", "qa_outputs", "seq_relationship") or "logits" in name:
        return "logits"
    return "hidden"


def policy(name: str, dtype) -> tuple:
    """(atol, rtol) of :data:`POLICY` for a tensor of this name whose reference has ``dtype``; integer
    tensors (ids, masks) compare exactly."""
    dtype = np.dtype(dtype)
    if dtype.kind in "iub":
        return 0.0, 0.0
    return POLICY["float64" if dtype == np.float64 else "float32"][tensor_kind(name)]


def rounding_verdict(candidate, refimpl32, oracle, sel, axes=None) -> dict:
    """The oracle's figures over the elements ``sel`` (reduced over ``axes``; None: all of them): the
    candidate's RMS and largest distance from the float64 ``oracle``, their bands (``RMS_FACTOR`` /
    ``MAX_FACTOR`` times refimpl's float32 distances, at least one float32 epsilon of the oracle's RMS /
    largest value) and ``within`` (both inside their bands; a NaN is outside)."""
    eps = float(np.finfo(np.float32).eps)
    count = np.maximum(np.sum(sel, axis=axes), 1)

    def rms(a):
        return np.sqrt(np.sum(np.where(sel, a, 0.0) ** 2, axis=axes) / count)

    def largest(a):
        return np.max(np.where(sel, np.abs(a), 0.0), axis=axes)

    own, err = refimpl32 - oracle, candidate - oracle
    out = {"rms": rms(err), "rms_band": RMS_FACTOR * np.maximum(rms(own), eps * rms(oracle)),
           "max": largest(err), "max_band": MAX_FACTOR * np.maximum(largest(own), eps * largest(oracle))}
    out["within"] = (out["rms"] <= out["rms_band"]) & (out["max"] <= out["max_band"])
    return out


@dataclass
class TensorResult:
    """One name's comparison. ``verdict``: None without an oracle, else "within rounding" / "outside rounding"."""

    name: str
    ok: bool
    shape: tuple
    max_abs: float = 0.0
    max_rel: float = 0.0
    max_ulp: int = 0
    frac_out: float = 0.0
    where: tuple = ()
    reference: float = 0.0
    candidate: float = 0.0
    atol: float = 0.0
    rtol: float = 0.0
    problem: str = ""  # a shape / dtype mismatch, said in words
    verdict: str | None = None
    rounding: dict | None = None  # the oracle's figures: rms / max distance from float64 and their bands

    def line(self) -> str:
        if self.problem:
            return f"FAIL {self.name}: {self.problem}"
        head = "ok  " if self.ok else "FAIL"
        text = (f"{head} {self.name} {list(self.shape)}: max|d| {self.max_abs:.3g} rel {self.max_rel:.3g} "
                f"ulp {self.max_ulp} out {100 * self.frac_out:.3g}% at {list(self.where)} "
                f"(ref {self.reference:.7g}, cand {self.candidate:.7g}; atol {self.atol:g} rtol {self.rtol:g})")
        if self.verdict:
            r = self.rounding
            text += (f"\n     {self.verdict}: rms from float64 {r['rms']:.3g} (band {r['rms_band']:.3g}), "
                     f"max {r['max']:.3g} (band {r['max_band']:.3g})")
        return text


@dataclass
class Comparison:
    results: list  # TensorResult, in the reference's forward order
    only_reference: list
    only_candidate: list
    oracle: bool = False
    strict_names: bool = False

    @property
    def first_divergent(self):
        return next((r for r in self.results if not r.ok), None)

    @property
    def first_outside_rounding(self):
        return next((r for r in self.results if r.verdict == "outside rounding" or r.problem), None)

    @property
    def ok(self) -> bool:
        if self.strict_names and (self.only_reference or self.only_candidate):
            return False
        if self.oracle:
            return self.first_outside_rounding is None
        return self.first_divergent is None

    def summary(self) -> str:
        lines = []
        bad = self.first_outside_rounding if self.oracle else self.first_divergent
        if bad is None:
            lines.append(f"PASS: {len(self.results)} tensors compared, all "
                         + ("within float32 rounding of the float64 oracle" if self.oracle else "within tolerance"))
        else:
            i = self.results.index(bad)
            lines.append(("FIRST OUTSIDE ROUNDING: " if self.oracle else "FIRST DIVERGENCE: ") + bad.name)
            for r in self.results[max(0, i - 3):i]:
                lines.append("  before it, agreeing: " + r.line())
            lines.append("  " + bad.line())
        failed = [r for r in self.results if (r.verdict == "outside rounding" if self.oracle else not r.ok)]
        lines.append(f"{len(self.results)} compared, {len(failed)} " + ("outside rounding" if self.oracle else "out of tolerance")
                     + f"; {len(self.only_reference)} only in the reference, {len(self.only_candidate)} only in the candidate"
                     + (" (names must match: --strict-names)" if self.strict_names else ""))
        return "\n".join(lines)

    def table(self) -> str:
        rows = [r.line() for r in self.results]
        if self.only_reference:
            rows.append(f"only in the reference ({len(self.only_reference)}): " + ", ".join(self.only_reference[:12])
                        + (" ..." if len(self.only_reference) > 12 else ""))
        if self.only_candidate:
            rows.append(f"only in the candidate ({len(self.only_candidate)}): " + ", ".join(self.only_candidate[:12])
                        + (" ..." if len(self.only_candidate) > 12 else ""))
        return "\n".join(rows)

    def to_json(self) -> dict:
        import dataclasses

        return {
            "ok": self.ok, "oracle": self.oracle,
            "first_divergent": getattr(self.first_divergent, "name", None),
            "first_outside_rounding": getattr(self.first_outside_rounding, "name", None) if self.oracle else None,
            "tensors": [dataclasses.asdict(r) for r in self.results],
            "only_reference": self.only_reference, "only_candidate": self.only_candidate,
        }


def _ulp_distance(a, b, dtype):
    """Largest distance in units in the last place of ``dtype`` between a and b (finite values)."""
    if dtype == np.float32:
        ints, sign = np.int32, 0x7FFFFFFF
    elif dtype == np.float64:
        ints, sign = np.int64, 0x7FFFFFFFFFFFFFFF
    else:
        return 0
    ia = np.asarray(a, dtype).view(ints).astype(np.int64)
    ib = np.asarray(b, dtype).view(ints).astype(np.int64)
    ia = np.where(ia < 0, -(ia & sign), ia)
    ib = np.where(ib < 0, -(ib & sign), ib)
    d = np.abs(ia - ib)
    return int(d.max()) if d.size else 0


def _masked_ok(ref, cand):
    """For score tensors: which masked reference entries the candidate also masks (see MASK_MARGIN)."""
    masked = ref <= MASKED
    if not masked.any():
        return masked, np.ones_like(masked)
    real = ~masked
    row_max = np.max(np.where(real, cand, -np.inf), axis=-1, keepdims=True)  # the candidate's largest real score
    has_real = real.any(axis=-1, keepdims=True)
    ok = (cand <= MASKED) | (has_real & (cand <= row_max - MASK_MARGIN))
    return masked, ok | ~masked


def compare_tensor(name, reference, candidate, atol, rtol, oracle=None, refimpl32=None) -> TensorResult:
    """Compare one tensor (see :func:`compare_traces`); ``oracle`` (float64) and ``refimpl32`` (refimpl's
    float32 of the same tensor) give the rounding verdict."""
    ref, cand = np.asarray(reference), np.asarray(candidate)
    if ref.shape != cand.shape:
        return TensorResult(name, False, ref.shape, problem=f"shape {list(cand.shape)} in the candidate, "
                                                            f"{list(ref.shape)} in the reference")
    if (ref.dtype.kind in "iub") != (cand.dtype.kind in "iub"):
        return TensorResult(name, False, ref.shape, problem=f"dtype {cand.dtype} in the candidate, {ref.dtype} in the reference")
    r64, c64 = ref.astype(np.float64), cand.astype(np.float64)
    if ref.dtype.kind in "iub":
        atol = rtol = 0.0
    masked, masked_ok = _masked_ok(r64, c64)
    real = ~masked
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.where(real, np.abs(c64 - r64), 0.0)
        diff = np.where(np.isnan(c64) & np.isnan(r64), 0.0, np.where(np.isnan(diff), np.inf, diff))
        bound = atol + rtol * np.abs(np.where(real, r64, 0.0))
        out = (diff > bound) | ~masked_ok
    res = TensorResult(name, not out.any(), ref.shape, atol=atol, rtol=rtol)
    if ref.size == 0:
        return res
    res.frac_out = float(out.mean())
    res.max_abs = float(diff.max())
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = diff / np.maximum(np.abs(r64), np.finfo(np.float64).tiny)
    res.max_rel = float(np.nanmax(np.where(real, rel, 0.0)))
    finite = real & np.isfinite(r64) & np.isfinite(c64)
    if cand.dtype.kind == "f" and finite.any():
        res.max_ulp = _ulp_distance(r64[finite], c64[finite], cand.dtype.type)
    # the worst element: the largest excess over the bound (an unmasked masked score counts as infinite)
    worst = np.where(masked_ok, diff - bound, np.inf) if out.any() else diff
    idx = np.unravel_index(int(np.argmax(worst)), ref.shape)
    res.where, res.reference, res.candidate = tuple(int(i) for i in idx), float(r64[idx]), float(c64[idx])
    if oracle is not None and refimpl32 is not None and ref.dtype.kind == "f":
        o = np.asarray(oracle, np.float64)
        v = rounding_verdict(c64, np.asarray(refimpl32, np.float64), o, real & ~(o <= MASKED))
        within = bool(v.pop("within")) and bool(masked_ok.all())
        res.verdict = "within rounding" if within else "outside rounding"
        res.rounding = {k: float(x) for k, x in v.items()}
    return res


def map_names(candidate: dict, name_map: dict) -> dict:
    """Rename a candidate's tensors to refimpl's names. ``name_map``: candidate name (or a glob, ``*``
    matching any text) -> refimpl name (``{1}``, ``{2}``... for the globs' matches). Names the map does not
    cover keep their own. InputError when an entry of the map matches nothing."""
    import fnmatch
    import re

    renamed, used = {}, set()
    for pattern, target in name_map.items():
        regex = re.compile(fnmatch.translate(pattern).replace(".*", "(.*)"))  # each * captures
        for name in candidate:
            m = regex.match(name)
            if m:
                renamed[name] = target.format(None, *m.groups()) if m.groups() else target
                used.add(pattern)
    unused = [p for p in name_map if p not in used]
    if unused:
        raise InputError(f"the name map's entries {unused[:5]} match no tensor of the candidate "
                         f"(it has {list(candidate)[:5]}{' ...' if len(candidate) > 5 else ''})")
    out = {}
    for name, value in candidate.items():
        new = renamed.get(name, name)
        if new in out:
            raise InputError(f"the name map sends two candidate tensors to {new!r}")
        out[new] = value
    return out


def compare_traces(reference: dict, candidate: dict, *, name_map=None, atol=None, rtol=None, per_name=(),
                   oracle: dict | None = None, strict_names=False) -> Comparison:
    """Compare every name present in both ``reference`` (a trace: name -> array, in forward order) and
    ``candidate`` (renamed by ``name_map`` first). Tolerances: :data:`POLICY` by dtype and kind, then
    ``atol`` / ``rtol`` if given, then ``per_name`` (glob, atol, rtol) entries, the last match winning.
    ``oracle``: refimpl's float64 tensors of the same names (a trace's ``oracle.`` entries): each float32
    tensor then also gets a rounding verdict against the band of refimpl's own float32 (the reference)."""
    import fnmatch

    if name_map:
        candidate = map_names(candidate, name_map)
    results = []
    for name, ref in reference.items():
        if name not in candidate:
            continue
        a, r = policy(name, np.asarray(ref).dtype)
        a, r = (atol if atol is not None else a), (rtol if rtol is not None else r)
        for pattern, pa, pr in per_name:
            if fnmatch.fnmatchcase(name, pattern):
                a, r = pa, pr
        o = None if oracle is None else oracle.get(name)
        results.append(compare_tensor(name, ref, candidate[name], a, r, oracle=o, refimpl32=ref if o is not None else None))
    only_ref = [n for n in reference if n not in candidate]
    only_cand = [n for n in candidate if n not in reference]
    return Comparison(results, only_ref, only_cand, oracle=oracle is not None, strict_names=strict_names)
