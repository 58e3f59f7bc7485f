"""Checkpoint formats other than safetensors, read without their frameworks and without running anything
from the file: PyTorch ``.bin`` pickles (:mod:`.torch_pickle`), TensorFlow 1 tensor bundles
(:mod:`.tf_bundle`), fairseq RoBERTa checkpoints (:mod:`.fairseq`). Each reader returns a
:class:`TensorDict` of transformers' names -> numpy arrays; strict loading by name applies after it,
unchanged. ``docs/formats.md`` describes each format, what is refused, and the name mappings.
"""

from ._common import TensorDict  # noqa: F401
