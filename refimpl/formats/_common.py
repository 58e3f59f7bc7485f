"""What every checkpoint reader of refimpl.formats shares: the tensor dict it returns and the file reader.
(The path check and the JSON reader are refimpl/checkpoint.py's ``inside_directory`` and ``read_json_file``,
one implementation for safetensors indexes and these formats alike.)"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import CheckpointError


class TensorDict(dict):
    """name -> numpy array, as every reader returns it, with where it came from.

    ``format``: which reader produced it ("safetensors", "pytorch_bin", "tf_bundle", "fairseq").
    ``skipped``: names in the file that are not model weights and were left out on purpose (TF optimizer
    slots, ``global_step``, fairseq's ``version`` buffers), reported in ``load_report["format_skipped"]``.
    ``config``: a config dict the checkpoint carries when it has no config.json (TF's ``bert_config.json``,
    fairseq's ``args``), else None.
    """

    def __init__(self, *args, format: str = "safetensors", skipped=(), config=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.format = format
        self.skipped = list(skipped)
        self.config = config


def human(n: int) -> str:
    return f"{n} bytes" if n < 10_000 else f"{n} bytes ({n / 2**20:.1f} MiB)"


class CheckpointFile:
    """A checkpoint file read into owned memory on demand: ``f[a:b]`` is a new uint8 array of those bytes
    (clipped to the file's size, read with one ``readinto``), so nothing handed out stays mapped to the file
    (a loaded model cannot crash or change when its file is truncated or rewritten; refimpl/checkpoint.py)."""

    def __init__(self, path: Path):
        self.path = path
        self.f = open(path, "rb")
        self.size = os.fstat(self.f.fileno()).st_size

    def __len__(self):
        return self.size

    def __getitem__(self, key):
        if isinstance(key, int):
            return int(self[key:key + 1][0])
        start, stop = max(0, key.start or 0), min(self.size, self.size if key.stop is None else key.stop)
        buf = np.empty(max(0, stop - start), np.uint8)
        self.f.seek(start)
        if buf.size and self.f.readinto(buf) != buf.size:
            raise CheckpointError(f"{self.path} became shorter while it was read; it is being rewritten — load it again")
        return buf

    def close(self):
        self.f.close()
