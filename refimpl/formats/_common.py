"""What every checkpoint reader of refimpl.formats shares: the tensor dict it returns, safe paths, JSON."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import CheckpointError

MAX_JSON_BYTES = 64 * 1024 * 1024  # an index or config file larger than this is not one


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


def inside(directory: Path, name, what: str) -> Path:
    """``directory / name`` if it resolves (symlinks followed) inside ``directory``, else a CheckpointError
    naming ``what`` listed it: a checkpoint may only name files of its own directory."""
    if not isinstance(name, str) or not name or "\x00" in name:
        raise CheckpointError(f"{what} names the file {name!r}, which is not a file name; fix or re-create {what}")
    candidate = Path(name)
    root = Path(directory).resolve()
    if candidate.is_absolute() or not (root / candidate).resolve().is_relative_to(root):
        raise CheckpointError(
            f"{what} names the file {name!r}, which lies outside the checkpoint directory {str(directory)!r}; "
            "a checkpoint may only name files inside its own directory (refused, nothing was read from it)"
        )
    return Path(directory) / candidate


def read_json(path: Path, what: str):
    """Parse a small JSON file, or a CheckpointError naming it (too large, not UTF-8, not JSON, too deep)."""
    size = path.stat().st_size
    if size > MAX_JSON_BYTES:
        raise CheckpointError(f"{what} {path} is {size} bytes, more than the {MAX_JSON_BYTES} a JSON file of a "
                              "checkpoint can be; it is not one")
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise CheckpointError(f"{what} {path} is not valid JSON ({type(e).__name__}: {e}); the file is corrupt") from None


def human(n: int) -> str:
    return f"{n} bytes" if n < 10_000 else f"{n} bytes ({n / 2**20:.1f} MiB)"
