"""A read-only view of a flat parameter dict under a name prefix, so code can use checkpoint names."""

from __future__ import annotations

from collections.abc import Mapping


class Params(Mapping):
    """``Params(tensors, "bert.")["embeddings.word_embeddings.weight"]`` reads ``bert.embeddings.word_embeddings.weight``.

    ``p.sub("encoder.layer.3.")`` narrows the prefix. Names are transformers' checkpoint names, verbatim.
    """

    __slots__ = ("_tensors", "_prefix")

    def __init__(self, tensors: dict, prefix: str = ""):
        self._tensors = tensors
        self._prefix = prefix

    def sub(self, prefix: str) -> "Params":
        return Params(self._tensors, self._prefix + prefix)

    def name(self, local: str) -> str:
        """The full name of ``local`` under this view's prefix (what a recorder files an intermediate under)."""
        return self._prefix + local

    def __getitem__(self, name: str):
        return self._tensors[self._prefix + name]

    def get(self, name: str, default=None):
        return self._tensors.get(self._prefix + name, default)

    def __contains__(self, name) -> bool:
        return (self._prefix + name) in self._tensors

    def __iter__(self):
        n = len(self._prefix)
        return (k[n:] for k in self._tensors if k.startswith(self._prefix))

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __repr__(self) -> str:
        return f"Params(prefix={self._prefix!r}, {len(self)} tensors)"
