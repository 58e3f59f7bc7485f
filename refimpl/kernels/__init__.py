"""The fast kernels, and the one table that maps every op to its two implementations.

``refimpl.ops`` holds the textbook definition of each computation (``kernels="reference"``); this package
holds the versions that run by default (``kernels="fast"``): blocked, threaded, in place on their own
arrays, layout-aware. Each has the reference's signature and results (to rounding: tests/test_kernels.py
checks every pair, tolerances in tests/tolerances.py), and its docstring names the reference it
implements. The set is chosen once, when a model is loaded, like transformers' ``attn_implementation``.

A model's forward calls ops through a :class:`Kernels` value, ``ops.linear(x, w, b)``, and records its
intermediates through the same value, ``ops.record(p, "query", q)`` (a no-op without a recorder).
"""

from __future__ import annotations

from contextlib import nullcontext

import numpy as np

from ..backend import array_module
from ..errors import ConfigError
from ..ops import activations as _ref_act
from ..ops import attention as _ref_att
from ..ops import embeddings as _ref_emb
from ..ops import erf as _ref_erf
from ..ops import layer_norm as _ref_ln
from ..ops import linear as _ref_lin
from ..ops import softmax as _ref_sm
from . import activations as _fast_act
from . import attention as _fast_att
from . import erf as _fast_erf
from . import layer_norm as _fast_ln
from . import linear as _fast_lin
from . import softmax as _fast_sm
from . import threads

KERNEL_SETS = ("fast", "reference")
DEFAULT = "fast"  # what kernels=None means (the test suite's --kernels=reference option sets it for a whole run)

# op -> (reference, fast)
TABLE = {
    "embedding": (_ref_emb.embedding, _ref_emb.embedding),  # a gather: nothing faster to do
    "linear": (_ref_lin.linear, _fast_lin.linear),
    "layer_norm": (_ref_ln.layer_norm, _fast_ln.layer_norm),
    "add_layer_norm": (_ref_ln.add_layer_norm, _fast_ln.add_layer_norm),
    "softmax": (_ref_sm.softmax, _fast_sm.softmax),
    "log_softmax": (_ref_sm.log_softmax, _fast_sm.log_softmax),
    "erf": (_ref_erf.erf, _fast_erf.erf),
    "attention": (_ref_att.attention, _fast_att.attention),
    "relative_key_scores": (_ref_att.relative_key_scores, _fast_att.relative_key_scores),
    "relative_query_key_scores": (_ref_att.relative_query_key_scores, _fast_att.relative_query_key_scores),
    "activation": (_ref_act.get_activation, _fast_act.get_activation),  # hidden_act name -> function
}


class Kernels:
    """One implementation of every op of :data:`TABLE` (attributes of the same names), bound to a recorder.

    ``Kernels("reference")`` / ``Kernels("fast")``; ``with_recorder(rec)`` gives the same set recording
    into ``rec``. Also what differs between the sets outside the ops: the thread region around a forward
    (:meth:`region`) and how parameters are laid out at load (:meth:`place`).
    """

    def __init__(self, name="fast", recorder=None):
        if name not in KERNEL_SETS:
            raise ConfigError(f"kernels={name!r}: choose one of {KERNEL_SETS} ('fast' is the default)")
        self.name = name
        self.recorder = recorder
        index = KERNEL_SETS.index(name) ^ 1  # TABLE rows are (reference, fast)
        for op, impls in TABLE.items():
            setattr(self, op, impls[index])

    def with_recorder(self, recorder):
        return self if recorder is None and self.recorder is None else Kernels(self.name, recorder)

    def record(self, p, name, array):
        """Record ``array`` under ``p``'s prefix + ``name`` if a recorder is bound. Returns ``array``."""
        if self.recorder is not None:
            self.recorder(p.name(name) if p is not None else name, array)
        return array

    def recording(self, p):
        """A ``record(name, array)`` callable for an op's internals, under ``p``'s prefix (None without a
        recorder)."""
        if self.recorder is None:
            return None
        return lambda name, array: self.recorder(p.name(name), array)

    def per_token(self, fn, p, cfg, *arrays):
        """``fn(ops, p, cfg, *arrays)`` for a computation in which every token is independent (the arrays
        share their leading [B, S] shape, and so does each result).

        The reference set calls it. The fast set runs it on row blocks, one per worker thread of the
        forward's region (``threads.row_blocks``): each block reads its weights once and keeps its rows in
        cache from the first op to the last, with one hand-off between threads for the whole sequence
        instead of one per op. Inside a block the kernels run single-threaded. A recorder sees the same
        names and whole arrays either way (each block's records are assembled).
        """
        if self.name == "reference" or threads.workers() == 1:  # no worker threads here: nothing to split
            return fn(self, p, cfg, *arrays)
        xp = array_module(arrays[0])
        lead = arrays[0].shape[:-1]
        rows = int(np.prod(lead))
        blocks = threads.row_blocks(rows, xp)
        if len(blocks) == 1:
            return fn(self, p, cfg, *arrays)
        flat = [a.reshape(rows, a.shape[-1]) for a in arrays]
        results, records = [None] * len(blocks), [None] * len(blocks)

        def block(i):
            rec = None if self.recorder is None else _BlockRecords()
            results[i] = fn(Kernels(self.name, rec), p, cfg, *(a[blocks[i]] for a in flat))
            records[i] = rec

        threads.map_blocks(block, range(len(blocks)))
        if self.recorder is not None:
            for j, (name, _) in enumerate(records[0].items):
                parts = [r.items[j][1] for r in records]
                self.recorder(name, xp.concatenate(parts).reshape(lead + parts[0].shape[1:]))
        if isinstance(results[0], tuple):
            return tuple(_joined(xp, [r[k] for r in results], lead) for k in range(len(results[0])))
        return _joined(xp, results, lead)

    def region(self, xp, rows):
        """The thread region for a forward over ``rows`` token rows: one per forward in the fast set
        (``threads.cpu_threads``), none in the reference set."""
        return threads.cpu_threads(xp, rows=rows) if self.name == "fast" else nullcontext()

    def place(self, name, arr, xp, dtype, is_decoder):
        """Parameter ``name`` on the backend: the fast set stores an encoder's layer projections input-major
        on numpy (``linear.input_major``) and releases their mapped pages; otherwise as loaded. A quantized
        weight (refimpl.quantization.weights) stays as it is: its ``linear`` computes the product."""
        if hasattr(arr, "linear"):
            return arr
        if self.name == "fast" and _fast_lin.wants_input_major(name, arr, xp, is_decoder):
            from ..checkpoint import release_mapped_pages

            weight = _fast_lin.input_major(arr, dtype)
            release_mapped_pages(arr)
            return weight
        return xp.asarray(arr, dtype=dtype)

    def __repr__(self):
        return f"Kernels({self.name!r}{', recording' if self.recorder is not None else ''})"


class _BlockRecords:
    """What one row block of :meth:`Kernels.per_token` records, in order, to be assembled afterwards."""

    def __init__(self):
        self.items = []

    def __call__(self, name, array):
        self.items.append((name, array.copy()))
        return array


def _joined(xp, parts, lead):
    """Row blocks [rows_i, ...] of one result joined into [*lead, ...]."""
    return xp.concatenate(parts).reshape(lead + parts[0].shape[1:])


def get_kernels(kernels=None) -> Kernels:
    """``kernels`` ("fast", "reference", None for :data:`DEFAULT`, or a Kernels value) as a Kernels value
    (no recorder)."""
    if kernels is None:
        kernels = DEFAULT
    if isinstance(kernels, Kernels):
        return kernels.with_recorder(None) if kernels.recorder is not None else kernels
    if not isinstance(kernels, str):
        raise ConfigError(f"kernels={kernels!r}: choose one of {KERNEL_SETS}")
    return Kernels(kernels)


__all__ = ["KERNEL_SETS", "TABLE", "Kernels", "get_kernels"]
